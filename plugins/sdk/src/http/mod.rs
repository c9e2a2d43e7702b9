//! Outbound HTTP (grant: `http`, and the plugin's `http.allow` list in the server's
//! config).
//!
//! Plugin logic takes `&mut impl Http` and builds a [`Request`]: [`HostHttp`] (feature
//! `http`) sends it through `wasi:http/outgoing-handler`, `testing::FakeHttp` answers in
//! host tests. Only plugins built with the feature import `wasi:http`, so the others
//! load without the grant.

use std::fmt;
use std::time::Duration;

#[cfg(feature = "http")]
mod host;
mod message;
mod url;

#[cfg(feature = "http")]
pub use host::HostHttp;
pub use message::header_section;
pub use url::Url;

/// The methods plugins use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

/// What goes after the request's header section.
pub enum Body<'a> {
    Empty,
    Bytes(Vec<u8>),
    /// `length` bytes in all, handed over chunk by chunk (sent as they come, never
    /// held whole); the request carries `Content-Length: length`.
    Stream {
        length: u64,
        chunks: Box<dyn Iterator<Item = Vec<u8>> + 'a>,
    },
}

impl Body<'_> {
    /// The number of bytes the body will have.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Stream { length, .. } => *length,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Body<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Body::Stream { length, .. } => write!(f, "Stream({length} bytes)"),
        }
    }
}

/// The longest response body a [`Request`] reads unless told otherwise.
pub const DEFAULT_MAX_RESPONSE: usize = 1024 * 1024;

/// A request to send.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: Method,
    pub url: String,
    /// Sent in order; a name may repeat.
    pub headers: Vec<(String, String)>,
    pub body: Body<'a>,
    /// For connecting, for the first byte of the answer and between its bytes. The
    /// server's own `http.timeout` and the plugin's wall time bound it anyway.
    pub timeout: Option<Duration>,
    /// A response body longer than this fails with [`HttpError::TooLarge`].
    pub max_response: usize,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, url: impl Into<String>) -> Request<'a> {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Body::Empty,
            timeout: None,
            max_response: DEFAULT_MAX_RESPONSE,
        }
    }

    pub fn post(url: impl Into<String>) -> Request<'a> {
        Request::new(Method::Post, url)
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request<'a> {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: Body<'a>) -> Request<'a> {
        self.body = body;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Request<'a> {
        self.timeout = Some(timeout);
        self
    }

    pub fn max_response(mut self, max: usize) -> Request<'a> {
        self.max_response = max;
        self
    }
}

/// A response, read whole (within the request's `max_response`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Names in lower case, as HTTP/2 and the host give them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Why a request failed. A refusal by the server's allow-list is an error like any
/// other: the plugin decides what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not `http://` or `https://` with a host, or a header is invalid.
    InvalidRequest(String),
    /// Refused before any connection: the destination is not in the plugin's
    /// `http.allow` list, or it resolves to an address that is not allowed.
    Denied(String),
    /// Connecting or the answer took too long.
    Timeout,
    /// The connection could not be made or broke off (refused, reset, TLS, DNS).
    Connection(String),
    /// The response body is longer than allowed (the request's `max_response` or the
    /// server's `http.max_response`).
    TooLarge,
    /// Anything else, described.
    Failed(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            HttpError::Denied(why) => write!(f, "refused by the server: {why}"),
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Connection(why) => write!(f, "connection failed: {why}"),
            HttpError::TooLarge => f.write_str("response too large"),
            HttpError::Failed(why) => f.write_str(why),
        }
    }
}

/// Sends requests: [`HostHttp`] in a plugin, `testing::FakeHttp` in host tests.
pub trait Http {
    fn send(&mut self, request: Request<'_>) -> Result<Response, HttpError>;
}
