//! File names as Windows would treat them: the extension that decides what a
//! double-click does, disguises such as `invoice.pdf.exe`, and characters that make a
//! name display differently from what it is.

/// The file name without directories, with what Windows ignores at the end (spaces,
/// dots) and NULs removed.
pub fn basename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.replace('\0', "").trim_end_matches([' ', '.', '\t']).trim_start().to_string()
}

/// The lower-case extension that decides how the file opens (`exe` for
/// `Invoice.PDF.exe `), if any.
pub fn extension(name: &str) -> Option<String> {
    let base = basename(name);
    let (stem, ext) = base.rsplit_once('.')?;
    let ext = ext.trim();
    (!stem.trim().is_empty() && !ext.is_empty()).then(|| ext.to_lowercase())
}

/// The extension before the last one when it looks like a document's (`pdf` in
/// `invoice.pdf.exe`): the name is disguised.
pub fn decoy_extension(name: &str) -> Option<String> {
    let base = basename(name);
    let (stem, _) = base.rsplit_once('.')?;
    let (before, decoy) = stem.rsplit_once('.')?;
    let decoy = decoy.trim();
    (!before.trim().is_empty() && (1..=5).contains(&decoy.len()) && decoy.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| decoy.to_ascii_lowercase())
}

/// Whether the name holds bidirectional controls, which make `invoice\u{202E}fdp.exe`
/// display as `invoiceexe.pdf`.
pub fn has_bidi_controls(name: &str) -> bool {
    name.chars().any(|c| matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
}

/// A name safe to put in an SMTP reply: printable ASCII (others as `?`), no double
/// quotes, at most 80 characters.
pub fn for_reply(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' || c == ' ' { c } else { '?' }).take(80).collect();
    if name.chars().count() > 80 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_as_windows_sees_them() {
        assert_eq!(extension("invoice.exe").as_deref(), Some("exe"));
        assert_eq!(extension("Invoice.PDF.EXE").as_deref(), Some("exe"));
        assert_eq!(extension("report.exe. . ").as_deref(), Some("exe"), "trailing dots and spaces are dropped");
        assert_eq!(extension("C:\\Users\\x\\run.bat").as_deref(), Some("bat"));
        assert_eq!(extension("dir/archive.tar.gz").as_deref(), Some("gz"));
        assert_eq!(extension("evil.ex\0e").as_deref(), Some("exe"));
        assert_eq!(extension("README"), None);
        assert_eq!(extension(".bashrc"), None);
        assert_eq!(extension("name."), None);
    }

    #[test]
    fn double_extensions() {
        assert_eq!(decoy_extension("invoice.pdf.exe").as_deref(), Some("pdf"));
        assert_eq!(decoy_extension("scan.JPG      .scr").as_deref(), Some("jpg"));
        assert_eq!(decoy_extension("invoice.exe"), None);
        assert_eq!(decoy_extension("v1.2.3 release notes.exe"), None);
        assert_eq!(decoy_extension(".pdf.exe"), None);
    }

    #[test]
    fn bidi_tricks() {
        assert!(has_bidi_controls("invoice\u{202E}fdp.exe"));
        assert!(!has_bidi_controls("Übersicht.pdf"));
    }

    #[test]
    fn reply_safe_names() {
        assert_eq!(for_reply("in\"voice\r\n.exe"), "in?voice??.exe");
        assert_eq!(for_reply("Übersicht.exe"), "?bersicht.exe");
        assert_eq!(for_reply(&"a".repeat(100)).len(), 83);
    }
}
