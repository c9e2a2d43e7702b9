//! An HTTP peer answering from a script.

use std::collections::VecDeque;

use crate::http::{Body, Http, HttpError, Method, Request, Response};

/// A request as [`FakeHttp`] received it, body read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SentRequest {
    /// Every value of header `name` (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }
}

/// Answers each request with the next scripted reply (a failure once the script runs
/// out) and keeps every request it got.
#[derive(Debug, Default)]
pub struct FakeHttp {
    replies: VecDeque<Result<Response, HttpError>>,
    pub requests: Vec<SentRequest>,
}

impl FakeHttp {
    /// The next request gets `status` with `body`.
    pub fn answer(mut self, status: u16, body: &str) -> FakeHttp {
        self.replies.push_back(Ok(Response { status, headers: Vec::new(), body: body.as_bytes().to_vec() }));
        self
    }

    /// The next request fails with `error`.
    pub fn failing(mut self, error: HttpError) -> FakeHttp {
        self.replies.push_back(Err(error));
        self
    }

    /// The only request received; panics unless there was exactly one.
    pub fn only_request(&self) -> &SentRequest {
        match self.requests.as_slice() {
            [request] => request,
            other => panic!("expected one request, got {}", other.len()),
        }
    }
}

impl Http for FakeHttp {
    fn send(&mut self, request: Request<'_>) -> Result<Response, HttpError> {
        let length = request.body.len();
        let body = match request.body {
            Body::Empty => Vec::new(),
            Body::Bytes(bytes) => bytes,
            Body::Stream { chunks, .. } => chunks.flatten().collect(),
        };
        assert_eq!(body.len() as u64, length, "the body's length differs from what it announced");
        self.requests.push(SentRequest { method: request.method, url: request.url, headers: request.headers, body });
        let reply = self.replies.pop_front().unwrap_or_else(|| Err(HttpError::Connection("no more replies".into())))?;
        if reply.body.len() > request.max_response {
            return Err(HttpError::TooLarge);
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_requests_and_plays_the_script() {
        let mut http = FakeHttp::default().answer(200, "ok").failing(HttpError::Timeout).answer(200, "too long");
        let chunks = vec![b"ab".to_vec(), b"c".to_vec()];
        let request = Request::post("http://127.0.0.1/x")
            .header("Rcpt", "a@example.com")
            .header("rcpt", "b@example.com")
            .body(Body::Stream { length: 3, chunks: Box::new(chunks.into_iter()) });
        assert_eq!(http.send(request).map(|r| r.body), Ok(b"ok".to_vec()));
        assert_eq!(http.requests[0].body, b"abc");
        assert_eq!(http.requests[0].header_values("RCPT"), ["a@example.com", "b@example.com"]);
        assert_eq!(http.send(Request::post("http://127.0.0.1/x")), Err(HttpError::Timeout));
        assert_eq!(http.send(Request::post("http://127.0.0.1/x").max_response(3)), Err(HttpError::TooLarge));
        assert!(matches!(http.send(Request::post("http://127.0.0.1/x")), Err(HttpError::Connection(_))));
    }
}
