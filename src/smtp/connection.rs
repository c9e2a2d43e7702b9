//! Buffered I/O for one client: command lines with a hard length limit, raw reads for
//! message content, and replies that are held back until the client has to wait for
//! them, which is what makes PIPELINING (RFC 2920) cheap: one write per group.

use std::io;

use bytes::{Buf, BytesMut};
use memchr::memchr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;

use super::socket::Socket;
use super::stream::Stream;
use crate::wire::Reply;

const READ_CHUNK: usize = 16 * 1024;
/// Above this, an empty read buffer is given back before waiting for an idle client.
const IDLE_BUFFER: usize = 1024;

pub enum ReadError {
    /// The client closed the connection.
    Closed,
    /// The deadline passed.
    TimedOut,
    Io(io::Error),
}

pub enum Line {
    /// A command line without its line ending.
    Complete(BytesMut),
    /// The line was longer than allowed; it has been discarded up to its end.
    TooLong,
}

pub struct Connection<S> {
    stream: Option<Stream<S>>,
    /// Received bytes not yet consumed.
    pub input: BytesMut,
    /// Replies not yet sent.
    output: Vec<u8>,
}

impl<S: Socket> Connection<S> {
    pub fn new(stream: Stream<S>) -> Self {
        Connection { stream: Some(stream), input: BytesMut::new(), output: Vec::new() }
    }

    pub fn stream_ref(&self) -> Option<&Stream<S>> {
        self.stream.as_ref()
    }

    pub fn stream_mut(&mut self) -> Option<&mut Stream<S>> {
        self.stream.as_mut()
    }

    pub fn queue_reply(&mut self, reply: &Reply) {
        reply.write_to(&mut self.output);
    }

    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let stream = self.stream.as_mut().ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))?;
        stream.write_all(&self.output).await?;
        stream.flush().await?;
        self.output.clear();
        Ok(())
    }

    /// Flushes pending replies if the client is now waiting for them, then reads more.
    pub async fn fill(&mut self, deadline: Instant) -> Result<(), ReadError> {
        self.flush().await.map_err(ReadError::Io)?;
        let Some(stream) = self.stream.as_mut() else {
            return Err(ReadError::Io(io::Error::from(io::ErrorKind::NotConnected)));
        };
        // An idle client holds no read buffer while we wait for it: with thousands of
        // idle connections the 16 KiB each would be most of the server's memory.
        if self.input.is_empty()
            && let Stream::Plain(socket) = stream
        {
            if self.input.capacity() > IDLE_BUFFER {
                self.input = BytesMut::new();
            }
            match timeout_at(deadline, socket.readable()).await {
                Err(_) => return Err(ReadError::TimedOut),
                Ok(Err(e)) => return Err(ReadError::Io(e)),
                Ok(Ok(())) => {}
            }
        }
        self.input.reserve(READ_CHUNK);
        match timeout_at(deadline, stream.read_buf(&mut self.input)).await {
            Err(_) => Err(ReadError::TimedOut),
            Ok(Ok(0)) => Err(ReadError::Closed),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ReadError::Io(e)),
        }
    }

    /// Reads one command line of at most `max` bytes including its line ending.
    /// Overlong input is thrown away as it arrives, so memory stays bounded whatever
    /// the client sends.
    pub async fn read_line(&mut self, max: usize, deadline: Instant) -> Result<Line, ReadError> {
        let mut discarding = false;
        loop {
            if let Some(newline) = memchr(b'\n', &self.input) {
                if discarding || newline + 1 > max {
                    self.input.advance(newline + 1);
                    return Ok(Line::TooLong);
                }
                let mut line = self.input.split_to(newline + 1);
                line.truncate(newline);
                // CRLF is the line ending; a bare LF is tolerated in commands.
                if line.last() == Some(&b'\r') {
                    line.truncate(newline - 1);
                }
                return Ok(Line::Complete(line));
            }
            if self.input.len() >= max {
                discarding = true;
                self.input.clear();
            }
            self.fill(deadline).await?;
        }
    }

    /// Switches to TLS. Anything the client sent after STARTTLS and before the
    /// handshake is thrown away unread (CVE-2011-0411 and the 2021 "NO STARTTLS" attacks).
    pub async fn start_tls(&mut self, acceptor: &TlsAcceptor, deadline: Instant) -> io::Result<()> {
        self.flush().await?;
        self.input.clear();
        let socket = match self.stream.take() {
            Some(Stream::Plain(socket)) => socket,
            Some(tls @ Stream::Tls(_)) => {
                self.stream = Some(tls);
                return Err(io::Error::other("TLS already active"));
            }
            None => return Err(io::Error::from(io::ErrorKind::NotConnected)),
        };
        match timeout_at(deadline, acceptor.accept(socket)).await {
            Ok(Ok(tls)) => {
                self.stream = Some(Stream::Tls(Box::new(tls)));
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
        }
    }

    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        if let Some(stream) = self.stream.as_mut() {
            let _ = stream.shutdown().await;
        }
    }
}
