//! A deliberately simple blocking SMTP client that sends exactly the bytes it is
//! given, for the malformed and adversarial cases real clients refuse to produce.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// All lines joined with '\n', without codes.
    pub text: String,
    /// The raw lines as received.
    pub lines: Vec<String>,
}

impl Reply {
    /// The enhanced status code of the last line, e.g. "5.7.1".
    pub fn status(&self) -> &str {
        self.lines.last().and_then(|l| l.get(4..)).and_then(|t| t.split(' ').next()).unwrap_or("")
    }
}

pub struct Client {
    reader: BufReader<Box<dyn ReadWrite>>,
    /// The socket, when the client made it (for tests that take it over).
    tcp: Option<TcpStream>,
}

pub trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

impl Client {
    /// Connects and reads the greeting.
    pub fn connect(addr: SocketAddr) -> (Client, Reply) {
        let mut client = Client::connect_silent(addr);
        let greeting = client.read_reply();
        (client, greeting)
    }

    /// Connects from the loopback address `source` (such as 127.0.1.1: a client of
    /// another network than 127.0.0.1) and reads the greeting.
    pub fn connect_from(addr: SocketAddr, source: std::net::IpAddr) -> (Client, Reply) {
        // std cannot bind before connecting; tokio's socket can, and hands over.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
        let stream = runtime.block_on(async {
            let socket = tokio::net::TcpSocket::new_v4().expect("socket");
            socket.bind(SocketAddr::new(source, 0)).expect("bind the source address");
            socket.connect(addr).await.expect("connect").into_std().expect("std stream")
        });
        stream.set_nonblocking(false).unwrap();
        let mut client = Client::from_tcp(stream);
        let greeting = client.read_reply();
        (client, greeting)
    }

    /// Connects without reading anything.
    pub fn connect_silent(addr: SocketAddr) -> Client {
        Client::from_tcp(TcpStream::connect(addr).expect("connect"))
    }

    fn from_tcp(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream.set_nodelay(true).unwrap();
        let tcp = stream.try_clone().ok();
        Client { reader: BufReader::new(Box::new(stream)), tcp }
    }

    pub fn from_stream(stream: Box<dyn ReadWrite>) -> Client {
        Client { reader: BufReader::new(stream), tcp: None }
    }

    /// The TCP socket of a client made by [`Client::connect`], for raw use.
    pub fn into_tcp(self) -> TcpStream {
        assert!(self.reader.buffer().is_empty(), "unread data would be lost");
        self.tcp.expect("a client made by connect")
    }

    pub fn into_inner(self) -> Box<dyn ReadWrite> {
        assert!(self.reader.buffer().is_empty(), "unread data would be lost");
        self.reader.into_inner()
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let stream = self.reader.get_mut();
        stream.write_all(bytes).expect("send");
        stream.flush().expect("flush");
    }

    /// Sends as much as the server takes; returns false when it hung up.
    pub fn try_send(&mut self, bytes: &[u8]) -> bool {
        let stream = self.reader.get_mut();
        stream.write_all(bytes).is_ok() && stream.flush().is_ok()
    }

    /// Reads one (possibly multi-line) reply. Panics on EOF.
    pub fn read_reply(&mut self) -> Reply {
        self.try_read_reply().expect("connection closed while waiting for a reply")
    }

    /// Reads one reply, or `None` if the connection closed first.
    pub fn try_read_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            assert!(line.ends_with("\r\n"), "reply line without CRLF: {line:?}");
            let line = line.trim_end().to_string();
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line);
            if !more {
                break;
            }
        }
        let code = lines[0][..3].parse().expect("reply code");
        let text = lines.iter().map(|l| l.get(4..).unwrap_or("").to_string()).collect::<Vec<_>>().join("\n");
        Some(Reply { code, text, lines })
    }

    /// Sends one command line (CRLF added) and reads the reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.read_reply()
    }

    /// True if the server has closed the connection (EOF within the timeout).
    pub fn is_closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }

    /// EHLO, MAIL, RCPT and DATA with `content` (already dot-stuffed, without the
    /// terminator). Returns the final reply.
    pub fn send_mail(&mut self, from: &str, to: &[&str], content: &str) -> Reply {
        let ehlo = self.cmd("EHLO client.example");
        assert_eq!(ehlo.code, 250, "{ehlo:?}");
        let mail = self.cmd(&format!("MAIL FROM:<{from}>"));
        assert_eq!(mail.code, 250, "{mail:?}");
        for rcpt in to {
            let reply = self.cmd(&format!("RCPT TO:<{rcpt}>"));
            assert_eq!(reply.code, 250, "RCPT {rcpt}: {reply:?}");
        }
        let data = self.cmd("DATA");
        assert_eq!(data.code, 354, "{data:?}");
        self.send(content.as_bytes());
        self.send(b"\r\n.\r\n");
        self.read_reply()
    }
}

/// The queue id named in a "250 ... queued as ID" reply.
pub fn queued_id(reply: &Reply) -> Option<String> {
    reply.text.split("queued as ").nth(1).map(|s| s.trim().to_string())
}
