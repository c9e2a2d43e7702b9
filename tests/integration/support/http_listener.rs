//! A loopback HTTP/1.1 listener with one canned reply, counting the connections it
//! accepts: the tests of the `http` grant assert that refused requests reach none.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_rustls::rustls;

use super::tls::TestPki;

#[derive(Clone, Debug)]
pub enum Reply {
    /// 200 with this body.
    Body(&'static str),
    /// 200 with this body, after a pause.
    Slow(Duration, &'static str),
    /// 200 with `Content-Length` and that many bytes.
    Sized(usize),
    /// 200, chunked, that many bytes (no length up front).
    Chunked(usize),
    /// 302 to this URL.
    Redirect(String),
}

pub struct HttpListener {
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
}

impl HttpListener {
    pub fn start(reply: Reply) -> HttpListener {
        HttpListener::serve(reply, None)
    }

    /// The same over TLS, with the certificate and key of `pki` (`https://`).
    pub fn start_tls(reply: Reply, pki: &TestPki) -> HttpListener {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(pki.cert_pem.as_bytes()).map(|c| c.unwrap()).collect();
        let key = PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        HttpListener::serve(reply, Some(Arc::new(config)))
    }

    fn serve(reply: Reply, tls: Option<Arc<rustls::ServerConfig>>) -> HttpListener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind HTTP listener");
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counted.fetch_add(1, Ordering::SeqCst);
                let reply = reply.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    match tls {
                        None => answer(stream, &reply),
                        Some(config) => {
                            let Ok(connection) = rustls::ServerConnection::new(config) else { return };
                            answer(rustls::StreamOwned::new(connection, stream), &reply)
                        }
                    }
                });
            }
        });
        HttpListener { addr, accepted }
    }

    /// `http://127.0.0.1:PORT`
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn answer(mut stream: impl Read + Write, reply: &Reply) {
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let head = |status: &str, headers: &str| format!("HTTP/1.1 {status}\r\nConnection: close\r\n{headers}\r\n");
    let _ = match reply {
        Reply::Body(body) => stream.write_all(format!("{}{body}", head("200 OK", &length(body.len()))).as_bytes()),
        Reply::Slow(pause, body) => {
            std::thread::sleep(*pause);
            stream.write_all(format!("{}{body}", head("200 OK", &length(body.len()))).as_bytes())
        }
        Reply::Sized(size) => stream
            .write_all(head("200 OK", &length(*size)).as_bytes())
            .and_then(|()| stream.write_all(&vec![b'x'; *size])),
        Reply::Chunked(size) => {
            let chunk = vec![b'x'; 8192];
            let mut result = stream.write_all(head("200 OK", "Transfer-Encoding: chunked\r\n").as_bytes());
            let mut left = *size;
            while result.is_ok() && left > 0 {
                let n = left.min(chunk.len());
                left -= n;
                result = stream
                    .write_all(format!("{n:x}\r\n").as_bytes())
                    .and_then(|()| stream.write_all(&chunk[..n]))
                    .and_then(|()| stream.write_all(b"\r\n"));
            }
            result.and_then(|()| stream.write_all(b"0\r\n\r\n"))
        }
        Reply::Redirect(to) => {
            stream.write_all(head("302 Found", &format!("Location: {to}\r\n{}", length(0))).as_bytes())
        }
    };
}

fn length(n: usize) -> String {
    format!("Content-Length: {n}\r\n")
}
