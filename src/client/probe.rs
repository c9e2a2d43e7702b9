//! A recipient probe, as Postfix's verify(8) makes one: `MAIL FROM:<>`, `RCPT TO`,
//! then `RSET`, so the connection is ready for the next probe and no message is ever
//! started. Pipelined when the server allows (RFC 2920).

use std::io::Write;

use super::SmtpClient;
use super::error::{ClientError, Stage};
use crate::mail::Mailbox;
use crate::wire::Reply;

impl SmtpClient {
    /// The server's reply to `RCPT TO:<recipient>`. A refused `MAIL FROM:<>` or `RSET`
    /// is an error: the server cannot be asked this way.
    pub async fn probe(&mut self, recipient: &Mailbox) -> Result<Reply, ClientError> {
        let command = self.settings.timeouts.command;
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        if std::mem::take(&mut self.needs_rset) {
            out.extend_from_slice(b"RSET\r\n");
            self.send_and_expect(&out, Stage::Rset).await?;
            out.clear();
        }
        let utf8 = if !recipient.is_ascii() && self.caps.smtputf8 { " SMTPUTF8" } else { "" };
        let _ = write!(out, "MAIL FROM:<>{utf8}\r\n");
        let pipelined = self.caps.pipelining;
        if pipelined {
            let _ = write!(out, "RCPT TO:<{recipient}>\r\nRSET\r\n");
        }
        let written = self.conn.write_all(&out, Stage::Mail, command).await;
        self.out = out;
        written.inspect_err(|_| self.broken = true)?;
        let result = self.probe_replies(recipient, pipelined).await;
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    async fn probe_replies(&mut self, recipient: &Mailbox, pipelined: bool) -> Result<Reply, ClientError> {
        let command = self.settings.timeouts.command;
        let mail = self.conn.read_reply(Stage::Mail, command).await?;
        if !mail.is_positive() {
            if pipelined {
                // RCPT and RSET were sent too: read their replies to stay in step.
                self.conn.read_reply(Stage::Rcpt, command).await?;
                self.conn.read_reply(Stage::Rset, command).await?;
            }
            return Err(ClientError::Rejected(Stage::Mail, mail));
        }
        if !pipelined {
            let rcpt = format!("RCPT TO:<{recipient}>\r\n");
            self.conn.write_all(rcpt.as_bytes(), Stage::Rcpt, command).await?;
        }
        let rcpt = self.conn.read_reply(Stage::Rcpt, command).await?;
        if rcpt.code == 421 {
            return Err(ClientError::Rejected(Stage::Rcpt, rcpt));
        }
        if !pipelined {
            self.conn.write_all(b"RSET\r\n", Stage::Rset, command).await?;
        }
        let rset = self.conn.read_reply(Stage::Rset, command).await?;
        if !rset.is_positive() {
            return Err(ClientError::Rejected(Stage::Rset, rset));
        }
        Ok(rcpt)
    }

    async fn send_and_expect(&mut self, bytes: &[u8], stage: Stage) -> Result<(), ClientError> {
        let command = self.settings.timeouts.command;
        let reply = async {
            self.conn.write_all(bytes, stage, command).await?;
            self.conn.read_reply(stage, command).await
        }
        .await
        .inspect_err(|_| self.broken = true)?;
        if !reply.is_positive() {
            self.broken = true;
            return Err(ClientError::Rejected(stage, reply));
        }
        Ok(())
    }
}
