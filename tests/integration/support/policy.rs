//! A policy service for the http-policy plugin: an HTTP/1.1 server on loopback that
//! answers each posted JSON document with what the test's function says, and keeps
//! the documents.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// What the service answers: status, body, and how long it thinks first.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn json(body: &str) -> Answer {
        Answer { status: 200, body: body.to_string(), delay: Duration::ZERO }
    }
}

pub struct PolicyServer {
    pub addr: SocketAddr,
    documents: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
}

impl PolicyServer {
    pub fn start(answer: fn(&Value) -> Answer) -> PolicyServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the policy service");
        let addr = listener.local_addr().unwrap();
        let documents = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, stopping) = (documents.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, answer, &kept));
            }
        });
        PolicyServer { addr, documents, stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn documents(&self) -> Vec<Value> {
        self.documents.lock().unwrap().clone()
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// One connection: requests one after the other (the client may keep it alive).
fn serve(stream: TcpStream, answer: fn(&Value) -> Answer, kept: &Mutex<Vec<Value>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = stream.try_clone().expect("clone the stream");
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let document: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        kept.lock().unwrap().push(document.clone());
        let reply = answer(&document);
        std::thread::sleep(reply.delay);
        let head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            reply.status,
            reply.body.len()
        );
        if writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(reply.body.as_bytes())).is_err() {
            return;
        }
    }
}
