//! The server's fixed replies, in one place so codes stay consistent.

use crate::wire::{Reply, Status, Verb};

pub const OK: Reply = Reply::new(250, Status(2, 0, 0), "Ok");
pub const SENDER_OK: Reply = Reply::new(250, Status(2, 1, 0), "Sender ok");
pub const RECIPIENT_OK: Reply = Reply::new(250, Status(2, 1, 5), "Recipient ok");
pub const RESET_OK: Reply = Reply::new(250, Status(2, 0, 0), "Reset ok");
pub const BYE: Reply = Reply::new(221, Status(2, 0, 0), "Bye");
pub const START_DATA: Reply = Reply::new(354, Status(2, 0, 0), "End data with <CR><LF>.<CR><LF>");
pub const START_TLS: Reply = Reply::new(220, Status(2, 0, 0), "Ready to start TLS");
pub const VRFY: Reply =
    Reply::new(252, Status(2, 0, 0), "Cannot VRFY user, but will accept message and attempt delivery");

pub const UNKNOWN_COMMAND: Reply = Reply::new(500, Status(5, 5, 1), "Error: command not recognized");
pub const LINE_TOO_LONG: Reply = Reply::new(500, Status(5, 5, 2), "Error: line too long");
pub const BAD_UTF8_COMMAND: Reply = Reply::new(500, Status(5, 5, 2), "Error: command is not valid UTF-8");
pub const NOT_IMPLEMENTED: Reply = Reply::new(502, Status(5, 5, 1), "Error: command not implemented");
pub const NEED_HELO: Reply = Reply::new(503, Status(5, 5, 1), "Error: send HELO/EHLO first");
pub const NEED_MAIL: Reply = Reply::new(503, Status(5, 5, 1), "Error: need MAIL command");
pub const NEED_RCPT: Reply = Reply::new(503, Status(5, 5, 1), "Error: need RCPT command");
pub const NESTED_MAIL: Reply = Reply::new(503, Status(5, 5, 1), "Error: nested MAIL command");
pub const NO_VALID_RECIPIENTS: Reply = Reply::new(554, Status(5, 5, 1), "Error: no valid recipients");
pub const DATA_AFTER_BDAT: Reply =
    Reply::new(503, Status(5, 5, 1), "Error: DATA cannot follow BDAT in one transaction");
pub const TLS_ALREADY_ACTIVE: Reply = Reply::new(503, Status(5, 5, 1), "Error: TLS already active");
pub const TLS_UNAVAILABLE: Reply = Reply::new(502, Status(5, 5, 1), "Error: STARTTLS not available");
pub const STARTTLS_SYNTAX: Reply = Reply::new(501, Status(5, 5, 4), "Syntax: STARTTLS (no parameters)");
pub const NO_PARAMETERS: Reply = Reply::new(501, Status(5, 5, 4), "Error: this command takes no parameters");
pub const HELO_SYNTAX: Reply = Reply::new(501, Status(5, 5, 4), "Syntax: EHLO hostname");
pub const BDAT_SYNTAX: Reply = Reply::new(501, Status(5, 5, 4), "Syntax: BDAT size [LAST]");

pub const TOO_MANY_RECIPIENTS: Reply = Reply::new(452, Status(4, 5, 3), "Error: too many recipients");
pub const RELAY_DENIED: Reply = Reply::new(554, Status(5, 7, 1), "Error: relay access denied");
pub const ROUTED_ADDRESS_DENIED: Reply =
    Reply::new(554, Status(5, 7, 1), "Error: source routes, %-hacks and bang paths are not relayed");
pub const NEEDS_SMTPUTF8: Reply =
    Reply::new(553, Status(5, 6, 7), "Error: non-ASCII address needs the SMTPUTF8 parameter");

pub const MESSAGE_TOO_BIG: Reply = Reply::new(552, Status(5, 3, 4), "Error: message size exceeds fixed limit");
pub const BARE_NEWLINE: Reply =
    Reply::new(550, Status(5, 6, 0), "Error: bare CR or LF in message; lines must end with CRLF");
pub const TEXT_LINE_TOO_LONG: Reply =
    Reply::new(500, Status(5, 5, 2), "Error: message line too long (RFC 5321 §4.5.3.1.6)");
pub const LOOP_DETECTED: Reply = Reply::new(554, Status(5, 4, 6), "Error: too many Received headers; mail loop?");
pub const PIPELINING_VIOLATION: Reply =
    Reply::new(554, Status(5, 5, 0), "Error: message content sent before the 354 reply (improper pipelining)");
pub const EARLY_TALKER: Reply = Reply::new(554, Status(5, 5, 0), "Error: client talked before the greeting");

pub const QUEUE_IO_ERROR: Reply = Reply::new(451, Status(4, 3, 0), "Error: queue write failed, try again later");
pub const QUEUE_FULL: Reply = Reply::new(452, Status(4, 3, 1), "Error: insufficient system storage, try again later");
pub const SIGNING_FAILED: Reply = Reply::new(451, Status(4, 7, 0), "Error: cannot sign the message, try again later");
pub const LOCAL_ERROR: Reply = Reply::new(451, Status(4, 3, 0), "Error: local error in processing");

pub const TOO_MANY_CONNECTIONS: Reply =
    Reply::new(421, Status(4, 7, 0), "Error: too many connections, try again later");
pub const TOO_MANY_ERRORS: Reply = Reply::new(421, Status(4, 7, 0), "Error: too many errors, closing connection");
pub const TIMEOUT: Reply = Reply::new(421, Status(4, 4, 2), "Error: timeout exceeded, closing connection");

/// HELP's reply: the verbs the server implements, from the one list its parser uses.
pub fn help() -> Reply {
    let verbs: Vec<&str> = Verb::ALL.iter().map(|v| v.as_str()).collect();
    Reply::owned(214, Status(2, 0, 0), format!("Commands: {}\nSee RFC 5321", verbs.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_verb_on_two_lines() {
        let mut out = Vec::new();
        help().write_to(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "214-2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN STARTTLS AUTH\r\n214 2.0.0 See RFC 5321\r\n"
        );
    }
}
