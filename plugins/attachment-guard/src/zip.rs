//! Lists the file names in a zip archive from its central directory, reading only the
//! end of the archive and the directory itself (never the compressed data), through a
//! [`ReadAt`] so the host's `read-part` can serve it in bounded chunks.
//!
//! Format: PKWARE APPNOTE.TXT §4.3 — end of central directory record (EOCD), zip64
//! locator and record, central directory file headers.

/// Random access to the decoded attachment.
pub trait ReadAt {
    /// At most `max` bytes from `offset`; fewer (or none) at the end.
    fn read_at(&self, offset: u64, max: u32) -> Vec<u8>;
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, max: u32) -> Vec<u8> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(self.len());
        let end = start.saturating_add(max as usize).min(self.len());
        self[start..end].to_vec()
    }
}

/// What the central directory says.
#[derive(Debug, Default, PartialEq)]
pub struct Listing {
    /// Entry names (directories left out).
    pub names: Vec<String>,
    /// Some entry is encrypted: its content cannot be checked.
    pub encrypted: bool,
    /// More entries than were listed (`max_entries`).
    pub truncated: bool,
}

#[derive(Debug, PartialEq)]
pub enum ZipError {
    /// No end of central directory record: not a zip (or cut short).
    NotZip,
    /// The central directory is larger than allowed.
    TooLarge(u64),
    /// Offsets or records that do not add up.
    Corrupt(&'static str),
}

impl std::fmt::Display for ZipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ZipError::NotZip => write!(f, "not a zip archive"),
            ZipError::TooLarge(n) => write!(f, "zip directory too large to inspect ({n} bytes)"),
            ZipError::Corrupt(why) => write!(f, "damaged zip archive ({why})"),
        }
    }
}

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
/// Largest archive comment, so the EOCD is within this many bytes of the end.
const MAX_TAIL: u64 = 0xFFFF + EOCD_LEN as u64;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads `len` bytes at `offset` in host-sized chunks.
fn read_exact(reader: &(impl ReadAt + ?Sized), offset: u64, len: u64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(usize::try_from(len).ok()?);
    while (out.len() as u64) < len {
        let want = (len - out.len() as u64).min(64 * 1024) as u32;
        let chunk = reader.read_at(offset + out.len() as u64, want);
        if chunk.is_empty() {
            return None;
        }
        out.extend_from_slice(&chunk);
    }
    out.truncate(usize::try_from(len).ok()?);
    Some(out)
}

/// Lists the archive of `size` bytes, reading at most `max_directory` bytes of
/// central directory and listing at most `max_entries` names.
pub fn list(
    reader: &(impl ReadAt + ?Sized),
    size: u64,
    max_directory: u64,
    max_entries: usize,
) -> Result<Listing, ZipError> {
    if size < EOCD_LEN as u64 {
        return Err(ZipError::NotZip);
    }
    let tail_start = size - size.min(MAX_TAIL);
    let tail = read_exact(reader, tail_start, size - tail_start).ok_or(ZipError::Corrupt("short read"))?;
    let eocd =
        (0..=tail.len() - EOCD_LEN).rev().find(|&i| u32_at(&tail, i) == Some(EOCD_SIG)).ok_or(ZipError::NotZip)?;
    let field16 = |at| u16_at(&tail, eocd + at).ok_or(ZipError::NotZip);
    let field32 = |at| u32_at(&tail, eocd + at).ok_or(ZipError::NotZip);
    let (mut entries, mut dir_size, mut dir_offset) =
        (u64::from(field16(10)?), u64::from(field32(12)?), u64::from(field32(16)?));
    let eocd_abs = tail_start + eocd as u64;

    let zip64 = entries == 0xFFFF || dir_size == 0xFFFF_FFFF || dir_offset == 0xFFFF_FFFF;
    if zip64 {
        let locator = eocd.checked_sub(20).ok_or(ZipError::Corrupt("no zip64 locator"))?;
        if u32_at(&tail, locator) != Some(ZIP64_LOCATOR_SIG) {
            return Err(ZipError::Corrupt("no zip64 locator"));
        }
        let record_at = u64_at(&tail, locator + 8).ok_or(ZipError::Corrupt("zip64 locator"))?;
        let record = read_exact(reader, record_at, 56).ok_or(ZipError::Corrupt("zip64 record out of range"))?;
        if u32_at(&record, 0) != Some(ZIP64_EOCD_SIG) {
            return Err(ZipError::Corrupt("zip64 record signature"));
        }
        entries = u64_at(&record, 32).ok_or(ZipError::Corrupt("zip64 record"))?;
        dir_size = u64_at(&record, 40).ok_or(ZipError::Corrupt("zip64 record"))?;
        dir_offset = u64_at(&record, 48).ok_or(ZipError::Corrupt("zip64 record"))?;
    } else {
        // The directory ends where the EOCD starts; trusting that rather than the
        // stored offset also handles archives with data prepended (self-extractors).
        dir_offset = eocd_abs.checked_sub(dir_size).ok_or(ZipError::Corrupt("directory size"))?;
    }
    if dir_size > max_directory {
        return Err(ZipError::TooLarge(dir_size));
    }
    if dir_offset.checked_add(dir_size).is_none_or(|end| end > size) {
        return Err(ZipError::Corrupt("directory out of range"));
    }
    let dir = read_exact(reader, dir_offset, dir_size).ok_or(ZipError::Corrupt("short read"))?;
    parse_directory(&dir, entries, max_entries)
}

fn parse_directory(dir: &[u8], entries: u64, max_entries: usize) -> Result<Listing, ZipError> {
    let mut listing = Listing::default();
    let mut at = 0usize;
    for _ in 0..entries {
        if listing.names.len() >= max_entries {
            listing.truncated = true;
            break;
        }
        if u32_at(dir, at) != Some(CENTRAL_SIG) {
            return Err(ZipError::Corrupt("central directory entry signature"));
        }
        let flags = u16_at(dir, at + 8).ok_or(ZipError::Corrupt("entry"))?;
        let method = u16_at(dir, at + 10).ok_or(ZipError::Corrupt("entry"))?;
        let name_len = usize::from(u16_at(dir, at + 28).ok_or(ZipError::Corrupt("entry"))?);
        let extra_len = usize::from(u16_at(dir, at + 30).ok_or(ZipError::Corrupt("entry"))?);
        let comment_len = usize::from(u16_at(dir, at + 32).ok_or(ZipError::Corrupt("entry"))?);
        let name = dir.get(at + CENTRAL_LEN..at + CENTRAL_LEN + name_len).ok_or(ZipError::Corrupt("entry name"))?;
        // Bit 0: encrypted; method 99: WinZip AES.
        listing.encrypted |= flags & 1 != 0 || method == 99;
        // Bit 11 says UTF-8; older tools write CP437, whose ASCII range is the same
        // (the rest becomes U+FFFD, which no extension rule matches).
        let name = String::from_utf8_lossy(name).into_owned();
        if !name.ends_with('/') {
            listing.names.push(name);
        }
        at += CENTRAL_LEN + name_len + extra_len + comment_len;
    }
    Ok(listing)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a stored (uncompressed) zip with these entries: (name, content, encrypted).
    pub fn build_zip(entries: &[(&str, &[u8], bool)], prefix: &[u8], comment: &[u8]) -> Vec<u8> {
        let mut out = prefix.to_vec();
        let mut central = Vec::new();
        for (name, content, encrypted) in entries {
            let offset = out.len() as u32;
            let flags: u16 = if *encrypted { 1 } else { 0 };
            out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
            out.extend_from_slice(&[20, 0]);
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&[0; 2 + 2 + 2 + 4]); // method, time, date, crc
            out.extend_from_slice(&(content.len() as u32).to_le_bytes());
            out.extend_from_slice(&(content.len() as u32).to_le_bytes());
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(content);

            central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
            central.extend_from_slice(&[20, 0, 20, 0]);
            central.extend_from_slice(&flags.to_le_bytes());
            central.extend_from_slice(&[0; 2 + 2 + 2 + 4]);
            central.extend_from_slice(&(content.len() as u32).to_le_bytes());
            central.extend_from_slice(&(content.len() as u32).to_le_bytes());
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 2 + 2 + 2 + 2 + 4]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let dir_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(&EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&dir_offset.to_le_bytes());
        out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        out.extend_from_slice(comment);
        out
    }

    fn names(listing: &Listing) -> Vec<&str> {
        listing.names.iter().map(String::as_str).collect()
    }

    #[test]
    fn lists_names_from_the_central_directory() {
        let zip =
            build_zip(&[("docs/", b"", false), ("docs/a.pdf", b"%PDF", false), ("run.exe", b"MZ", false)], b"", b"");
        let listing = list(zip.as_slice(), zip.len() as u64, 1 << 20, 100).expect("zip");
        assert_eq!(names(&listing), ["docs/a.pdf", "run.exe"]);
        assert!(!listing.encrypted && !listing.truncated);
    }

    #[test]
    fn finds_the_directory_behind_a_comment_and_after_prepended_data() {
        // The longest comment the format allows.
        let comment = vec![b'c'; 0xFFFF];
        let zip = build_zip(&[("x.js", b"alert(1)", false)], &[0xAA; 5000], &comment);
        let listing = list(zip.as_slice(), zip.len() as u64, 1 << 20, 100).expect("zip");
        assert_eq!(names(&listing), ["x.js"]);
    }

    #[test]
    fn notices_encryption_and_truncates() {
        let zip = build_zip(&[("a.txt", b"x", false), ("b.txt", b"y", true), ("c.txt", b"z", false)], b"", b"");
        let listing = list(zip.as_slice(), zip.len() as u64, 1 << 20, 2).expect("zip");
        assert_eq!(names(&listing), ["a.txt", "b.txt"]);
        assert!(listing.encrypted && listing.truncated);
    }

    #[test]
    fn refuses_what_is_not_a_zip_or_too_large() {
        assert_eq!(list(b"hello".as_slice(), 5, 1 << 20, 10), Err(ZipError::NotZip));
        let junk = vec![0u8; 1000];
        assert_eq!(list(junk.as_slice(), 1000, 1 << 20, 10), Err(ZipError::NotZip));
        let zip = build_zip(&[("a.txt", b"x", false)], b"", b"");
        assert!(matches!(list(zip.as_slice(), zip.len() as u64, 10, 10), Err(ZipError::TooLarge(_))));
        // A directory whose entry runs past its end.
        let mut bad = zip.clone();
        let dir_at = bad.len() - EOCD_LEN - (CENTRAL_LEN + 5);
        bad[dir_at + 28] = 0xFF;
        assert!(matches!(list(bad.as_slice(), bad.len() as u64, 1 << 20, 10), Err(ZipError::Corrupt(_))));
    }

    #[test]
    fn reads_zip64_records() {
        // A zip64 archive: the EOCD fields are saturated and point at the zip64 record.
        let plain = build_zip(&[("big.exe", b"MZ", false)], b"", b"");
        let eocd = plain.len() - EOCD_LEN;
        let dir_size = u32_at(&plain, eocd + 12).map_or(0, u64::from);
        let dir_offset = u32_at(&plain, eocd + 16).map_or(0, u64::from);
        let mut zip = plain[..eocd].to_vec();
        let record_at = zip.len() as u64;
        zip.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
        zip.extend_from_slice(&44u64.to_le_bytes());
        zip.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        zip.extend_from_slice(&1u64.to_le_bytes());
        zip.extend_from_slice(&1u64.to_le_bytes());
        zip.extend_from_slice(&dir_size.to_le_bytes());
        zip.extend_from_slice(&dir_offset.to_le_bytes());
        zip.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
        zip.extend_from_slice(&0u32.to_le_bytes());
        zip.extend_from_slice(&record_at.to_le_bytes());
        zip.extend_from_slice(&1u32.to_le_bytes());
        zip.extend_from_slice(&EOCD_SIG.to_le_bytes());
        zip.extend_from_slice(&[0; 4]);
        zip.extend_from_slice(&[0xFF; 4]);
        zip.extend_from_slice(&[0xFF; 8]);
        zip.extend_from_slice(&[0, 0]);
        let listing = list(zip.as_slice(), zip.len() as u64, 1 << 20, 10).expect("zip64");
        assert_eq!(names(&listing), ["big.exe"]);
    }
}
