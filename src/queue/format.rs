//! The on-disk format of the queue log, version 1.
//!
//! A segment file starts with a 16-byte header, `"SLUICESG"`, the format version and
//! seven reserved bytes, then holds records back to back. A record is
//!
//! ```text
//! "SQRC" | kind:u8 | reserved:u8 | reserved:u16 | payload_len:u32 | payload | crc32:u32
//! ```
//!
//! (integers little-endian). The CRC-32 covers the header and the payload, so a torn
//! or corrupted record is detected before anything in it is trusted. Payloads:
//!
//! - message: `id:u64 | envelope_len:u32 | envelope JSON | state_len:u32 | state JSON | message`
//! - state: `id:u64 | state JSON` (replaces the message's state)
//! - removed: `id:u64` (the message is finished)
//!
//! JSON keeps the metadata readable with `strings` and lets fields be added compatibly.

use std::io;

use super::state::MessageState;
use crate::mail::Envelope;
use crate::mail::QueueId;

pub const SEGMENT_MAGIC: &[u8; 8] = b"SLUICESG";
pub const VERSION: u8 = 1;
pub const SEGMENT_HEADER_LEN: u64 = 16;
const RECORD_MAGIC: &[u8; 4] = b"SQRC";
pub const RECORD_HEADER_LEN: usize = 12;
const CRC_LEN: usize = 4;
/// Larger payloads are not believed: a corrupted length must not make us allocate
/// gigabytes.
pub const MAX_PAYLOAD: u32 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Message = 1,
    State = 2,
    Removed = 3,
    /// Fills the place of a damaged record after it was copied aside.
    Padding = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Message),
            2 => Some(Kind::State),
            3 => Some(Kind::Removed),
            4 => Some(Kind::Padding),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("not a queue segment (bad magic)")]
    BadSegmentMagic,
    #[error("unsupported queue format version {0}")]
    UnsupportedVersion(u8),
    #[error("record is cut short")]
    Truncated,
    #[error("bad record header")]
    BadHeader,
    #[error("checksum mismatch")]
    ChecksumMismatch,
    #[error("bad record payload: {0}")]
    BadPayload(String),
}

pub fn segment_header() -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8] = VERSION;
    header
}

pub fn check_segment_header(bytes: &[u8]) -> Result<(), FormatError> {
    if bytes.len() < SEGMENT_HEADER_LEN as usize {
        return Err(FormatError::Truncated);
    }
    if &bytes[..8] != SEGMENT_MAGIC {
        return Err(FormatError::BadSegmentMagic);
    }
    if bytes[8] != VERSION {
        return Err(FormatError::UnsupportedVersion(bytes[8]));
    }
    Ok(())
}

/// Appends records to a buffer, computing each checksum.
pub struct RecordWriter<'a> {
    out: &'a mut Vec<u8>,
    start: usize,
}

impl<'a> RecordWriter<'a> {
    pub fn begin(out: &'a mut Vec<u8>, kind: Kind) -> Self {
        let start = out.len();
        out.extend_from_slice(RECORD_MAGIC);
        out.extend_from_slice(&[kind as u8, 0, 0, 0]);
        out.extend_from_slice(&0u32.to_le_bytes());
        RecordWriter { out, start }
    }

    pub fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Fills in the length and appends the checksum. Returns the record's length.
    pub fn finish(self) -> io::Result<usize> {
        let payload_len = self.out.len() - self.start - RECORD_HEADER_LEN;
        let payload_len = u32::try_from(payload_len)
            .ok()
            .filter(|&n| n <= MAX_PAYLOAD)
            .ok_or_else(|| io::Error::other("queue record too large"))?;
        self.out[self.start + 8..self.start + 12].copy_from_slice(&payload_len.to_le_bytes());
        let crc = crc32fast::hash(&self.out[self.start..]);
        self.out.extend_from_slice(&crc.to_le_bytes());
        Ok(self.out.len() - self.start)
    }
}

fn json<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(io::Error::other)
}

/// Encodes a message record. `body` parts are written in order.
pub fn encode_message(
    out: &mut Vec<u8>,
    envelope: &Envelope,
    state: &MessageState,
    body: &[&[u8]],
) -> io::Result<MessageLayout> {
    let envelope_json = json(envelope)?;
    let state_json = json(state)?;
    let record_start = out.len();
    let mut record = RecordWriter::begin(out, Kind::Message);
    record.put(&envelope.id.micros().to_le_bytes());
    record.put(&(envelope_json.len() as u32).to_le_bytes());
    record.put(&envelope_json);
    record.put(&(state_json.len() as u32).to_le_bytes());
    record.put(&state_json);
    let body_offset = RECORD_HEADER_LEN + 8 + 4 + envelope_json.len() + 4 + state_json.len();
    let body_len: usize = body.iter().map(|b| b.len()).sum();
    for part in body {
        record.put(part);
    }
    let record_len = record.finish()?;
    debug_assert_eq!(out.len() - record_start, record_len);
    Ok(MessageLayout { body_offset: body_offset as u64, body_len: body_len as u64, record_len: record_len as u64 })
}

/// Where the message bytes are inside an encoded message record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageLayout {
    pub body_offset: u64,
    pub body_len: u64,
    pub record_len: u64,
}

pub fn encode_state(out: &mut Vec<u8>, id: QueueId, state: &MessageState) -> io::Result<usize> {
    let state_json = json(state)?;
    let mut record = RecordWriter::begin(out, Kind::State);
    record.put(&id.micros().to_le_bytes());
    record.put(&state_json);
    record.finish()
}

/// A padding record exactly `len` bytes long (at least a header and a checksum).
pub fn encode_padding(len: usize) -> Option<Vec<u8>> {
    let payload = len.checked_sub(RECORD_HEADER_LEN + CRC_LEN)?;
    let mut out = Vec::with_capacity(len);
    let mut record = RecordWriter::begin(&mut out, Kind::Padding);
    record.put(&vec![0u8; payload]);
    record.finish().ok()?;
    Some(out)
}

pub fn encode_removed(out: &mut Vec<u8>, id: QueueId) -> io::Result<usize> {
    let mut record = RecordWriter::begin(out, Kind::Removed);
    record.put(&id.micros().to_le_bytes());
    record.finish()
}

/// A decoded record, borrowing from the bytes it was read from.
#[derive(Debug)]
pub enum Record<'a> {
    Message { envelope: Box<Envelope>, state: MessageState, body: &'a [u8], body_offset: u64 },
    State { id: QueueId, state: MessageState },
    Removed { id: QueueId },
    Padding,
}

/// The length of the record starting at `bytes` (header, payload and checksum), if
/// its header is plausible and complete.
pub fn record_len(bytes: &[u8]) -> Result<usize, FormatError> {
    if bytes.len() < RECORD_HEADER_LEN {
        return Err(FormatError::Truncated);
    }
    if &bytes[..4] != RECORD_MAGIC || Kind::from_u8(bytes[4]).is_none() {
        return Err(FormatError::BadHeader);
    }
    let payload_len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if payload_len > MAX_PAYLOAD {
        return Err(FormatError::BadHeader);
    }
    Ok(RECORD_HEADER_LEN + payload_len as usize + CRC_LEN)
}

/// Decodes and verifies the record at the start of `bytes`; returns it and its length.
pub fn decode_record(bytes: &[u8]) -> Result<(Record<'_>, usize), FormatError> {
    let len = record_len(bytes)?;
    if bytes.len() < len {
        return Err(FormatError::Truncated);
    }
    let stored = u32::from_le_bytes([bytes[len - 4], bytes[len - 3], bytes[len - 2], bytes[len - 1]]);
    if crc32fast::hash(&bytes[..len - CRC_LEN]) != stored {
        return Err(FormatError::ChecksumMismatch);
    }
    let kind = Kind::from_u8(bytes[4]).ok_or(FormatError::BadHeader)?;
    let payload = &bytes[RECORD_HEADER_LEN..len - CRC_LEN];
    let bad = |what: &str| FormatError::BadPayload(what.to_string());
    let take_u64 = |p: &[u8]| -> Result<u64, FormatError> {
        p.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())).ok_or_else(|| bad("short id"))
    };
    let take_u32 = |p: &[u8], at: usize| -> Result<usize, FormatError> {
        p.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
            .ok_or_else(|| bad("short length"))
    };
    if kind == Kind::Padding {
        return Ok((Record::Padding, len));
    }
    let id = QueueId::from_micros(take_u64(payload)?);
    let record = match kind {
        Kind::Padding => Record::Padding,
        Kind::Message => {
            let env_len = take_u32(payload, 8)?;
            let env_end =
                12usize.checked_add(env_len).filter(|&e| e <= payload.len()).ok_or_else(|| bad("envelope length"))?;
            let envelope: Box<Envelope> =
                serde_json::from_slice(&payload[12..env_end]).map_err(|e| FormatError::BadPayload(e.to_string()))?;
            let state_len = take_u32(payload, env_end)?;
            let state_start = env_end + 4;
            let state_end = state_start
                .checked_add(state_len)
                .filter(|&e| e <= payload.len())
                .ok_or_else(|| bad("state length"))?;
            let state: MessageState = serde_json::from_slice(&payload[state_start..state_end])
                .map_err(|e| FormatError::BadPayload(e.to_string()))?;
            if envelope.id != id {
                return Err(bad("envelope id differs from record id"));
            }
            Record::Message {
                envelope,
                state,
                body: &payload[state_end..],
                body_offset: (RECORD_HEADER_LEN + state_end) as u64,
            }
        }
        Kind::State => {
            let state = serde_json::from_slice(&payload[8..]).map_err(|e| FormatError::BadPayload(e.to_string()))?;
            Record::State { id, state }
        }
        Kind::Removed => {
            if payload.len() != 8 {
                return Err(bad("removed record length"));
            }
            Record::Removed { id }
        }
    };
    Ok((record, len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::envelope::test_envelope;

    fn envelope(id: u64) -> Envelope {
        test_envelope(QueueId::from_micros(id))
    }

    #[test]
    fn records_round_trip() {
        let mut out = Vec::new();
        let layout =
            encode_message(&mut out, &envelope(7), &MessageState::default(), &[b"Received: x\r\n", b"body\r\n"])
                .unwrap();
        encode_state(&mut out, QueueId::from_micros(7), &MessageState::default()).unwrap();
        encode_removed(&mut out, QueueId::from_micros(7)).unwrap();
        let (record, len) = decode_record(&out).unwrap();
        assert_eq!(len as u64, layout.record_len);
        match record {
            Record::Message { envelope: e, body, body_offset, .. } => {
                assert_eq!(*e, envelope(7));
                assert_eq!(body, b"Received: x\r\nbody\r\n");
                assert_eq!(body_offset, layout.body_offset);
                assert_eq!(&out[body_offset as usize..][..layout.body_len as usize], body);
            }
            other => panic!("{other:?}"),
        }
        let (record, len2) = decode_record(&out[len..]).unwrap();
        assert!(matches!(record, Record::State { id, .. } if id.micros() == 7));
        let (record, _) = decode_record(&out[len + len2..]).unwrap();
        assert!(matches!(record, Record::Removed { id } if id.micros() == 7));
        let padding = encode_padding(100).unwrap();
        assert_eq!(padding.len(), 100);
        assert!(matches!(decode_record(&padding), Ok((Record::Padding, 100))));
        assert!(encode_padding(15).is_none());
    }

    #[test]
    fn every_truncation_and_every_flipped_bit_is_detected() {
        let mut out = Vec::new();
        encode_message(&mut out, &envelope(1), &MessageState::default(), &[b"Subject: x\r\n\r\nhello\r\n"]).unwrap();
        for cut in 0..out.len() {
            assert!(decode_record(&out[..cut]).is_err(), "truncated to {cut} accepted");
        }
        for i in 0..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[i] ^= 1 << bit;
                assert!(decode_record(&bad).is_err(), "flip at {i}.{bit} accepted");
            }
        }
    }

    #[test]
    fn segment_headers() {
        assert_eq!(check_segment_header(&segment_header()), Ok(()));
        let mut other = segment_header();
        other[8] = 9;
        assert_eq!(check_segment_header(&other), Err(FormatError::UnsupportedVersion(9)));
        assert_eq!(check_segment_header(b"SLUICE"), Err(FormatError::Truncated));
        assert_eq!(check_segment_header(b"NOTSLUICE_______"), Err(FormatError::BadSegmentMagic));
    }
}
