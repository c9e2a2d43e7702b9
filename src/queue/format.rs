//! The on-disk format of a queued message, version 1 (integers little-endian):
//!
//! ```text
//! "SLUICEQ" version:u8 | envelope_len:u32 | envelope (JSON) | message_len:u64 | message | crc32:u32
//! ```
//!
//! The CRC-32 covers every byte before it, so a truncated or corrupted file is detected
//! before anything in it is trusted. The envelope is JSON so an administrator can read
//! it with `head -c`.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use crate::mail::Envelope;

const MAGIC: &[u8; 7] = b"SLUICEQ";
pub const VERSION: u8 = 1;
const MAX_ENVELOPE: u32 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a queue file (bad magic)")]
    BadMagic,
    #[error("unsupported queue file version {0}")]
    UnsupportedVersion(u8),
    #[error("truncated queue file")]
    Truncated,
    #[error("checksum mismatch")]
    ChecksumMismatch,
    #[error("bad envelope: {0}")]
    BadEnvelope(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl FormatError {
    /// The file exists but cannot be trusted (as opposed to a passing I/O failure).
    pub fn is_corruption(&self) -> bool {
        !matches!(self, FormatError::Io(_))
    }
}

/// A writer that keeps the running CRC of what went through it.
pub struct ChecksumWriter<W> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> ChecksumWriter<W> {
    pub fn new(inner: W) -> Self {
        ChecksumWriter { inner, hasher: crc32fast::Hasher::new() }
    }

    /// Writes the trailing checksum and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let crc = self.hasher.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ChecksumWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes everything up to the message bytes; the caller writes exactly
/// `message_len` bytes of message next, then calls [`ChecksumWriter::finish`].
pub fn write_head<W: Write>(out: &mut ChecksumWriter<W>, envelope: &Envelope, message_len: u64) -> io::Result<()> {
    let json = serde_json::to_vec(envelope).map_err(io::Error::other)?;
    let json_len = u32::try_from(json.len()).map_err(|_| io::Error::other("envelope too large"))?;
    out.write_all(MAGIC)?;
    out.write_all(&[VERSION])?;
    out.write_all(&json_len.to_le_bytes())?;
    out.write_all(&json)?;
    out.write_all(&message_len.to_le_bytes())
}

/// What the head of a queue file says.
#[derive(Debug)]
pub struct Head {
    pub envelope: Envelope,
    /// Where the message starts in the file, and its length.
    pub message_offset: u64,
    pub message_len: u64,
}

fn read_exact_or_truncated(reader: &mut impl Read, buf: &mut [u8]) -> Result<(), FormatError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => FormatError::Truncated,
        _ => FormatError::Io(e),
    })
}

fn read_head(reader: &mut impl Read, file_len: u64) -> Result<Head, FormatError> {
    let mut magic = [0u8; 8];
    read_exact_or_truncated(reader, &mut magic)?;
    if &magic[..7] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    if magic[7] != VERSION {
        return Err(FormatError::UnsupportedVersion(magic[7]));
    }
    let mut len = [0u8; 4];
    read_exact_or_truncated(reader, &mut len)?;
    let json_len = u32::from_le_bytes(len);
    if json_len > MAX_ENVELOPE || u64::from(json_len) + 24 > file_len {
        return Err(FormatError::Truncated);
    }
    let mut json = vec![0u8; json_len as usize];
    read_exact_or_truncated(reader, &mut json)?;
    let mut len = [0u8; 8];
    read_exact_or_truncated(reader, &mut len)?;
    let message_len = u64::from_le_bytes(len);
    let message_offset = 8 + 4 + u64::from(json_len) + 8;
    if message_offset.checked_add(message_len).and_then(|n| n.checked_add(4)) != Some(file_len) {
        return Err(FormatError::Truncated);
    }
    let envelope = serde_json::from_slice(&json).map_err(|e| FormatError::BadEnvelope(e.to_string()))?;
    Ok(Head { envelope, message_offset, message_len })
}

/// Reads the head only: cheap, for listings. Does not check the checksum.
pub fn read_envelope(path: &Path) -> Result<Head, FormatError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    read_head(&mut BufReader::with_capacity(8192, file), len)
}

/// Reads the whole file and checks its checksum; returns the head and the message.
pub fn read_verified(path: &Path) -> Result<(Head, Vec<u8>), FormatError> {
    let bytes = std::fs::read(path)?;
    let (head, message) = decode(&bytes)?;
    let message = message.to_vec();
    Ok((head, message))
}

/// Decodes and verifies a whole queue file held in memory.
pub fn decode(bytes: &[u8]) -> Result<(Head, &[u8]), FormatError> {
    let head = read_head(&mut &bytes[..], bytes.len() as u64)?;
    let body_end = bytes.len() - 4;
    let stored = u32::from_le_bytes([bytes[body_end], bytes[body_end + 1], bytes[body_end + 2], bytes[body_end + 3]]);
    if crc32fast::hash(&bytes[..body_end]) != stored {
        return Err(FormatError::ChecksumMismatch);
    }
    let start = head.message_offset as usize;
    Ok((head, &bytes[start..body_end]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::{ClientInfo, Mailbox, Recipient};
    use crate::queue::QueueId;

    fn envelope() -> Envelope {
        Envelope {
            id: "0123456789ABC".parse::<QueueId>().unwrap(),
            arrived: 1_700_000_000,
            sender: Some(Mailbox::new("a", "example.org")),
            mail_params: Default::default(),
            recipients: vec![Recipient { address: Mailbox::new("b", "example.com"), params: Default::default() }],
            client: ClientInfo {
                ip: "192.0.2.1".parse().unwrap(),
                port: 1234,
                reverse_name: None,
                helo: Some("client.test".into()),
                tls: None,
                auth_user: None,
                session_id: "1".into(),
            },
        }
    }

    fn encode(message: &[u8]) -> Vec<u8> {
        let mut out = ChecksumWriter::new(Vec::new());
        write_head(&mut out, &envelope(), message.len() as u64).unwrap();
        out.write_all(message).unwrap();
        out.finish().unwrap()
    }

    #[test]
    fn round_trip() {
        let bytes = encode(b"Subject: x\r\n\r\nhello\r\n");
        let (head, message) = decode(&bytes).unwrap();
        assert_eq!(head.envelope, envelope());
        assert_eq!(message, b"Subject: x\r\n\r\nhello\r\n");
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_detected() {
        let bytes = encode(b"Subject: x\r\n\r\nhello\r\n");
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated to {cut} accepted");
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(decode(&bad).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn other_versions_are_refused() {
        let mut bytes = encode(b"x");
        bytes[7] = 2;
        assert!(matches!(decode(&bytes), Err(FormatError::UnsupportedVersion(2))));
    }
}
