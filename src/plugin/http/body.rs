//! A response body held to the request's limits (its size and its deadline), and the
//! record of one request: counted and logged once, when it is over.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use wasmtime_wasi_http::Error;

/// What became of a request, as the metric's `result` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    Timeout,
    TooLarge,
    Error,
}

/// Every `result` of `sluice_plugin_http_requests_total`.
pub const RESULTS: [&str; 5] = ["ok", "denied", "timeout", "too_large", "error"];

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Timeout => "timeout",
            Outcome::TooLarge => "too_large",
            Outcome::Error => "error",
        }
    }
}

/// One request: when it ends (dropped with its response body, or on an earlier
/// failure), one debug line and one count.
pub struct Tally {
    pub plugin: String,
    pub method: String,
    pub uri: String,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub bytes: u64,
    pub why: Option<String>,
    started: Instant,
}

impl Tally {
    pub fn new(plugin: &str, method: &str, uri: String) -> Tally {
        Tally {
            plugin: plugin.to_string(),
            method: method.to_string(),
            uri,
            outcome: Outcome::Ok,
            status: None,
            bytes: 0,
            why: None,
            started: Instant::now(),
        }
    }

    /// Ends it with `outcome`, saying why; the error is the one the plugin sees.
    pub fn fail(&mut self, outcome: Outcome, why: impl std::fmt::Display, error: Error) -> Error {
        self.outcome = outcome;
        self.why = Some(why.to_string());
        error
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        let result = self.outcome.name();
        tracing::debug!(
            plugin = %self.plugin,
            method = %self.method,
            uri = %self.uri,
            result,
            status = self.status,
            bytes = self.bytes,
            millis = self.started.elapsed().as_millis() as u64,
            why = self.why.as_deref().unwrap_or(""),
            "plugin http request"
        );
        metrics::counter!("sluice_plugin_http_requests_total", "plugin" => self.plugin.clone(), "result" => result)
            .increment(1);
    }
}

/// A response body that ends in an error the plugin sees once it grows past `left`
/// bytes or its deadline passes.
pub struct Limited<B> {
    inner: B,
    left: u64,
    limit: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    tally: Tally,
}

impl<B> Limited<B> {
    pub fn new(inner: B, limit: u64, deadline: tokio::time::Instant, tally: Tally) -> Limited<B> {
        Limited { inner, left: limit, limit, deadline: Box::pin(tokio::time::sleep_until(deadline)), tally }
    }
}

impl<B> Body for Limited<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Error>,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.tally.outcome != Outcome::Ok {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => frame,
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    let error =
                        this.tally.fail(Outcome::Timeout, "response body past the timeout", Error::HttpResponseTimeout);
                    return Poll::Ready(Some(Err(error)));
                }
                return Poll::Pending;
            }
        };
        match frame {
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, |data| data.len() as u64);
                if len > this.left {
                    let why = format!("response body over max_response ({} bytes)", this.limit);
                    let error = this.tally.fail(Outcome::TooLarge, why, Error::HttpResponseBodySize(Some(this.limit)));
                    return Poll::Ready(Some(Err(error)));
                }
                this.left -= len;
                this.tally.bytes += len;
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                let error: Error = error.into();
                this.tally.outcome = Outcome::Error;
                this.tally.why = Some(error.to_string());
                Poll::Ready(Some(Err(error)))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.tally.outcome != Outcome::Ok || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
