//! What a session needs of the connection under it: bytes both ways, and a look at
//! whether input is waiting without taking it. TCP is the real one; sessions are
//! generic over it so that tests can drive one over an in-memory stream.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

pub trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Resolves when input (or the end of it) has arrived, without reading it, so an
    /// idle session can wait without holding a read buffer.
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// Reads input that has already arrived; `WouldBlock` when there is none.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

impl Socket for TcpStream {
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }

    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::try_read(self, buf)
    }
}

#[cfg(test)]
pub mod memory {
    //! An in-memory socket for unit tests: one end of a `tokio::io::duplex`, with the
    //! readiness look the session wants.

    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, ReadBuf};

    use super::Socket;

    pub struct MemorySocket {
        inner: DuplexStream,
        /// Input taken from `inner` to answer `readable`, not yet read.
        early: Vec<u8>,
        closed: bool,
    }

    /// A connected pair: the session's socket and the test's end.
    pub fn pair() -> (MemorySocket, DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        (MemorySocket { inner: ours, early: Vec::new(), closed: false }, theirs)
    }

    impl Socket for MemorySocket {
        async fn readable(&mut self) -> io::Result<()> {
            if self.early.is_empty() && !self.closed {
                let mut chunk = [0u8; 4096];
                let n = self.inner.read(&mut chunk).await?;
                self.closed = n == 0;
                self.early.extend_from_slice(&chunk[..n]);
            }
            Ok(())
        }

        fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.early.is_empty() || self.closed {
                return Ok(self.take_early(buf));
            }
            let mut read = ReadBuf::new(buf);
            let mut cx = Context::from_waker(Waker::noop());
            match Pin::new(&mut self.inner).poll_read(&mut cx, &mut read) {
                Poll::Ready(Ok(())) => Ok(read.filled().len()),
                Poll::Ready(Err(e)) => Err(e),
                Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    impl MemorySocket {
        fn take_early(&mut self, buf: &mut [u8]) -> usize {
            let n = self.early.len().min(buf.len());
            buf[..n].copy_from_slice(&self.early[..n]);
            self.early.drain(..n);
            n
        }
    }

    impl AsyncRead for MemorySocket {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if !this.early.is_empty() {
                let n = this.take_early(buf.initialize_unfilled());
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            Pin::new(&mut this.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for MemorySocket {
        fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
        }
        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_flush(cx)
        }
        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
        }
    }
}
