//! Parsing one command line (without its CRLF) into a typed command.

use super::replies;
use crate::wire::{Reply, Status, Verb};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Ehlo(&'a str),
    Helo(&'a str),
    /// The text after `MAIL FROM:`: a reverse path and parameters.
    Mail(&'a str),
    /// The text after `RCPT TO:`: a forward path and parameters.
    Rcpt(&'a str),
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Help,
    Vrfy,
    Expn,
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth {
        mechanism: &'a str,
        initial: Option<&'a str>,
    },
}

const MAIL_SYNTAX: Reply = Reply::new(501, Status(5, 5, 4), "Syntax: MAIL FROM:<address>");
const RCPT_SYNTAX: Reply = Reply::new(501, Status(5, 5, 4), "Syntax: RCPT TO:<address>");
const MAIL_NOT_UTF8: Reply = Reply::new(553, Status(5, 1, 7), "Error: sender address is not valid UTF-8");
const RCPT_NOT_UTF8: Reply = Reply::new(553, Status(5, 1, 3), "Error: recipient address is not valid UTF-8");
const ARGUMENT_NOT_UTF8: Reply = Reply::new(501, Status(5, 5, 2), "Error: command argument is not valid UTF-8");
const AUTH_SYNTAX: Reply = Reply::new(501, Status(5, 5, 4), "Syntax: AUTH mechanism [initial-response]");
const CONTROL_CHARACTERS: Reply = Reply::new(501, Status(5, 5, 2), "Error: control characters in command");

/// Parses a command line. Errors come back as the reply to send.
pub fn parse_command(line: &[u8]) -> Result<Command<'_>, Reply> {
    let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let rest_bytes = line.get(verb_end + 1..).unwrap_or(&[]);
    let Some(verb) = Verb::parse(&line[..verb_end]) else {
        return Err(replies::UNKNOWN_COMMAND);
    };
    let Ok(rest) = std::str::from_utf8(rest_bytes) else {
        return Err(match verb {
            Verb::Mail => MAIL_NOT_UTF8,
            Verb::Rcpt => RCPT_NOT_UTF8,
            _ => ARGUMENT_NOT_UTF8,
        });
    };
    // NUL, CR, LF and other controls have no place in a command; a stray CR would also
    // let an argument smuggle a line break into logs or replies.
    if rest.chars().any(|c| c.is_control() && c != '\t') {
        return Err(CONTROL_CHARACTERS);
    }
    let no_args = |cmd: Command<'static>| if rest.trim().is_empty() { Ok(cmd) } else { Err(replies::NO_PARAMETERS) };

    match verb {
        Verb::Ehlo | Verb::Helo => {
            let name = rest.trim().split([' ', '\t']).next().unwrap_or("");
            if name.is_empty() {
                return Err(replies::HELO_SYNTAX);
            }
            Ok(if verb == Verb::Ehlo { Command::Ehlo(name) } else { Command::Helo(name) })
        }
        Verb::Mail => strip_prefix_ignore_case(rest, "FROM:").map(Command::Mail).ok_or(MAIL_SYNTAX),
        Verb::Rcpt => strip_prefix_ignore_case(rest, "TO:").map(Command::Rcpt).ok_or(RCPT_SYNTAX),
        Verb::Data => no_args(Command::Data),
        Verb::Bdat => parse_bdat(rest),
        Verb::Rset => no_args(Command::Rset),
        Verb::Quit => no_args(Command::Quit),
        Verb::StartTls => {
            if rest.trim().is_empty() {
                Ok(Command::StartTls)
            } else {
                Err(replies::STARTTLS_SYNTAX)
            }
        }
        Verb::Noop => Ok(Command::Noop),
        Verb::Help => Ok(Command::Help),
        Verb::Vrfy => Ok(Command::Vrfy),
        Verb::Expn => Ok(Command::Expn),
        Verb::Auth => {
            let mut words = rest.split(' ').filter(|w| !w.is_empty());
            match (words.next(), words.next(), words.next()) {
                (Some(mechanism), initial, None) => Ok(Command::Auth { mechanism, initial }),
                _ => Err(AUTH_SYNTAX),
            }
        }
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn parse_bdat(rest: &str) -> Result<Command<'static>, Reply> {
    let mut words = rest.split(' ').filter(|w| !w.is_empty());
    let size = words
        .next()
        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse::<u64>().ok())
        .ok_or(replies::BDAT_SYNTAX)?;
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(replies::BDAT_SYNTAX),
    };
    if words.next().is_some() {
        return Err(replies::BDAT_SYNTAX);
    }
    Ok(Command::Bdat { size, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(parse_command(b"ehlo client.example"), Ok(Command::Ehlo("client.example")));
        assert_eq!(parse_command(b"HeLo client"), Ok(Command::Helo("client")));
        assert_eq!(parse_command(b"mail from:<a@b.c> SIZE=10"), Ok(Command::Mail("<a@b.c> SIZE=10")));
        assert_eq!(parse_command(b"RCPT To: <a@b.c>"), Ok(Command::Rcpt(" <a@b.c>")));
        assert_eq!(parse_command(b"data"), Ok(Command::Data));
        assert_eq!(parse_command(b"NOOP anything"), Ok(Command::Noop));
        assert_eq!(parse_command(b"VRFY user"), Ok(Command::Vrfy));
        assert_eq!(parse_command(b"starttls"), Ok(Command::StartTls));
        assert_eq!(parse_command(b"AUTH PLAIN"), Ok(Command::Auth { mechanism: "PLAIN", initial: None }));
        assert_eq!(
            parse_command(b"auth login dXNlcg=="),
            Ok(Command::Auth { mechanism: "login", initial: Some("dXNlcg==") })
        );
    }

    #[test]
    fn bdat() {
        assert_eq!(parse_command(b"BDAT 100"), Ok(Command::Bdat { size: 100, last: false }));
        assert_eq!(parse_command(b"BDAT 0 last"), Ok(Command::Bdat { size: 0, last: true }));
        for bad in
            [&b"BDAT"[..], b"BDAT -1", b"BDAT 10 FIRST", b"BDAT 10 LAST x", b"BDAT +5", b"BDAT 99999999999999999999999"]
        {
            assert_eq!(parse_command(bad).unwrap_err().code, 501, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn errors() {
        let code = |line: &[u8]| parse_command(line).unwrap_err().code;
        assert_eq!(code(b"FOO"), 500);
        assert_eq!(code(b""), 500);
        assert_eq!(code(b"\xff\xfe"), 500);
        assert_eq!(code(b"EHLO"), 501);
        assert_eq!(code(b"EHLO   "), 501);
        assert_eq!(code(b"MAIL <a@b.c>"), 501);
        assert_eq!(code(b"MAIL FROM:<\xff@b.c>"), 553);
        assert_eq!(code(b"RCPT TO:<\xc3\x28@b.c>"), 553);
        assert_eq!(code(b"HELO \xff"), 501);
        assert_eq!(code(b"DATA now"), 501);
        assert_eq!(code(b"STARTTLS x"), 501);
        assert_eq!(code(b"RSET x"), 501);
        assert_eq!(code(b"AUTH"), 501);
        assert_eq!(code(b"AUTH PLAIN a b"), 501);
        assert_eq!(code(b"MAIL FROM:<a@b.c>\0"), 501);
        assert_eq!(code(b"MAIL FROM:<a@b.c>\r"), 501);
    }
}
