//! One mail transaction: MAIL, RCPT for each recipient, DATA and the content, with
//! the commands pipelined (RFC 2920) when the server allows. Every recipient gets its
//! own verdict.

use std::io::Write;

use super::SmtpClient;
use super::data::DataEncoder;
use super::error::{ClientError, Stage};
use crate::mail::Mailbox;
use crate::mail::params::{Body, MailParams, RcptParams, Ret};
use crate::wire::{Reply, Status};

/// Content is sent in blocks of about this size, each under the data block timeout.
const BLOCK: usize = 64 * 1024;

/// What a message asks of the server that takes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub size: u64,
    /// Declared `BODY=8BITMIME`: must not go raw to a server without 8BITMIME.
    pub eight_bit: bool,
    /// Declared `SMTPUTF8`: needs a server with SMTPUTF8 (RFC 6531 §3.4).
    pub smtputf8: bool,
}

/// Why a server cannot take a message at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsuitable {
    TooBig { limit: u64 },
    No8BitMime,
    NoSmtpUtf8,
}

/// One recipient's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The server took responsibility for it (the reply to the end of data).
    Delivered(Reply),
    /// 4xx: try again later.
    Transient(Reply),
    /// 5xx: give up.
    Permanent(Reply),
    /// `452 4.5.3` too many recipients, after others were taken: send it in another
    /// transaction right away.
    TooMany,
}

impl Verdict {
    fn from_reply(reply: &Reply) -> Verdict {
        if reply.is_positive() {
            Verdict::Delivered(reply.clone())
        } else if reply.is_permanent() {
            Verdict::Permanent(reply.clone())
        } else {
            Verdict::Transient(reply.clone())
        }
    }
}

/// The message as a transaction needs it.
pub struct Message<'a> {
    pub sender: Option<&'a Mailbox>,
    pub params: &'a MailParams,
    /// As stored: CRLF lines, not dot-stuffed.
    pub content: &'a [u8],
    pub needs: Needs,
}

/// One transaction under way.
struct Txn<'a, 'm> {
    message: &'a Message<'m>,
    recipients: &'a [(&'a Mailbox, &'a RcptParams)],
    verdicts: &'a mut [Option<Verdict>],
    /// The last transaction left state behind: RSET first.
    rset: bool,
}

impl SmtpClient {
    /// Whether this server can take a message with these needs.
    pub fn check(&self, needs: &Needs) -> Result<(), Unsuitable> {
        if self.caps.too_small_for(needs.size) {
            return Err(Unsuitable::TooBig { limit: self.caps.size.unwrap_or(0) });
        }
        if needs.smtputf8 && !self.caps.smtputf8 {
            return Err(Unsuitable::NoSmtpUtf8);
        }
        if needs.eight_bit && !self.caps.eight_bit_mime {
            return Err(Unsuitable::No8BitMime);
        }
        Ok(())
    }

    /// Runs one transaction. `verdicts` gets one entry per recipient; an entry left
    /// `None` has no verdict because the connection failed (the error says where).
    pub async fn send(
        &mut self,
        message: &Message<'_>,
        recipients: &[(&Mailbox, &RcptParams)],
        verdicts: &mut Vec<Option<Verdict>>,
    ) -> Result<(), ClientError> {
        verdicts.clear();
        verdicts.resize(recipients.len(), None);
        self.transactions += 1;
        let result = self.run(message, recipients, verdicts).await;
        if result.is_err() {
            self.broken = true;
        }
        result
    }

    async fn run(
        &mut self,
        message: &Message<'_>,
        recipients: &[(&Mailbox, &RcptParams)],
        verdicts: &mut [Option<Verdict>],
    ) -> Result<(), ClientError> {
        let rset = std::mem::take(&mut self.needs_rset);
        let mut txn = Txn { message, recipients, verdicts, rset };
        if self.caps.pipelining { self.run_pipelined(&mut txn).await } else { self.run_lock_step(&mut txn).await }
    }

    /// RFC 2920: MAIL, every RCPT and DATA in one write, then their replies in order.
    async fn run_pipelined(&mut self, txn: &mut Txn<'_, '_>) -> Result<(), ClientError> {
        let command = self.settings.timeouts.command;
        self.begin(txn);
        for (address, params) in txn.recipients {
            self.write_rcpt(address, params);
        }
        self.out.extend_from_slice(b"DATA\r\n");
        let mail = self.open_transaction(txn.rset).await?;
        let mut accepted = 0;
        for verdict in txn.verdicts.iter_mut() {
            let reply = self.conn.read_reply(Stage::Rcpt, command).await?;
            self.note(&reply);
            // Rejected at MAIL: every RCPT fails with it, whatever the server said.
            *verdict =
                if mail.is_positive() { rcpt_verdict(&reply, &mut accepted) } else { Some(Verdict::from_reply(&mail)) };
        }
        self.data(txn, accepted).await
    }

    /// One command at a time, each waiting for its reply.
    async fn run_lock_step(&mut self, txn: &mut Txn<'_, '_>) -> Result<(), ClientError> {
        let command = self.settings.timeouts.command;
        self.begin(txn);
        let mail = self.open_transaction(txn.rset).await?;
        if !mail.is_positive() {
            self.needs_rset = true;
            txn.verdicts.fill(Some(Verdict::from_reply(&mail)));
            return Ok(());
        }
        let mut accepted = 0;
        for ((address, params), verdict) in txn.recipients.iter().zip(txn.verdicts.iter_mut()) {
            self.out.clear();
            self.write_rcpt(address, params);
            self.flush(Stage::Rcpt).await?;
            let reply = self.conn.read_reply(Stage::Rcpt, command).await?;
            self.note(&reply);
            *verdict = rcpt_verdict(&reply, &mut accepted);
        }
        if accepted == 0 {
            self.needs_rset = true;
            return Ok(());
        }
        self.conn.write_all(b"DATA\r\n", Stage::Data, command).await?;
        self.data(txn, accepted).await
    }

    /// Starts the command batch: RSET if needed, then MAIL.
    fn begin(&mut self, txn: &Txn<'_, '_>) {
        self.out.clear();
        if txn.rset {
            self.out.extend_from_slice(b"RSET\r\n");
        }
        self.write_mail(txn.message);
    }

    /// Sends the batch `begin` started and reads the replies to RSET and MAIL.
    async fn open_transaction(&mut self, rset: bool) -> Result<Reply, ClientError> {
        let command = self.settings.timeouts.command;
        self.flush(if rset { Stage::Rset } else { Stage::Mail }).await?;
        if rset {
            let reply = self.conn.read_reply(Stage::Rset, command).await?;
            if !reply.is_positive() {
                return Err(ClientError::Rejected(Stage::Rset, reply));
            }
        }
        let mail = self.conn.read_reply(Stage::Mail, command).await?;
        self.note(&mail);
        Ok(mail)
    }

    /// Writes the commands gathered in `out`.
    async fn flush(&mut self, stage: Stage) -> Result<(), ClientError> {
        let out = std::mem::take(&mut self.out);
        let written = self.conn.write_all(&out, stage, self.settings.timeouts.command).await;
        self.out = out;
        written
    }

    /// From the reply to DATA on (its command already sent): the content, and the
    /// verdict for every accepted recipient.
    async fn data(&mut self, txn: &mut Txn<'_, '_>, accepted: usize) -> Result<(), ClientError> {
        let t = self.settings.timeouts.clone();
        let data = self.conn.read_reply(Stage::Data, t.data).await?;
        self.note(&data);
        if !data.is_intermediate() {
            self.needs_rset = true;
            fill(txn.verdicts, &data);
            return Ok(());
        }
        if accepted == 0 {
            // A pipelining server said 354 with no recipient: end the empty content
            // (RFC 2920 §3.1) and forget the transaction.
            self.conn.write_all(b".\r\n", Stage::Body, t.data_block).await?;
            let reply = self.conn.read_reply(Stage::DataDone, t.data_done).await?;
            self.note(&reply);
            self.needs_rset = true;
            return Ok(());
        }
        self.write_content(txn.message.content).await?;
        let done = self.conn.read_reply(Stage::DataDone, t.data_done).await?;
        self.note(&done);
        fill(txn.verdicts, &done);
        Ok(())
    }

    /// 421 means the server is closing the channel (RFC 5321 §3.8).
    fn note(&mut self, reply: &Reply) {
        if reply.code == 421 {
            self.broken = true;
        }
    }

    fn write_mail(&mut self, message: &Message<'_>) {
        let caps = &self.caps;
        let out = &mut self.out;
        out.extend_from_slice(b"MAIL FROM:<");
        if let Some(sender) = message.sender {
            let _ = write!(out, "{sender}");
        }
        out.push(b'>');
        if caps.size.is_some() {
            let _ = write!(out, " SIZE={}", message.content.len());
        }
        match message.params.body {
            Some(Body::EightBitMime) if caps.eight_bit_mime => out.extend_from_slice(b" BODY=8BITMIME"),
            Some(Body::SevenBit) if caps.eight_bit_mime => out.extend_from_slice(b" BODY=7BIT"),
            _ => {}
        }
        if message.params.smtputf8 && caps.smtputf8 {
            out.extend_from_slice(b" SMTPUTF8");
        }
        if caps.dsn {
            match message.params.ret {
                Some(Ret::Full) => out.extend_from_slice(b" RET=FULL"),
                Some(Ret::Hdrs) => out.extend_from_slice(b" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = &message.params.envid {
                let _ = write!(out, " ENVID={envid}");
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    fn write_rcpt(&mut self, address: &Mailbox, params: &RcptParams) {
        let out = &mut self.out;
        let _ = write!(out, "RCPT TO:<{address}>");
        if self.caps.dsn {
            if let Some(notify) = params.notify {
                if notify.never {
                    out.extend_from_slice(b" NOTIFY=NEVER");
                } else {
                    let names = [(notify.success, "SUCCESS"), (notify.failure, "FAILURE"), (notify.delay, "DELAY")];
                    let list: Vec<&str> = names.iter().filter(|(on, _)| *on).map(|(_, n)| *n).collect();
                    if !list.is_empty() {
                        let _ = write!(out, " NOTIFY={}", list.join(","));
                    }
                }
            }
            if let Some(orcpt) = &params.orcpt {
                let _ = write!(out, " ORCPT={orcpt}");
            }
        }
        out.extend_from_slice(b"\r\n");
    }

    async fn write_content(&mut self, content: &[u8]) -> Result<(), ClientError> {
        let timeout = self.settings.timeouts.data_block;
        let mut encoder = DataEncoder::default();
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let mut result = Ok(());
        for chunk in content.chunks(BLOCK) {
            encoder.encode(chunk, &mut out);
            if out.len() >= BLOCK {
                result = self.conn.write_all(&out, Stage::Body, timeout).await;
                out.clear();
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok() {
            encoder.finish(&mut out);
            result = self.conn.write_all(&out, Stage::Body, timeout).await;
        }
        out.clear();
        self.out = out;
        result
    }
}

/// A recipient's verdict from its RCPT reply: none yet if accepted (counted in
/// `accepted`), `TooMany` for a 452 after others were taken.
fn rcpt_verdict(reply: &Reply, accepted: &mut usize) -> Option<Verdict> {
    if reply.is_positive() {
        *accepted += 1;
        None
    } else if reply.code == 452 && *accepted > 0 && matches!(reply.status, None | Some(Status(4, 5, 3))) {
        Some(Verdict::TooMany)
    } else {
        Some(Verdict::from_reply(reply))
    }
}

/// Gives every recipient without a verdict the one `reply` says.
fn fill(verdicts: &mut [Option<Verdict>], reply: &Reply) {
    let verdict = Verdict::from_reply(reply);
    for slot in verdicts.iter_mut().filter(|v| v.is_none()) {
        *slot = Some(verdict.clone());
    }
}
