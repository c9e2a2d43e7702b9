//! Sending one plugin request: check it, resolve its host once through the server's
//! resolver, connect to an address that passed (never resolving again, so a second
//! answer cannot lead somewhere else), TLS with the listed host as the server name,
//! HTTP/1.1, and a response held to `max_response` and the deadline. Redirects are
//! the plugin's to follow or not: this sends the one request it was given.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use http::Request;
use http_body_util::BodyExt;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, WasiBody};

use super::allow::{listed, permitted};
use super::body::{Limited, Outcome, Tally};
use crate::config::{Host, HttpConfig, HttpOrigin, HttpScheme};
use crate::dns::{DnsError, SharedResolver, lookup_ip};

/// What sending needs, taken from the plugin's store when the request is made.
pub(super) struct Send {
    pub plugin: String,
    pub http: Option<Arc<HttpConfig>>,
    pub resolver: Option<SharedResolver>,
    /// The call's deadline, less the plugin's margin to act on a timeout.
    pub call_deadline: Instant,
}

/// A response, and the connection's I/O to drive while its body is read.
pub type Sent = (http::Response<WasiBody>, Box<dyn Future<Output = Result<(), Error>> + std::marker::Send>);

impl Send {
    pub async fn send(self, mut request: Request<WasiBody>) -> Result<Sent, Error> {
        let mut tally = Tally::new(&self.plugin, request.method().as_str(), request.uri().to_string());
        let Some(http) = self.http else {
            return Err(tally.fail(Outcome::Denied, "no http.allow", Error::HttpRequestDenied));
        };
        let origin = match listed(&http.allow, request.uri()) {
            Ok(origin) => origin,
            Err(denied) => return Err(tally.fail(Outcome::Denied, denied, Error::HttpRequestDenied)),
        };
        let deadline = (Instant::now() + http.timeout.get()).min(self.call_deadline);
        let timed_out = |tally: &mut Tally, what: &str, error: Error| {
            tally.fail(Outcome::Timeout, format!("{what} past the timeout"), error)
        };
        let ips = match timeout_at(deadline, addresses(self.resolver.as_ref(), &origin.host)).await {
            Err(_) => return Err(timed_out(&mut tally, "DNS lookup", Error::DnsTimeout)),
            Ok(Err(error)) => return Err(tally.fail(Outcome::Error, &error, dns_error(&error))),
            Ok(Ok(ips)) => ips,
        };
        let ips = match permitted(&http.allow, &origin, ips) {
            Ok(ips) => ips,
            Err(denied) => return Err(tally.fail(Outcome::Denied, denied, Error::HttpRequestDenied)),
        };
        let stream = match timeout_at(deadline, connect(&ips, origin.port)).await {
            Err(_) => return Err(timed_out(&mut tally, "connecting", Error::ConnectionTimeout)),
            Ok(Err(error)) => return Err(tally.fail(Outcome::Error, &error, Error::ConnectionRefused)),
            Ok(Ok(stream)) => stream,
        };
        let sending = async {
            // The request line carries the path only; the host is in `Host`.
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
            match origin.scheme {
                HttpScheme::Http => exchange(TokioIo::new(stream), request).await,
                HttpScheme::Https => {
                    let tls = tls_connector()?.connect(server_name(&origin)?, stream).await.map_err(Error::Tls)?;
                    exchange(TokioIo::new(tls), request).await
                }
            }
        };
        let (response, io) = match timeout_at(deadline, sending).await {
            Err(_) => return Err(timed_out(&mut tally, "response", Error::HttpResponseTimeout)),
            Ok(Err(error)) => return Err(tally.fail(Outcome::Error, error.to_string(), error)),
            Ok(Ok(sent)) => sent,
        };
        tally.status = Some(response.status().as_u16());
        let limit = http.max_response.bytes();
        if let Some(length) = content_length(&response).filter(|&length| length > limit) {
            let why = format!("Content-Length {length} over max_response ({limit} bytes)");
            return Err(tally.fail(Outcome::TooLarge, why, Error::HttpResponseBodySize(Some(length))));
        }
        let response = response.map(|body| Limited::new(body, limit, deadline, tally).boxed_unsync());
        let io = async move {
            timeout_at(deadline, std::pin::Pin::from(io)).await.unwrap_or(Err(Error::HttpResponseTimeout))
        };
        Ok((response, Box::new(io)))
    }
}

async fn addresses(resolver: Option<&SharedResolver>, host: &Host) -> Result<Vec<IpAddr>, DnsError> {
    match host {
        Host::Ip(ip) => Ok(vec![*ip]),
        Host::Name(name) => {
            let resolver = resolver.ok_or_else(|| DnsError::Failed("no resolver".into()))?;
            lookup_ip(resolver.as_ref(), name).await
        }
    }
}

fn dns_error(error: &DnsError) -> Error {
    match error {
        DnsError::Timeout => Error::DnsTimeout,
        DnsError::NotFound | DnsError::NoRecords => Error::DestinationNotFound,
        DnsError::Failed(why) => Error::DnsError { rcode: Some(why.clone()), info_code: None },
    }
}

/// The first address that answers, in the resolver's order.
async fn connect(ips: &[IpAddr], port: u16) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other("no address");
    for &ip in ips {
        match TcpStream::connect(SocketAddr::new(ip, port)).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// One HTTP/1.1 request on a fresh connection; the connection's future comes back
/// to be driven while the body is read.
async fn exchange<IO>(io: IO, request: Request<WasiBody>) -> Result<Sent, Error>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + std::marker::Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let mut connection = Box::pin(connection);
    let mut response = Box::pin(sender.send_request(request));
    let (response, connection) = tokio::select! {
        biased;
        response = &mut response => (response?, Some(connection)),
        // The server may have answered and closed before the response was polled.
        ended = &mut connection => {
            ended?;
            (response.await?, None)
        }
    };
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    let io = async move {
        match connection {
            Some(connection) => connection.await.map_err(Error::from),
            None => Ok(()),
        }
    };
    Ok((response, Box::new(io)))
}

fn content_length<B>(response: &http::Response<B>) -> Option<u64> {
    response.headers().get(http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn system_roots() -> RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::warn!(%error, "reading the system's trust store for plugins' HTTPS");
    }
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        tracing::warn!("no certificate in the system's trust store: plugins' HTTPS uses Mozilla's roots");
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    roots
}

/// The name the certificate must match: the listed host (an address for an IP entry).
fn server_name(origin: &HttpOrigin) -> Result<ServerName<'static>, Error> {
    match &origin.host {
        Host::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
        Host::Name(name) => ServerName::try_from(name.clone()).map_err(|_| Error::HttpRequestUriInvalid),
    }
}

/// The system's trust store, so a policy service behind the site's own CA is trusted the
/// way the rest of the machine trusts it (`SSL_CERT_FILE`/`SSL_CERT_DIR` are honoured);
/// Mozilla's roots (webpki-roots) when the system has none. Built once.
fn tls_connector() -> Result<TlsConnector, Error> {
    static CONFIG: OnceLock<Option<Arc<ClientConfig>>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let roots = system_roots();
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Some(Arc::new(config))
    });
    config.as_ref().map(|config| TlsConnector::from(Arc::clone(config))).ok_or(Error::TlsProtocolError)
}
