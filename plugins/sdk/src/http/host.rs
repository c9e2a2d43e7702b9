//! [`Http`] over `wasi:http/outgoing-handler` (the `wasip2` crate's bindings).

use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method as WasiMethod, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

use super::{Body, Http, HttpError, Method, Request, Response, Url};

/// What `blocking-write-and-flush` takes at most per call.
const WRITE_CHUNK: usize = 4096;
/// What one read asks for.
const READ_CHUNK: u64 = 64 * 1024;

/// The host's `wasi:http/outgoing-handler`.
pub struct HostHttp;

impl Http for HostHttp {
    fn send(&mut self, request: Request<'_>) -> Result<Response, HttpError> {
        let url = Url::parse(&request.url)?;
        let outgoing = build(&request, &url)?;
        let body = outgoing.body().map_err(|()| failed("request body taken twice"))?;
        let options = request.timeout.map(options);
        // Sent first, written after: the host streams the body as it is written.
        let future = outgoing_handler::handle(outgoing, options).map_err(from_code)?;
        if let Err(write) = write_body(&body, request.body) {
            // A body dropped unfinished aborts the request; the response says why
            // (a refused connection, say) better than the broken stream does.
            drop(body);
            return Err(wait(&future).err().unwrap_or(write));
        }
        OutgoingBody::finish(body, None).map_err(from_code)?;
        let response = wait(&future)?;
        read_response(&response, request.max_response)
    }
}

fn wait(future: &FutureIncomingResponse) -> Result<IncomingResponse, HttpError> {
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(from_code(code)),
        Some(Err(())) | None => Err(failed("no response")),
    }
}

fn failed(why: &str) -> HttpError {
    HttpError::Failed(why.to_string())
}

fn build(request: &Request<'_>, url: &Url<'_>) -> Result<OutgoingRequest, HttpError> {
    let mut entries: Vec<(String, Vec<u8>)> =
        request.headers.iter().map(|(n, v)| (n.clone(), v.as_bytes().to_vec())).collect();
    if !matches!(request.body, Body::Empty) {
        entries.push(("content-length".to_string(), request.body.len().to_string().into_bytes()));
    }
    let headers =
        Fields::from_list(&entries).map_err(|e| HttpError::InvalidRequest(format!("header refused: {e:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
    };
    let scheme = if url.https { Scheme::Https } else { Scheme::Http };
    let invalid = |what: &str| HttpError::InvalidRequest(format!("{}: {what} refused", request.url));
    outgoing.set_method(&method).map_err(|()| invalid("method"))?;
    outgoing.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
    outgoing.set_authority(Some(url.authority)).map_err(|()| invalid("host"))?;
    outgoing.set_path_with_query(Some(url.path_with_query)).map_err(|()| invalid("path"))?;
    Ok(outgoing)
}

/// The same bound for connecting, the first byte and between bytes; a host that
/// refuses one keeps its own.
fn options(timeout: Duration) -> RequestOptions {
    let options = RequestOptions::new();
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));
    options
}

fn write_body(body: &OutgoingBody, content: Body<'_>) -> Result<(), HttpError> {
    let stream = body.write().map_err(|()| failed("request body stream taken twice"))?;
    let written = match content {
        Body::Empty => Ok(()),
        Body::Bytes(bytes) => write_all(&stream, &bytes),
        Body::Stream { chunks, .. } => chunks.into_iter().try_for_each(|chunk| write_all(&stream, &chunk)),
    };
    // The stream is a child of the body: dropped before the body is finished.
    drop(stream);
    written
}

fn write_all(stream: &OutputStream, bytes: &[u8]) -> Result<(), HttpError> {
    for piece in bytes.chunks(WRITE_CHUNK) {
        stream.blocking_write_and_flush(piece).map_err(from_stream)?;
    }
    Ok(())
}

fn read_response(response: &IncomingResponse, max: usize) -> Result<Response, HttpError> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let incoming = response.consume().map_err(|()| failed("response body taken twice"))?;
    let body = read_body(&incoming, max);
    drop(IncomingBody::finish(incoming));
    Ok(Response { status, headers, body: body? })
}

fn read_body(incoming: &IncomingBody, max: usize) -> Result<Vec<u8>, HttpError> {
    let stream: InputStream = incoming.stream().map_err(|()| failed("response body stream taken twice"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => {
                if body.len() + chunk.len() > max {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(body),
            Err(error) => return Err(from_stream(error)),
        }
    }
}

fn from_stream(error: StreamError) -> HttpError {
    match error {
        StreamError::Closed => HttpError::Connection("stream closed".to_string()),
        StreamError::LastOperationFailed(e) => match wasip2::http::types::http_error_code(&e) {
            Some(code) => from_code(code),
            None => HttpError::Connection(e.to_debug_string()),
        },
    }
}

fn from_code(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => HttpError::Denied(format!("{code:?}")),
        ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid => {
            HttpError::InvalidRequest(format!("{code:?}"))
        }
        ErrorCode::DnsTimeout
        | ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout => HttpError::Timeout,
        ErrorCode::HttpResponseBodySize(_) => HttpError::TooLarge,
        ErrorCode::InternalError(Some(why)) => HttpError::Failed(why),
        ErrorCode::DnsError(_)
        | ErrorCode::DestinationNotFound
        | ErrorCode::DestinationUnavailable
        | ErrorCode::DestinationIpUnroutable
        | ErrorCode::ConnectionRefused
        | ErrorCode::ConnectionTerminated
        | ErrorCode::ConnectionLimitReached
        | ErrorCode::TlsProtocolError
        | ErrorCode::TlsCertificateError
        | ErrorCode::TlsAlertReceived(_)
        | ErrorCode::HttpResponseIncomplete => HttpError::Connection(format!("{code:?}")),
        other => HttpError::Failed(format!("{other:?}")),
    }
}
