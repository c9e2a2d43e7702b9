//! SMTP replies the host accepts: a 4xx/5xx code, an RFC 3463 enhanced code of the same
//! class, and one printable line of at most 400 bytes.

/// The longest reply text the host accepts.
pub const MAX_TEXT: usize = 400;

/// A configured reply. `text` may hold `{placeholders}` (see [`render`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplySpec {
    pub code: u16,
    pub enhanced: String,
    pub text: String,
}

impl ReplySpec {
    pub fn new(code: u16, enhanced: &str, text: &str) -> ReplySpec {
        ReplySpec { code, enhanced: enhanced.to_string(), text: text.to_string() }
    }

    /// Whether this is a temporary (4xx) reply.
    pub fn is_temporary(&self) -> bool {
        self.code / 100 == 4
    }

    /// The default, with what the configuration overrides. A code outside 400-599 or an
    /// enhanced code that does not parse is refused (described in the second value) and
    /// the default kept. Without a usable enhanced code, the default's is used with the
    /// class of the chosen code, so `code = 451` alone gives `4.7.1` from `5.7.1`.
    pub fn configured(
        default: &ReplySpec,
        code: Option<i64>,
        enhanced: Option<&str>,
        text: Option<&str>,
    ) -> (ReplySpec, Vec<String>) {
        let mut errors = Vec::new();
        let mut spec = default.clone();
        if let Some(code) = code {
            match u16::try_from(code) {
                Ok(code) if (400..=599).contains(&code) => {
                    spec.code = code;
                    spec.enhanced = with_class(&default.enhanced, code);
                }
                _ => errors.push(format!("reply code {code} is not a 4xx or 5xx code; using {}", default.code)),
            }
        }
        if let Some(enhanced) = enhanced {
            let candidate = with_class(enhanced, spec.code);
            match check(spec.code, &candidate) {
                Ok(()) => spec.enhanced = candidate,
                Err(e) => errors.push(format!("{e}; using {}", spec.enhanced)),
            }
        }
        if let Some(text) = text {
            if text.trim().is_empty() {
                errors.push("empty reply text; using the default".to_string());
            } else {
                spec.text = text.to_string();
            }
        }
        (spec, errors)
    }
}

/// Checks that `code` is 4xx or 5xx and `enhanced` is `class.subject.detail` (RFC 3463:
/// subject and detail of 1 to 3 digits) with the same class.
pub fn check(code: u16, enhanced: &str) -> Result<(), String> {
    if !(400..=599).contains(&code) {
        return Err(format!("reply code {code} is not a 4xx or 5xx code"));
    }
    let parts: Vec<&str> = enhanced.split('.').collect();
    let digits = |p: &str, max: usize| !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit());
    let well_formed = parts.len() == 3 && digits(parts[0], 1) && digits(parts[1], 3) && digits(parts[2], 3);
    if !well_formed {
        return Err(format!("{enhanced:?} is not an enhanced status code (such as \"5.7.1\")"));
    }
    if parts[0] != (code / 100).to_string() {
        return Err(format!("enhanced code {enhanced} does not match reply code {code}"));
    }
    Ok(())
}

/// `enhanced` with its class digit replaced by that of `code` (`5.7.1` for 451 is `4.7.1`).
pub fn with_class(enhanced: &str, code: u16) -> String {
    let class = (code / 100).to_string();
    match enhanced.split_once('.') {
        Some((_, rest)) => format!("{class}.{rest}"),
        None => enhanced.to_string(),
    }
}

/// Makes text fit a reply: control and non-ASCII characters become `?`, runs of spaces
/// collapse, and it is cut at [`MAX_TEXT`] bytes. Names that come from the client (a HELO
/// argument, an address) go through this before they reach a reply.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_TEXT));
    for c in text.trim().chars() {
        let c = if c == ' ' || c.is_ascii_graphic() { c } else { '?' };
        if c == ' ' && out.ends_with(' ') {
            continue;
        }
        if out.len() + 1 > MAX_TEXT {
            break;
        }
        out.push(c);
    }
    out.trim_end().to_string()
}

/// Replaces `{name}` by the value of `name` in `vars`, in one pass (a value that itself
/// contains `{name}` is not expanded again); unknown placeholders are left as written.
/// The result is [`sanitize`]d.
pub fn render(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| (&after[..close], close)) {
            Some((name, close)) if vars.iter().any(|(k, _)| *k == name) => {
                let value = vars.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).unwrap_or_default();
                out.push_str(value);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    sanitize(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_codes() {
        assert!(check(554, "5.7.1").is_ok());
        assert!(check(451, "4.7.1").is_ok());
        assert!(check(421, "4.7.0").is_ok());
        assert!(check(550, "5.7.25").is_ok());
        assert!(check(250, "2.0.0").is_err());
        assert!(check(554, "4.7.1").is_err(), "class mismatch");
        assert!(check(554, "5.7").is_err());
        assert!(check(554, "5.7.1.2").is_err());
        assert!(check(554, "5.7.1000").is_err());
        assert!(check(554, "x.7.1").is_err());
    }

    #[test]
    fn configured_replies_fall_back_safely() {
        let default = ReplySpec::new(554, "5.7.1", "Service unavailable");
        let (spec, errors) = ReplySpec::configured(&default, None, None, None);
        assert_eq!((spec, errors.len()), (default.clone(), 0));
        let (spec, errors) = ReplySpec::configured(&default, Some(451), None, Some("Try later"));
        assert_eq!(spec, ReplySpec::new(451, "4.7.1", "Try later"));
        assert!(errors.is_empty() && spec.is_temporary());
        let (spec, errors) = ReplySpec::configured(&default, Some(550), Some("5.7.25"), None);
        assert_eq!((spec.code, spec.enhanced.as_str()), (550, "5.7.25"));
        assert!(errors.is_empty());
        let (spec, errors) = ReplySpec::configured(&default, Some(250), Some("bogus"), Some("  "));
        assert_eq!(spec, default);
        assert_eq!(errors.len(), 3);
        // An enhanced code of the other class is moved to the reply code's class.
        let (spec, _) = ReplySpec::configured(&default, Some(450), Some("5.7.25"), None);
        assert_eq!(spec.enhanced, "4.7.25");
    }

    #[test]
    fn sanitizes_text() {
        assert_eq!(sanitize("listed\r\n250 ok"), "listed??250 ok");
        assert_eq!(sanitize("  a   b  "), "a b");
        assert_eq!(sanitize("caf\u{e9}"), "caf?");
        assert_eq!(sanitize(&"x".repeat(1000)).len(), MAX_TEXT);
    }

    #[test]
    fn renders_templates() {
        let vars = [("ip", "192.0.2.1"), ("zones", "zen.example.test"), ("reason", "")];
        assert_eq!(
            render("Service unavailable; client [{ip}] listed by {zones}{reason}", &vars),
            "Service unavailable; client [192.0.2.1] listed by zen.example.test"
        );
        assert_eq!(render("{unknown} {ip} {", &vars), "{unknown} 192.0.2.1 {");
        assert_eq!(render("{name}", &[("name", "{name}{ip}")]), "{name}{ip}", "values are not expanded again");
        assert_eq!(render("helo {name}", &[("name", "evil\r\nRCPT")]), "helo evil??RCPT");
    }
}
