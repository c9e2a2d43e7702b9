//! SMTP AUTH (RFC 4954) with PLAIN and LOGIN, only inside TLS.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::time::Instant;

use super::super::connection::Line;
use super::super::replies;
use super::super::socket::Socket;
use super::super::state::{Flow, SessionState};
use super::{MAX_COMMAND_LINE, Session};
use crate::wire::{Reply, Status};

const NOT_OFFERED: Reply = Reply::new(502, Status(5, 5, 1), "Error: AUTH not available");
const NEEDS_TLS: Reply =
    Reply::new(538, Status(5, 7, 11), "Encryption required for requested authentication mechanism");
const ALREADY: Reply = Reply::new(503, Status(5, 5, 1), "Error: already authenticated");
const IN_TRANSACTION: Reply = Reply::new(503, Status(5, 5, 1), "Error: AUTH not allowed during a mail transaction");
const UNKNOWN_MECHANISM: Reply = Reply::new(504, Status(5, 5, 4), "Error: unrecognized authentication mechanism");
const CANCELLED: Reply = Reply::new(501, Status(5, 0, 0), "Authentication cancelled");
const BAD_BASE64: Reply = Reply::new(501, Status(5, 5, 2), "Error: cannot decode the response");
const SUCCESS: Reply = Reply::new(235, Status(2, 7, 0), "Authentication successful");
const FAILED: Reply = Reply::new(535, Status(5, 7, 8), "Error: authentication credentials invalid");

/// A hash to verify against when the user does not exist, so that unknown and known
/// users take the same time.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2x1aWNlLWR1bW15LXNhbHQ$wG1b1I4n3Y9l2pI7yqgHk1oU2wq8m2k8m6Cq6oJ0xX8";

enum Exchange {
    Answer(Vec<u8>),
    Refused(Reply),
    Closed,
}

impl<S: Socket> Session<S> {
    pub(super) fn offers_auth(&self) -> bool {
        !self.ctx.config.auth.users.is_empty() && self.tls_active() && self.client.auth_user.is_none()
    }

    pub(super) async fn on_auth(&mut self, mechanism: &str, initial: Option<&str>) -> Flow {
        if self.ctx.config.auth.users.is_empty() {
            return self.reply(NOT_OFFERED);
        }
        if !self.tls_active() {
            return self.reply(NEEDS_TLS);
        }
        if self.client.auth_user.is_some() {
            return self.reply(ALREADY);
        }
        match &self.state {
            SessionState::Greeted { transaction: Some(_), .. } => return self.reply(IN_TRANSACTION),
            SessionState::AwaitingHelo => return self.reply(replies::NEED_HELO),
            SessionState::Greeted { .. } => {}
        }
        let credentials = if mechanism.eq_ignore_ascii_case("PLAIN") {
            match self.exchange(initial, "").await {
                Exchange::Answer(bytes) => parse_plain(&bytes),
                Exchange::Refused(reply) => return self.reply(reply),
                Exchange::Closed => return Flow::Close,
            }
        } else if mechanism.eq_ignore_ascii_case("LOGIN") {
            let user = match self.exchange(initial, "VXNlcm5hbWU6").await {
                Exchange::Answer(bytes) => bytes,
                Exchange::Refused(reply) => return self.reply(reply),
                Exchange::Closed => return Flow::Close,
            };
            let password = match self.exchange(None, "UGFzc3dvcmQ6").await {
                Exchange::Answer(bytes) => bytes,
                Exchange::Refused(reply) => return self.reply(reply),
                Exchange::Closed => return Flow::Close,
            };
            String::from_utf8(user).ok().zip(String::from_utf8(password).ok())
        } else {
            return self.reply(UNKNOWN_MECHANISM);
        };
        let verified = match credentials {
            Some((user, password)) => {
                let hash = self.ctx.config.auth.users.iter().find(|u| u.name == user).map(|u| u.password_hash.clone());
                verify(hash, password).await.then_some(user)
            }
            None => None,
        };
        match verified {
            Some(user) => {
                tracing::info!(%user, "authenticated");
                metrics::counter!("sluice_auth_total", "result" => "success").increment(1);
                self.client.auth_user = Some(user);
                self.trusted = true;
                self.reply(SUCCESS)
            }
            None => {
                tracing::info!(mechanism, "authentication failed");
                metrics::counter!("sluice_auth_total", "result" => "failure").increment(1);
                tokio::time::sleep(self.ctx.config.auth.failure_delay.get()).await;
                self.reply(FAILED)
            }
        }
    }

    /// One challenge/response step: the initial response if the client gave one,
    /// else a 334 with `challenge` and the client's next line.
    async fn exchange(&mut self, initial: Option<&str>, challenge: &str) -> Exchange {
        let line = match initial {
            Some(text) => text.as_bytes().to_vec(),
            None => {
                self.conn.queue_raw(format!("334 {challenge}\r\n").as_bytes());
                let deadline = Instant::now() + self.ctx.config.limits.command_timeout.get();
                match self.conn.read_line(MAX_COMMAND_LINE, deadline).await {
                    Ok(Line::Complete(line)) => line.to_vec(),
                    Ok(Line::TooLong) => return Exchange::Refused(replies::LINE_TOO_LONG),
                    Err(error) => {
                        self.on_read_error(error);
                        return Exchange::Closed;
                    }
                }
            }
        };
        if line == b"*" {
            return Exchange::Refused(CANCELLED);
        }
        // "=" is an empty initial response (RFC 4954 §4).
        if line == b"=" {
            return Exchange::Answer(Vec::new());
        }
        match BASE64.decode(&line) {
            Ok(bytes) => Exchange::Answer(bytes),
            Err(_) => Exchange::Refused(BAD_BASE64),
        }
    }
}

/// Checks `password` against the user's hash (`None`: no such user, checked against a
/// dummy so both cases take the same time).
async fn verify(hash: Option<String>, password: String) -> bool {
    let known = hash.is_some();
    let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_string());
    // Argon2 is deliberately slow: keep it off the session threads.
    let matched = tokio::task::spawn_blocking(move || {
        use argon2::PasswordVerifier;
        argon2::Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok()
    })
    .await
    .unwrap_or(false);
    known && matched
}

/// `authzid NUL authcid NUL password`; an authorization identity other than the
/// user's own is refused.
fn parse_plain(bytes: &[u8]) -> Option<(String, String)> {
    let mut parts = bytes.split(|&b| b == 0);
    let (authz, authc, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || authc.is_empty() || (!authz.is_empty() && authz != authc) {
        return None;
    }
    Some((String::from_utf8(authc.to_vec()).ok()?, String::from_utf8(password.to_vec()).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_credentials() {
        assert_eq!(parse_plain(b"\0alice\0secret"), Some(("alice".into(), "secret".into())));
        assert_eq!(parse_plain(b"alice\0alice\0secret"), Some(("alice".into(), "secret".into())));
        assert_eq!(parse_plain(b"bob\0alice\0secret"), None, "acting for someone else");
        assert_eq!(parse_plain(b"\0\0secret"), None);
        assert_eq!(parse_plain(b"alice secret"), None);
        assert_eq!(parse_plain(b"\0a\0b\0c"), None);
    }

    #[test]
    fn dummy_hash_is_well_formed() {
        assert!(argon2::PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
