//! Receiving message content: DATA (dot-terminated) and BDAT (chunked).

use std::sync::Arc;

use bytes::Buf;
use tokio::time::Instant;

use super::super::connection::ReadError;
use super::super::data::{DataDecoder, Framing, Progress};
use super::super::replies;
use super::super::socket::Socket;
use super::super::state::{ChunkedBody, Flow, SessionState};
use super::Session;
use crate::queue::BufferStatus;
use crate::wire::{Reply, Status};

/// After this much content (twice the limit, at least 1 MB over it) an oversized
/// message is cut off instead of being read to its end.
fn abort_threshold(limit: u64) -> u64 {
    limit.saturating_add(limit.max(1 << 20))
}

impl<S: Socket> Session<S> {
    /// Checks that a transaction is ready for content; the reply says why not.
    fn content_allowed(&self) -> Result<(), Reply> {
        match &self.state {
            SessionState::AwaitingHelo => Err(replies::NEED_HELO),
            SessionState::Greeted { transaction: None, .. } => Err(replies::NEED_MAIL),
            SessionState::Greeted { transaction: Some(t), .. } if t.recipients.is_empty() => {
                Err(replies::NO_VALID_RECIPIENTS)
            }
            SessionState::Greeted { .. } => Ok(()),
        }
    }

    pub(super) async fn on_data(&mut self) -> Flow {
        if let Err(reply) = self.content_allowed() {
            return self.reply(reply);
        }
        if self.state.transaction_mut().is_some_and(|t| t.chunked.is_some()) {
            return self.reply(replies::DATA_AFTER_BDAT);
        }
        // RFC 2920 §3.1: DATA ends a pipelined group. Content that arrived with it was
        // sent blind, before our 354: refuse rather than guess where it belongs.
        if !self.conn.input.is_empty() {
            tracing::info!("message content sent before the 354 reply");
            self.reply(replies::PIPELINING_VIOLATION);
            return Flow::Close;
        }
        self.conn.queue_reply(&replies::START_DATA);
        let limits = &self.ctx.config.limits;
        let id = self.ctx.queue.next_id();
        let mut buffer = self.ctx.queue.new_buffer(id, limits.max_message_size.bytes());
        let mut decoder = DataDecoder::new(Framing::DotTerminated, limits.max_line_length);
        let deadline = Instant::now() + limits.data_timeout.get();
        let give_up_after = abort_threshold(limits.max_message_size.bytes());
        loop {
            match decoder.feed(&self.conn.input, buffer.writer()) {
                Progress::Done { consumed } => {
                    self.conn.input.advance(consumed);
                    buffer.absorb().await;
                    break;
                }
                Progress::NeedMore => {
                    self.conn.input.clear();
                    buffer.absorb().await;
                }
            }
            if buffer.seen() > give_up_after {
                return self.abort_oversized();
            }
            if let Err(error) = self.conn.fill(deadline).await {
                self.on_read_error(error);
                return Flow::Close;
            }
        }
        self.accept_message(id, buffer, &decoder).await
    }

    pub(super) async fn on_bdat(&mut self, size: u64, last: bool) -> Flow {
        let limits = &self.ctx.config.limits;
        let deadline = Instant::now() + limits.data_timeout.get();
        let give_up_after = abort_threshold(limits.max_message_size.bytes());
        let max_size = limits.max_message_size.bytes();
        let max_line = limits.max_line_length;
        if let Err(reply) = self.content_allowed() {
            // The chunk is consumed either way; otherwise its bytes would be read as commands.
            return match self.discard(size, deadline).await {
                Ok(()) => self.reply(reply),
                Err(error) => {
                    self.on_read_error(error);
                    Flow::Close
                }
            };
        }
        let queue = Arc::clone(&self.ctx.queue);
        let Some(transaction) = self.state.transaction_mut() else { return Flow::Close };
        let mut body = transaction.chunked.take().unwrap_or_else(|| {
            let id = queue.next_id();
            Box::new(ChunkedBody {
                id,
                buffer: queue.new_buffer(id, max_size),
                decoder: DataDecoder::new(Framing::Chunked, max_line),
            })
        });
        let mut remaining = size;
        while remaining > 0 {
            if self.conn.input.is_empty()
                && let Err(error) = self.conn.fill(deadline).await
            {
                self.on_read_error(error);
                return Flow::Close;
            }
            let take = remaining.min(self.conn.input.len() as u64) as usize;
            body.decoder.feed(&self.conn.input[..take], body.buffer.writer());
            self.conn.input.advance(take);
            body.buffer.absorb().await;
            remaining -= take as u64;
            if body.buffer.seen() > give_up_after {
                return self.abort_oversized();
            }
        }
        if body.buffer.status() == BufferStatus::TooBig {
            // RFC 3030: after an error reply the client sends no further chunks.
            self.state.take_transaction();
            return self.reply(replies::MESSAGE_TOO_BIG);
        }
        if last {
            let ChunkedBody { id, mut buffer, mut decoder } = *body;
            decoder.finish(buffer.writer());
            buffer.absorb().await;
            return self.accept_message(id, buffer, &decoder).await;
        }
        if let Some(transaction) = self.state.transaction_mut() {
            transaction.chunked = Some(body);
        }
        self.reply(Reply::owned(250, Status(2, 0, 0), format!("Ok: {size} octets received")))
    }

    async fn discard(&mut self, mut size: u64, deadline: Instant) -> Result<(), ReadError> {
        while size > 0 {
            if self.conn.input.is_empty() {
                self.conn.fill(deadline).await?;
            }
            let take = size.min(self.conn.input.len() as u64) as usize;
            self.conn.input.advance(take);
            size -= take as u64;
        }
        Ok(())
    }

    /// Far past the limit: answer now and hang up instead of reading on.
    fn abort_oversized(&mut self) -> Flow {
        tracing::info!("message far over the size limit; closing");
        self.state.take_transaction();
        self.conn.queue_reply(&replies::MESSAGE_TOO_BIG);
        Flow::Close
    }
}
