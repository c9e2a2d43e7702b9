//! The queue's on-disk format: record decoding, and the read-only replay of a segment.
//!
//! Three modes, by the first byte modulo 3:
//! - 0, raw record: the rest is given to `record_len`, `decode_record` and
//!   `check_segment_header`. Whatever decodes is re-encoded with the encoder and must
//!   decode to the same values (and for `removed` records, to the same bytes);
//! - 1, segment replay: byte 1 holds flags (bit 0: split into two segments at the
//!   offset in byte 2; bit 1: no valid segment header in front), the rest is written
//!   as `segments/0000000000000001.seg` (and `...02.seg`) of a scratch queue
//!   directory, then `sluice::queue::snapshot` replays it read-only;
//! - 2, structured: an envelope, a state and a body built from the rest with
//!   `arbitrary` are encoded with `encode_message`, optionally followed by
//!   `encode_state` and `encode_removed` records; each must decode to what was
//!   encoded, re-encode to the same bytes, and replay to the expected queue.
//!
//! Invariants besides: nothing panics, and no single allocation is larger than the
//! input suggests (a length field must never be believed before the bytes are there).

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use sluice::mail::Mailbox;
use sluice::mail::envelope::{ClientInfo, Envelope, Recipient, RouteChoice, TlsInfo};
use sluice::mail::params::{Body, MailParams, Notify, RcptParams, Ret};
use sluice::queue::format::{
    self, MAX_PAYLOAD, RECORD_HEADER_LEN, Record, check_segment_header, decode_record, encode_message, encode_padding,
    encode_removed, encode_state, record_len,
};
use sluice::queue::{Diagnostic, Hold, MessageState, RecipientState, RecipientStatus, snapshot};
use sluice::mail::QueueId;

/// Records the largest single allocation, to catch a length field believed too early.
struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// A scratch queue directory for this process, reused by every run.
fn scratch() -> &'static PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base =
            if std::path::Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let root = base.join(format!("sluice-fuzz-queue-{}", std::process::id()));
        std::fs::create_dir_all(root.join("segments")).expect("scratch queue directory");
        root
    })
}

const SEGMENT_1: &str = "0000000000000001.seg";
const SEGMENT_2: &str = "0000000000000002.seg";

fn write_segments(first: &[u8], second: Option<&[u8]>) {
    let segments = scratch().join("segments");
    std::fs::write(segments.join(SEGMENT_1), first).expect("write segment");
    match second {
        Some(bytes) => std::fs::write(segments.join(SEGMENT_2), bytes).expect("write segment"),
        None => {
            let _ = std::fs::remove_file(segments.join(SEGMENT_2));
        }
    }
}

fn with_header(body: &[u8]) -> Vec<u8> {
    let mut out = format::segment_header().to_vec();
    out.extend_from_slice(body);
    out
}

/// Decodes `bytes` as one record and checks everything that can be said about it.
fn raw_record(bytes: &[u8]) {
    let _ = check_segment_header(bytes);
    let declared = record_len(bytes);
    if let Ok(len) = declared {
        assert!(len >= RECORD_HEADER_LEN + 4, "record_len {len} shorter than a header and a checksum");
        assert!(len <= RECORD_HEADER_LEN + MAX_PAYLOAD as usize + 4, "record_len {len} over MAX_PAYLOAD");
    }
    let Ok((record, len)) = decode_record(bytes) else { return };
    assert_eq!(declared, Ok(len), "decode_record and record_len disagree");
    assert!(len <= bytes.len(), "decoded a record of {len} bytes from {}", bytes.len());
    let reserved_zero = bytes[5..8] == [0, 0, 0];
    let mut again = Vec::new();
    match record {
        Record::Removed { id } => {
            encode_removed(&mut again, id).expect("encode removed");
            if reserved_zero {
                assert_eq!(again, &bytes[..len], "removed record does not re-encode to its bytes");
            }
            assert!(matches!(decode_record(&again), Ok((Record::Removed { id: id2 }, _)) if id2 == id));
        }
        Record::State { id, state } => {
            encode_state(&mut again, id, &state).expect("encode state");
            match decode_record(&again) {
                Ok((Record::State { id: id2, state: state2 }, n)) => {
                    assert_eq!((id2, &state2), (id, &state), "state record does not round-trip");
                    assert_eq!(n, again.len());
                    let mut third = Vec::new();
                    encode_state(&mut third, id2, &state2).expect("encode state");
                    assert_eq!(third, again, "state encoding is not a fixed point");
                }
                other => panic!("re-encoded state record decodes as {other:?}"),
            }
        }
        Record::Message { envelope, state, body, body_offset } => {
            let body_offset = body_offset as usize;
            assert_eq!(body_offset + body.len() + 4, len, "message body is not the end of the record");
            assert_eq!(&bytes[body_offset..body_offset + body.len()], body, "body_offset points elsewhere");
            let layout = encode_message(&mut again, &envelope, &state, &[body]).expect("encode message");
            match decode_record(&again) {
                Ok((Record::Message { envelope: e2, state: s2, body: b2, body_offset: o2 }, n)) => {
                    assert_eq!(*e2, *envelope, "envelope does not round-trip");
                    assert_eq!(s2, state, "state does not round-trip");
                    assert_eq!(b2, body, "body does not round-trip");
                    assert_eq!((o2, n as u64), (layout.body_offset, layout.record_len), "layout differs");
                    let mut third = Vec::new();
                    encode_message(&mut third, &e2, &s2, &[b2]).expect("encode message");
                    assert_eq!(third, again, "message encoding is not a fixed point");
                }
                other => panic!("re-encoded message record decodes as {other:?}"),
            }
        }
        Record::Padding => {
            let padding = encode_padding(len).expect("padding of a decoded record's length");
            assert!(matches!(decode_record(&padding), Ok((Record::Padding, n)) if n == len));
        }
    }
}

fn replay(data: &[u8]) {
    let (flags, split, rest) = match data {
        [flags, split, rest @ ..] => (*flags, *split, rest),
        _ => return,
    };
    let prefix = |bytes: &[u8]| if flags & 2 != 0 { bytes.to_vec() } else { with_header(bytes) };
    let (first, second) = if flags & 1 != 0 {
        let at = rest.len() * usize::from(split) / 255;
        (prefix(&rest[..at]), Some(prefix(&rest[at..])))
    } else {
        (prefix(rest), None)
    };
    write_segments(&first, second.as_deref());
    let snap = snapshot(scratch()).expect("snapshot of a queue directory");
    let total = first.len() + second.as_ref().map_or(0, Vec::len);
    for entry in &snap.messages {
        let body = snap.read_message(entry).expect("a listed message reads back");
        assert_eq!(body.len() as u64, entry.location.body_len);
        assert!(entry.location.record_len as usize <= total, "record longer than the segments");
    }
    for damage in &snap.damage {
        assert!((damage.offset as usize) < total.max(1), "damage past the end of the segments");
    }
}

// ---- structured inputs ----

fn text(u: &mut Unstructured<'_>) -> Result<String> {
    String::arbitrary(u)
}

fn mailbox(u: &mut Unstructured<'_>) -> Result<Mailbox> {
    // Only addresses that passed the parser get into an envelope.
    let candidate = text(u)?;
    Ok(match Mailbox::parse(&candidate) {
        Ok(m) if !m.domain.is_empty() => m,
        _ => {
            let choices =
                ["user@example.com", "\"john doe\"@example.org", "a@[192.0.2.1]", "用户@例子.测试", "postmaster"];
            Mailbox::parse(u.choose(&choices)?).expect("valid example address")
        }
    })
}

fn route(u: &mut Unstructured<'_>) -> Result<Option<RouteChoice>> {
    Ok(match u.int_in_range(0..=2)? {
        0 => None,
        1 => Some(RouteChoice::Named(text(u)?)),
        _ => Some(RouteChoice::NextHop(text(u)?)),
    })
}

fn envelope(u: &mut Unstructured<'_>, id: QueueId) -> Result<Envelope> {
    let sender = if bool::arbitrary(u)? { Some(mailbox(u)?) } else { None };
    let mail_params = MailParams {
        size: Option::arbitrary(u)?,
        body: *u.choose(&[None, Some(Body::SevenBit), Some(Body::EightBitMime)])?,
        smtputf8: bool::arbitrary(u)?,
        ret: *u.choose(&[None, Some(Ret::Full), Some(Ret::Hdrs)])?,
        envid: Option::<String>::arbitrary(u)?,
    };
    let mut recipients = Vec::new();
    for _ in 0..u.int_in_range(1..=4)? {
        let notify = if bool::arbitrary(u)? {
            Some(Notify {
                never: bool::arbitrary(u)?,
                success: bool::arbitrary(u)?,
                failure: bool::arbitrary(u)?,
                delay: bool::arbitrary(u)?,
            })
        } else {
            None
        };
        recipients.push(Recipient {
            address: mailbox(u)?,
            params: RcptParams { notify, orcpt: Option::<String>::arbitrary(u)? },
            route: route(u)?,
        });
    }
    let ip: IpAddr = if bool::arbitrary(u)? {
        IpAddr::from(<[u8; 4]>::arbitrary(u)?)
    } else {
        IpAddr::from(<[u8; 16]>::arbitrary(u)?)
    };
    let client = ClientInfo {
        ip,
        port: u16::arbitrary(u)?,
        reverse_name: Option::<String>::arbitrary(u)?,
        helo: Option::<String>::arbitrary(u)?,
        tls: if bool::arbitrary(u)? { Some(TlsInfo { version: text(u)?, cipher: text(u)? }) } else { None },
        auth_user: Option::<String>::arbitrary(u)?,
        session_id: text(u)?,
    };
    // Scores are sums of plugin scores, each finite and within ±1e6.
    let score = f64::from(i32::arbitrary(u)?) / 64.0;
    let tags = Vec::<String>::arbitrary(u)?;
    Ok(Envelope {
        id,
        arrived: u64::arbitrary(u)?,
        sender,
        mail_params,
        recipients,
        client,
        route: route(u)?,
        tags,
        score,
    })
}

fn state(u: &mut Unstructured<'_>) -> Result<MessageState> {
    let hold = match u.int_in_range(0..=2)? {
        0 => None,
        1 => Some(Hold::Held),
        _ => Some(Hold::Quarantined { reason: text(u)? }),
    };
    let mut recipients = Vec::new();
    for _ in 0..u.int_in_range(0..=4)? {
        let diagnostic = if bool::arbitrary(u)? {
            Some(Diagnostic {
                status: text(u)?,
                text: text(u)?,
                smtp: bool::arbitrary(u)?,
                remote_mta: Option::<String>::arbitrary(u)?,
            })
        } else {
            None
        };
        recipients.push(RecipientState {
            status: *u.choose(&[RecipientStatus::Pending, RecipientStatus::Delivered, RecipientStatus::Failed])?,
            diagnostic,
            notified: bool::arbitrary(u)?,
            relayed_dsn: bool::arbitrary(u)?,
            final_at: Option::arbitrary(u)?,
        });
    }
    Ok(MessageState {
        hold,
        recipients,
        attempts: u32::arbitrary(u)?,
        next_attempt_ms: Option::arbitrary(u)?,
        last_error: Option::<String>::arbitrary(u)?,
        delay_warned: bool::arbitrary(u)?,
    })
}

fn structured(data: &[u8]) -> Result<()> {
    let mut u = Unstructured::new(data);
    let id = QueueId::from_micros(u64::arbitrary(&mut u)?);
    let envelope = envelope(&mut u, id)?;
    let first_state = state(&mut u)?;
    let later_state = if bool::arbitrary(&mut u)? { Some(state(&mut u)?) } else { None };
    let removed = bool::arbitrary(&mut u)?;
    let body: Vec<Vec<u8>> = Vec::arbitrary(&mut u)?;
    let parts: Vec<&[u8]> = body.iter().map(Vec::as_slice).collect();
    let joined = body.concat();

    let mut log = Vec::new();
    let layout = encode_message(&mut log, &envelope, &first_state, &parts).expect("encode message");
    let (record, len) = decode_record(&log).expect("an encoded message record decodes");
    assert_eq!(len as u64, layout.record_len);
    match record {
        Record::Message { envelope: e, state: s, body: b, body_offset } => {
            assert_eq!(*e, envelope, "envelope does not round-trip");
            assert_eq!(s, first_state, "state does not round-trip");
            assert_eq!(b, joined.as_slice(), "body does not round-trip");
            assert_eq!((body_offset, b.len() as u64), (layout.body_offset, layout.body_len));
        }
        other => panic!("message record decodes as {other:?}"),
    }
    raw_record(&log);
    for cut in [0, len / 2, len - 1] {
        assert!(decode_record(&log[..cut]).is_err(), "a record cut to {cut} of {len} bytes decoded");
    }
    if let Some(s) = &later_state {
        let start = log.len();
        encode_state(&mut log, id, s).expect("encode state");
        match decode_record(&log[start..]) {
            Ok((Record::State { id: id2, state }, _)) => assert_eq!((id2, &state), (id, s), "state round trip"),
            other => panic!("state record decodes as {other:?}"),
        }
        raw_record(&log[start..]);
    }
    if removed {
        let start = log.len();
        encode_removed(&mut log, id).expect("encode removed");
        raw_record(&log[start..]);
    }

    write_segments(&with_header(&log), None);
    let snap = snapshot(scratch()).expect("snapshot");
    assert!(snap.damage.is_empty(), "encoder output replays with damage: {:?}", snap.damage);
    if removed {
        assert!(snap.messages.is_empty(), "a removed message is still listed");
    } else {
        assert_eq!(snap.messages.len(), 1, "the message is not listed once");
        let entry = &snap.messages[0];
        assert_eq!(*entry.envelope, envelope);
        assert_eq!(&entry.state, later_state.as_ref().unwrap_or(&first_state), "replayed state");
        assert_eq!(snap.read_message(entry).expect("read message"), joined, "replayed body");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    LARGEST.store(0, Ordering::Relaxed);
    match mode % 3 {
        0 => raw_record(rest),
        1 => replay(rest),
        _ => {
            let _ = structured(rest);
        }
    }
    let largest = LARGEST.load(Ordering::Relaxed);
    let bound = 64 * data.len() + (64 << 10);
    assert!(largest <= bound, "an allocation of {largest} bytes for {} bytes of input", data.len());
});
