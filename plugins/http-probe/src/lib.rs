//! A test plugin for the `http` grant: at DATA it makes the one request its config
//! describes, through the standard `wasi:http/outgoing-handler`, and reports what
//! came of it in the header `X-Test-Http` (`status=200 bytes=5 body=hello`, or
//! `error=HttpRequestDenied`). It imports `wasi:http`, so without the grant it is
//! refused at load. (Not in `plugins/testing`: the import would make every plugin
//! config of the suite need the grant.)
//!
//! ```toml
//! [plugin.config]
//! url = "http://127.0.0.1:8080/path"
//! method = "POST"          # default GET
//! body = "..."             # sent with POST
//! header = "X-Test-Http"   # where to report (default)
//! ```

use sluice_plugin::config::{self, Value};
use sluice_plugin::prelude::*;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// What of the response body the header shows.
const SHOWN: usize = 200;

pub struct HttpProbe;

impl Plugin for HttpProbe {
    fn describe() -> PluginInfo {
        sluice_plugin::plugin_info!(Stage::Data)
    }

    fn data(_session: &Session, _txn: &Transaction, _message: &Message) -> DataResult {
        let config = config::load();
        let report = match request(&config) {
            Ok((status, body)) => {
                let shown = String::from_utf8_lossy(&body[..body.len().min(SHOWN)]).into_owned();
                format!("status={status} bytes={} body={shown}", body.len())
            }
            Err(error) => format!("error={error}"),
        };
        let report = report.replace(|c: char| c.is_control(), " ");
        let header = config.str("header").unwrap_or("X-Test-Http").to_string();
        DataResult::from(Outcome::proceed()).add_header(header, report)
    }
}

fn error_code(code: ErrorCode) -> String {
    // Only the variant's name: payloads would make the header vary.
    let text = format!("{code:?}");
    let name = text.strip_prefix("ErrorCode::").unwrap_or(&text);
    name.split(['(', ' ', '{']).next().unwrap_or("").to_string()
}

fn request(config: &Value) -> Result<(u16, Vec<u8>), String> {
    let url = config.str("url").ok_or("no url")?;
    let (scheme, rest) = url.split_once("://").ok_or("url without a scheme")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let post = config.str("method").is_some_and(|m| m.eq_ignore_ascii_case("POST"));
    let request = OutgoingRequest::new(Fields::new());
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let set = |ok: Result<(), ()>, what: &str| ok.map_err(|()| format!("invalid {what}"));
    set(request.set_method(if post { &Method::Post } else { &Method::Get }), "method")?;
    set(request.set_scheme(Some(&scheme)), "scheme")?;
    set(request.set_authority(Some(authority)), "authority")?;
    set(request.set_path_with_query(Some(path)), "path")?;
    let body = if post { Some(request.body().map_err(|()| "no request body")?) } else { None };
    let response = outgoing_handler::handle(request, None).map_err(error_code)?;
    if let Some(body) = body {
        let stream = body.write().map_err(|()| "no body stream")?;
        let sent = stream.blocking_write_and_flush(config.str("body").unwrap_or("").as_bytes());
        drop(stream);
        sent.map_err(|e| format!("writing the body: {e:?}"))?;
        OutgoingBody::finish(body, None).map_err(error_code)?;
    }
    response.subscribe().block();
    let response = response.get().ok_or("no response")?.map_err(|()| "response taken")?.map_err(error_code)?;
    let status = response.status();
    let body = response.consume().map_err(|()| "no response body")?;
    let data = read_all(&body);
    drop(body);
    data.map(|data| (status, data))
}

fn read_all(body: &IncomingBody) -> Result<Vec<u8>, String> {
    let stream = body.stream().map_err(|()| "no body stream")?;
    let mut data = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(StreamError::Closed) => return Ok(data),
            // A failed body read carries an error-code when the host gives one;
            // wasmtime-wasi-http 48 gives its message instead.
            Err(StreamError::LastOperationFailed(error)) => {
                return Err(
                    wasip2::http::types::http_error_code(&error).map_or_else(|| error.to_debug_string(), error_code)
                );
            }
        }
    }
}

sluice_plugin::export!(HttpProbe);
