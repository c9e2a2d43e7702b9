//! SMTP command verbs (RFC 5321 §4.1 and the extensions').

/// A command verb Sluice's server implements. The server's parser and its HELP text
/// both come from this list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Ehlo,
    Helo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    Help,
    Vrfy,
    Expn,
    StartTls,
    Auth,
}

impl Verb {
    pub const ALL: [Verb; 14] = [
        Verb::Ehlo,
        Verb::Helo,
        Verb::Mail,
        Verb::Rcpt,
        Verb::Data,
        Verb::Bdat,
        Verb::Rset,
        Verb::Noop,
        Verb::Quit,
        Verb::Help,
        Verb::Vrfy,
        Verb::Expn,
        Verb::StartTls,
        Verb::Auth,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Ehlo => "EHLO",
            Verb::Helo => "HELO",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Bdat => "BDAT",
            Verb::Rset => "RSET",
            Verb::Noop => "NOOP",
            Verb::Quit => "QUIT",
            Verb::Help => "HELP",
            Verb::Vrfy => "VRFY",
            Verb::Expn => "EXPN",
            Verb::StartTls => "STARTTLS",
            Verb::Auth => "AUTH",
        }
    }

    /// The verb of a command line's first word, in any case.
    pub fn parse(word: &[u8]) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.as_str().as_bytes().eq_ignore_ascii_case(word))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_parse_in_any_case() {
        for verb in Verb::ALL {
            assert_eq!(Verb::parse(verb.as_str().as_bytes()), Some(verb));
            assert_eq!(Verb::parse(verb.as_str().to_ascii_lowercase().as_bytes()), Some(verb));
        }
        assert_eq!(Verb::parse(b"XCLIENT"), None);
        assert_eq!(Verb::parse(b""), None);
    }
}
