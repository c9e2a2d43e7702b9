//! Checks one MIME part: its name, content type, size, first bytes and, for zip
//! archives, the names inside. Pure logic over a [`ReadAt`] of the decoded content.

use crate::config::{Settings, Severity, ZIP_FORMAT};
use crate::names::{decoy_extension, extension, for_reply, has_bidi_controls};
use crate::zip::{self, ReadAt};

/// A leaf MIME part, as the host describes it.
#[derive(Clone, Debug)]
pub struct PartInfo {
    pub index: u32,
    pub content_type: String,
    pub filename: Option<String>,
    pub size: u64,
    pub is_attachment: bool,
}

impl PartInfo {
    /// The name to show in replies and logs.
    pub fn display_name(&self) -> String {
        match &self.filename {
            Some(name) if !name.trim().is_empty() => for_reply(name),
            _ => format!("part {} ({})", self.index, for_reply(&self.content_type)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Forbidden extension, content type, name or content.
    Forbidden,
    /// Over `max_size`.
    Oversize,
    /// An archive that cannot be inspected, or is encrypted.
    Archive,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub kind: Kind,
    /// The attachment, reply-safe.
    pub name: String,
    /// Why, reply-safe: "forbidden extension .exe".
    pub detail: String,
}

/// Why a file name is refused, if it is.
fn name_problem(settings: &Settings, name: &str) -> Option<String> {
    if has_bidi_controls(name) {
        return Some("misleading characters in file name".into());
    }
    let ext = extension(name)?;
    if !settings.extensions.contains(&ext) {
        return None;
    }
    Some(match decoy_extension(name) {
        Some(decoy) => format!("double extension .{decoy}.{ext}"),
        None => format!("forbidden extension .{ext}"),
    })
}

/// Everything wrong with `part`, most important first.
pub fn check_part(settings: &Settings, part: &PartInfo, content: &(impl ReadAt + ?Sized)) -> Vec<Finding> {
    let name = part.display_name();
    let mut findings = Vec::new();
    let add = |findings: &mut Vec<Finding>, severity, kind, detail: String| {
        findings.push(Finding { severity, kind, name: name.clone(), detail })
    };

    if let Some(problem) = part.filename.as_deref().and_then(|f| name_problem(settings, f)) {
        add(&mut findings, settings.action, Kind::Forbidden, problem);
    }
    if settings.type_forbidden(&part.content_type) {
        add(
            &mut findings,
            settings.action,
            Kind::Forbidden,
            format!("forbidden content type {}", for_reply(&part.content_type)),
        );
    }
    if settings.detect_executables
        && part.is_attachment
        && findings.is_empty()
        && let Some(kind) = sniff_executable(content, part.size)
    {
        add(&mut findings, settings.action, Kind::Forbidden, format!("{kind} content"));
    }
    if let Some(max) = settings.max_size
        && part.is_attachment
        && part.size > max
    {
        add(&mut findings, settings.oversize_action, Kind::Oversize, format!("{} bytes, limit {max}", part.size));
    }
    let Some(ext) = part.filename.as_deref().and_then(extension) else { return findings };
    if !settings.archive_extensions.contains(&ext) {
        return findings;
    }
    if !ZIP_FORMAT.contains(&ext.as_str()) {
        if let Some(severity) = settings.archives {
            add(&mut findings, severity, Kind::Archive, format!(".{ext} archive cannot be inspected"));
        }
        return findings;
    }
    match zip::list(content, part.size, settings.max_archive_directory, settings.max_archive_entries) {
        Ok(listing) => {
            for inner in &listing.names {
                if let Some(problem) = name_problem(settings, inner) {
                    add(
                        &mut findings,
                        settings.action,
                        Kind::Forbidden,
                        format!("contains \"{}\": {problem}", for_reply(inner)),
                    );
                } else if let Some(severity) = settings.archives
                    && extension(inner).is_some_and(|e| settings.archive_extensions.contains(&e))
                {
                    add(
                        &mut findings,
                        severity,
                        Kind::Archive,
                        format!("contains archive \"{}\" that cannot be inspected", for_reply(inner)),
                    );
                }
            }
            if let (true, Some(severity)) = (listing.encrypted, settings.encrypted_archives) {
                add(&mut findings, severity, Kind::Archive, "encrypted archive".into());
            }
            if let (true, Some(severity)) = (listing.truncated, settings.archives) {
                add(
                    &mut findings,
                    severity,
                    Kind::Archive,
                    format!("more than {} files in archive", settings.max_archive_entries),
                );
            }
        }
        Err(e) => {
            if let Some(severity) = settings.archives {
                add(&mut findings, severity, Kind::Archive, e.to_string());
            }
        }
    }
    findings
}

/// "Windows executable" for a PE file (MZ header pointing at a PE signature), "ELF
/// executable" for ELF, whatever the name says.
fn sniff_executable(content: &(impl ReadAt + ?Sized), size: u64) -> Option<&'static str> {
    let head = content.read_at(0, 64);
    if head.starts_with(b"\x7fELF") {
        return Some("ELF executable");
    }
    if !head.starts_with(b"MZ") || head.len() < 64 {
        return None;
    }
    let pe_at = u64::from(u32::from_le_bytes([head[60], head[61], head[62], head[63]]));
    (pe_at + 4 <= size && content.read_at(pe_at, 4) == b"PE\0\0").then_some("Windows executable")
}

/// The finding that decides: the first of the most severe.
pub fn decisive(findings: &[Finding]) -> Option<&Finding> {
    let worst = findings.iter().map(|f| f.severity).max()?;
    findings.iter().find(|f| f.severity == worst)
}

/// The SMTP reply for a rejecting finding.
pub fn reply(finding: &Finding) -> (u16, &'static str, String) {
    match finding.kind {
        Kind::Oversize => (552, "5.3.4", format!("Attachment \"{}\" too large ({})", finding.name, finding.detail)),
        _ => (550, "5.7.1", format!("Attachment \"{}\" not allowed ({})", finding.name, finding.detail)),
    }
}

/// The quarantine reason for a finding.
pub fn quarantine_reason(finding: &Finding) -> String {
    format!("attachment \"{}\": {}", finding.name, finding.detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::settings;
    use crate::zip::tests::build_zip;

    fn part(name: Option<&str>, content_type: &str, size: u64) -> PartInfo {
        PartInfo {
            index: 2,
            content_type: content_type.into(),
            filename: name.map(str::to_string),
            size,
            is_attachment: name.is_some(),
        }
    }

    fn check(s: &Settings, name: Option<&str>, content_type: &str, content: &[u8]) -> Vec<(Severity, String)> {
        check_part(s, &part(name, content_type, content.len() as u64), content)
            .into_iter()
            .map(|f| (f.severity, f.detail))
            .collect()
    }

    fn details(found: &[(Severity, String)]) -> Vec<&str> {
        found.iter().map(|(_, d)| d.as_str()).collect()
    }

    #[test]
    fn forbidden_names_and_types() {
        let s = settings("");
        assert_eq!(
            details(&check(&s, Some("invoice.EXE"), "application/octet-stream", b"x")),
            ["forbidden extension .exe"]
        );
        assert_eq!(
            details(&check(&s, Some("invoice.pdf.exe"), "application/pdf", b"x")),
            ["double extension .pdf.exe"]
        );
        assert_eq!(details(&check(&s, Some("Rechnung.pdf"), "application/pdf", b"%PDF-1.7")), Vec::<&str>::new());
        assert_eq!(
            details(&check(&s, None, "application/x-msdownload", b"x")),
            ["forbidden content type application/x-msdownload"]
        );
        assert_eq!(
            details(&check(&s, Some("photo\u{202E}gpj.scr"), "image/jpeg", b"x")),
            ["misleading characters in file name"]
        );
        let q = settings("action = \"quarantine\"");
        assert_eq!(check(&q, Some("a.js"), "text/plain", b"x")[0].0, Severity::Quarantine);
    }

    #[test]
    fn executables_are_found_by_content() {
        let s = settings("");
        let mut pe = vec![0u8; 128];
        pe[..2].copy_from_slice(b"MZ");
        pe[60] = 64;
        pe[64..68].copy_from_slice(b"PE\0\0");
        assert_eq!(details(&check(&s, Some("invoice.pdf"), "application/pdf", &pe)), ["Windows executable content"]);
        assert_eq!(
            details(&check(&s, Some("tool.bin"), "application/octet-stream", b"\x7fELF\x02\x01")),
            ["ELF executable content"]
        );
        // "MZ" alone (a text file starting with those letters) is not an executable.
        assert!(
            check(
                &s,
                Some("notes.txt"),
                "text/plain",
                b"MZ is a country code, nothing more. ........................................"
            )
            .is_empty()
        );
        let off = settings("detect_executables = false");
        assert!(check(&off, Some("invoice.pdf"), "application/pdf", &pe).is_empty());
    }

    #[test]
    fn size_limit() {
        let s = settings("max_size = 10\noversize_action = \"quarantine\"");
        let found = check(&s, Some("big.pdf"), "application/pdf", &[b'x'; 11]);
        assert_eq!(found, [(Severity::Quarantine, "11 bytes, limit 10".to_string())]);
        assert!(check(&s, Some("small.pdf"), "application/pdf", &[b'x'; 10]).is_empty());
    }

    #[test]
    fn zip_contents_are_checked() {
        let s = settings("");
        let zip = build_zip(&[("docs/readme.txt", b"hi", false), ("docs/Invoice.PDF.js", b"x", false)], b"", b"");
        assert_eq!(
            details(&check(&s, Some("docs.zip"), "application/zip", &zip)),
            ["contains \"docs/Invoice.PDF.js\": double extension .pdf.js"]
        );
        let clean = build_zip(&[("a.txt", b"hi", false)], b"", b"");
        assert!(check(&s, Some("a.zip"), "application/zip", &clean).is_empty());
    }

    #[test]
    fn uninspectable_archives_follow_the_policy() {
        let allow = settings("");
        let block = settings("archives = \"block\"");
        let quarantine = settings("archives = \"quarantine\"\nencrypted_archives = \"block\"");
        assert!(check(&allow, Some("x.rar"), "application/x-rar", b"Rar!").is_empty());
        assert_eq!(
            check(&block, Some("x.rar"), "application/x-rar", b"Rar!"),
            [(Severity::Reject, ".rar archive cannot be inspected".into())]
        );
        assert_eq!(
            check(&quarantine, Some("x.7z"), "application/x-7z-compressed", b"7z"),
            [(Severity::Quarantine, ".7z archive cannot be inspected".into())]
        );
        assert_eq!(
            check(&block, Some("fake.zip"), "application/zip", b"not a zip"),
            [(Severity::Reject, "not a zip archive".into())]
        );
        let nested = build_zip(&[("inner.zip", b"PK", false)], b"", b"");
        assert_eq!(
            details(&check(&block, Some("outer.zip"), "application/zip", &nested)),
            ["contains archive \"inner.zip\" that cannot be inspected"]
        );
        assert!(check(&allow, Some("outer.zip"), "application/zip", &nested).is_empty());
        let encrypted = build_zip(&[("secret.docx", b"x", true)], b"", b"");
        assert_eq!(
            check(&quarantine, Some("e.zip"), "application/zip", &encrypted),
            [(Severity::Reject, "encrypted archive".into())]
        );
        assert!(check(&allow, Some("e.zip"), "application/zip", &encrypted).is_empty());
    }

    #[test]
    fn the_worst_finding_decides_and_replies_name_it() {
        let s = settings("max_size = 1\naction = \"quarantine\"");
        let p = part(Some("big.exe"), "application/octet-stream", 5);
        let findings = check_part(&s, &p, b"12345".as_slice());
        assert_eq!(findings.len(), 2);
        let worst = decisive(&findings).map(|f| f.kind.clone());
        assert_eq!(worst, Some(Kind::Oversize), "reject (oversize) beats quarantine (extension)");
        let (code, enhanced, text) = reply(&findings[1]);
        assert_eq!(
            (code, enhanced, text.as_str()),
            (552, "5.3.4", "Attachment \"big.exe\" too large (5 bytes, limit 1)")
        );
        let (code, enhanced, text) = reply(&findings[0]);
        assert_eq!(
            (code, enhanced, text.as_str()),
            (550, "5.7.1", "Attachment \"big.exe\" not allowed (forbidden extension .exe)")
        );
        assert_eq!(quarantine_reason(&findings[0]), "attachment \"big.exe\": forbidden extension .exe");
        assert_eq!(decisive(&[]), None);
        assert_eq!(part(None, "application/x-msdownload", 1).display_name(), "part 2 (application/x-msdownload)");
    }
}
