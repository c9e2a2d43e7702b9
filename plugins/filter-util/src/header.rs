//! Header fields as the host accepts them in a plugin's header changes.

/// Printable ASCII without ':' or spaces.
pub fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// One line: folded or multi-line text joined with single spaces (the host refuses CR
/// and LF in a value and folds long ones itself).
pub fn unfold(value: &str) -> String {
    value.split(['\r', '\n']).map(str::trim).filter(|piece| !piece.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        assert!(is_name("X-Spam") && !is_name("X Spam") && !is_name("X:") && !is_name(""));
        assert_eq!(unfold("a;\r\n\tb;\n c"), "a; b; c");
        assert_eq!(unfold("plain"), "plain");
    }
}
