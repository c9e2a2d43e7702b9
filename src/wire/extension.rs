//! ESMTP service extensions (RFC 5321 §2.2) and their EHLO keywords.

/// An extension either side may offer or look for in an EHLO reply. The server offers
/// them in this order (`ALL`); the client recognises each by its keyword.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extension {
    /// RFC 2920.
    Pipelining,
    /// RFC 1870: `SIZE n`, the largest message taken (0: no fixed limit).
    Size,
    /// RFC 6152.
    EightBitMime,
    /// RFC 6531.
    SmtpUtf8,
    /// RFC 2034.
    EnhancedStatusCodes,
    /// RFC 3030: BDAT.
    Chunking,
    /// RFC 3461.
    Dsn,
    /// RFC 3207.
    StartTls,
    /// RFC 4954: `AUTH mechanism...`.
    Auth,
    /// RFC 5321 §4.1.1.8.
    Help,
}

impl Extension {
    pub const ALL: [Extension; 10] = [
        Extension::Pipelining,
        Extension::Size,
        Extension::EightBitMime,
        Extension::SmtpUtf8,
        Extension::EnhancedStatusCodes,
        Extension::Chunking,
        Extension::Dsn,
        Extension::StartTls,
        Extension::Auth,
        Extension::Help,
    ];

    pub const fn keyword(self) -> &'static str {
        match self {
            Extension::Pipelining => "PIPELINING",
            Extension::Size => "SIZE",
            Extension::EightBitMime => "8BITMIME",
            Extension::SmtpUtf8 => "SMTPUTF8",
            Extension::EnhancedStatusCodes => "ENHANCEDSTATUSCODES",
            Extension::Chunking => "CHUNKING",
            Extension::Dsn => "DSN",
            Extension::StartTls => "STARTTLS",
            Extension::Auth => "AUTH",
            Extension::Help => "HELP",
        }
    }

    /// The extension an EHLO keyword names, in any case; `None` for ones we do not know.
    pub fn from_keyword(keyword: &str) -> Option<Extension> {
        Extension::ALL.into_iter().find(|e| e.keyword().eq_ignore_ascii_case(keyword))
    }

    /// Splits one EHLO reply line (after the first) into its extension and the
    /// keyword's parameters.
    pub fn parse_line(line: &str) -> Option<(Extension, std::str::SplitAsciiWhitespace<'_>)> {
        let mut words = line.split_ascii_whitespace();
        let extension = Extension::from_keyword(words.next()?)?;
        Some((extension, words))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_round_trip_in_any_case() {
        for extension in Extension::ALL {
            assert_eq!(Extension::from_keyword(extension.keyword()), Some(extension));
            assert_eq!(Extension::from_keyword(&extension.keyword().to_ascii_lowercase()), Some(extension));
        }
        assert_eq!(Extension::from_keyword("XCLIENT"), None);
        let (extension, mut params) = Extension::parse_line("auth PLAIN LOGIN").unwrap();
        assert_eq!((extension, params.next(), params.next()), (Extension::Auth, Some("PLAIN"), Some("LOGIN")));
    }
}
