//! The plugin's configuration. Bad entries never fail the plugin: each falls back to
//! its default with a warning logged once per instance.

use std::collections::HashSet;

use sluice_plugin::config::Value;

use filter_util::config::size_value;

/// How hard a finding hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Quarantine,
    Reject,
}

/// Executables and scripts Windows runs on a double-click, installers, shortcuts and
/// disk images (which mount and bypass Mark-of-the-Web).
pub const DEFAULT_EXTENSIONS: &[&str] = &[
    "ade",
    "adp",
    "app",
    "application",
    "appref-ms",
    "appx",
    "appxbundle",
    "bas",
    "bat",
    "cab",
    "chm",
    "cmd",
    "com",
    "cpl",
    "dll",
    "exe",
    "gadget",
    "hta",
    "inf",
    "ins",
    "isp",
    "iso",
    "img",
    "jar",
    "js",
    "jse",
    "lnk",
    "mde",
    "msc",
    "msi",
    "msix",
    "msixbundle",
    "msp",
    "mst",
    "pif",
    "ps1",
    "ps1xml",
    "ps2",
    "psc1",
    "psm1",
    "reg",
    "scf",
    "scr",
    "sct",
    "shb",
    "shs",
    "url",
    "vb",
    "vbe",
    "vbs",
    "vhd",
    "vhdx",
    "wsc",
    "wsf",
    "wsh",
    "xll",
];

/// Content types of executables and the like, whatever the name says.
pub const DEFAULT_TYPES: &[&str] = &[
    "application/x-msdownload",
    "application/x-msdos-program",
    "application/x-dosexec",
    "application/x-executable",
    "application/vnd.microsoft.portable-executable",
    "application/x-ms-installer",
    "application/x-msi",
    "application/hta",
    "application/x-ms-shortcut",
    "application/java-archive",
    "application/x-java-archive",
];

/// Archives recognised by extension. Zip-format ones are inspected; the others follow
/// `archives`.
pub const DEFAULT_ARCHIVES: &[&str] = &[
    "zip", "zipx", "rar", "7z", "tar", "gz", "tgz", "bz2", "tbz", "tbz2", "xz", "txz", "zst", "lz", "lzh", "lha",
    "arj", "ace", "z",
];

/// Archive extensions whose central directory this plugin reads.
pub const ZIP_FORMAT: &[&str] = &["zip", "zipx"];

#[derive(Clone, Debug)]
pub struct Settings {
    /// What a forbidden extension, content type or name does.
    pub action: Severity,
    /// What an attachment over `max_size` does.
    pub oversize_action: Severity,
    pub extensions: HashSet<String>,
    /// Exact types, or prefixes written `type/prefix*`.
    pub types: Vec<String>,
    pub archive_extensions: HashSet<String>,
    /// Archives that cannot be inspected (not zip, damaged, directory too large,
    /// nested): None allows them.
    pub archives: Option<Severity>,
    /// Zip archives with encrypted entries (their names are still checked).
    pub encrypted_archives: Option<Severity>,
    /// Largest decoded attachment (None: no limit).
    pub max_size: Option<u64>,
    /// Largest zip central directory read.
    pub max_archive_directory: u64,
    /// Most names listed per zip.
    pub max_archive_entries: usize,
    /// Look at the first bytes of attachments for Windows and ELF executables.
    pub detect_executables: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            action: Severity::Reject,
            oversize_action: Severity::Reject,
            extensions: DEFAULT_EXTENSIONS.iter().map(|s| s.to_string()).collect(),
            types: DEFAULT_TYPES.iter().map(|s| s.to_string()).collect(),
            archive_extensions: DEFAULT_ARCHIVES.iter().map(|s| s.to_string()).collect(),
            archives: None,
            encrypted_archives: None,
            max_size: Some(25 << 20),
            max_archive_directory: 1 << 20,
            max_archive_entries: 10_000,
            detect_executables: true,
        }
    }
}

impl Settings {
    pub fn type_forbidden(&self, content_type: &str) -> bool {
        self.types.iter().any(|t| match t.strip_suffix('*') {
            Some(prefix) => content_type.starts_with(prefix),
            None => content_type == t,
        })
    }
}

/// Reads the settings; the second value lists what was skipped and why.
pub fn parse(root: &Value) -> (Settings, Vec<String>) {
    let mut w = Vec::new();
    let mut s = Settings::default();
    s.action = severity(root, "action", &mut w).unwrap_or(s.action);
    s.oversize_action = severity(root, "oversize_action", &mut w).unwrap_or(s.oversize_action);
    let list = |key: &str| -> Option<Vec<String>> {
        root.get(key)
            .map(|_| root.strings(key).iter().map(|e| e.trim().trim_start_matches('.').to_lowercase()).collect())
    };
    if let Some(replace) = list("forbidden_extensions") {
        s.extensions = replace.into_iter().collect();
    }
    s.extensions.extend(list("extra_forbidden_extensions").unwrap_or_default());
    if let Some(replace) = list("forbidden_types") {
        s.types = replace;
    }
    s.types.extend(list("extra_forbidden_types").unwrap_or_default());
    if let Some(replace) = list("archive_extensions") {
        s.archive_extensions = replace.into_iter().collect();
    }
    s.archives = policy(root, "archives", None, &mut w);
    s.encrypted_archives = policy(root, "encrypted_archives", s.archives, &mut w);
    match root.get("max_size") {
        None => {}
        Some(Value::Boolean(false)) | Some(Value::Integer(0)) => s.max_size = None,
        Some(v) => match size_value(v) {
            Some(n) => s.max_size = (n > 0).then_some(n),
            None => w.push(format!("max_size: expected a size such as \"25MiB\" or false, got {v:?}; using 25MiB")),
        },
    }
    if let Some(v) = root.get("max_archive_directory") {
        match size_value(v) {
            Some(n) => s.max_archive_directory = n,
            None => w.push(format!("max_archive_directory: expected a size, got {v:?}; using 1MiB")),
        }
    }
    if let Some(v) = root.get("max_archive_entries") {
        match v.as_i64().and_then(|i| usize::try_from(i).ok()) {
            Some(n) => s.max_archive_entries = n,
            None => w.push(format!("max_archive_entries: expected a non-negative integer, got {v:?}; using 10000")),
        }
    }
    match root.get("detect_executables") {
        None => {}
        Some(Value::Boolean(b)) => s.detect_executables = *b,
        Some(v) => w.push(format!("detect_executables: expected true or false, got {v:?}; using true")),
    }
    (s, w)
}

fn severity(root: &Value, key: &str, warnings: &mut Vec<String>) -> Option<Severity> {
    match root.get(key)? {
        Value::Text(t) if t == "reject" => Some(Severity::Reject),
        Value::Text(t) if t == "quarantine" => Some(Severity::Quarantine),
        other => {
            warnings.push(format!("{key}: expected \"reject\" or \"quarantine\", got {other:?}; using \"reject\""));
            None
        }
    }
}

/// `"allow"`, `"quarantine"` or `"block"` (which rejects).
fn policy(root: &Value, key: &str, default: Option<Severity>, warnings: &mut Vec<String>) -> Option<Severity> {
    match root.get(key) {
        None => default,
        Some(Value::Text(t)) if t == "allow" => None,
        Some(Value::Text(t)) if t == "quarantine" => Some(Severity::Quarantine),
        Some(Value::Text(t)) if t == "block" => Some(Severity::Reject),
        Some(other) => {
            warnings.push(format!(
                "{key}: expected \"allow\", \"quarantine\" or \"block\", got {other:?}; using the default"
            ));
            default
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use sluice_plugin::testing::{from_toml, parse_clean, read_fixture};

    use super::*;

    pub fn settings(toml: &str) -> Settings {
        parse_clean(parse, &from_toml(toml))
    }

    #[test]
    fn defaults() {
        let s = settings("");
        assert_eq!(
            (s.action, s.oversize_action, s.archives, s.encrypted_archives),
            (Severity::Reject, Severity::Reject, None, None)
        );
        assert!(s.extensions.contains("exe") && s.extensions.contains("iso") && !s.extensions.contains("pdf"));
        assert!(s.type_forbidden("application/x-msdownload") && !s.type_forbidden("application/pdf"));
        assert_eq!(s.max_size, Some(25 << 20));
        assert!(s.detect_executables);
    }

    #[test]
    fn reads_every_key() {
        let s = settings(
            r#"
            action = "quarantine"
            oversize_action = "quarantine"
            forbidden_extensions = [".EXE", "scr"]
            extra_forbidden_extensions = ["docm"]
            forbidden_types = ["application/x-msdownload"]
            extra_forbidden_types = ["application/x-ms*"]
            archive_extensions = ["zip", "rar"]
            archives = "block"
            max_size = "10MiB"
            max_archive_directory = 65536
            max_archive_entries = 500
            detect_executables = false
            "#,
        );
        assert_eq!((s.action, s.oversize_action), (Severity::Quarantine, Severity::Quarantine));
        let mut ext: Vec<&str> = s.extensions.iter().map(String::as_str).collect();
        ext.sort();
        assert_eq!(ext, ["docm", "exe", "scr"]);
        assert!(s.type_forbidden("application/x-msi") && s.type_forbidden("application/x-msdownload"));
        assert!(!s.type_forbidden("application/hta"));
        assert_eq!(s.archive_extensions.len(), 2);
        assert_eq!((s.archives, s.encrypted_archives), (Some(Severity::Reject), Some(Severity::Reject)));
        assert_eq!((s.max_size, s.max_archive_directory, s.max_archive_entries), (Some(10 << 20), 65536, 500));
        assert!(!s.detect_executables);
        let s = settings("archives = \"block\"\nencrypted_archives = \"quarantine\"\nmax_size = false");
        assert_eq!(
            (s.archives, s.encrypted_archives, s.max_size),
            (Some(Severity::Reject), Some(Severity::Quarantine), None)
        );
    }

    #[test]
    fn bad_values_fall_back() {
        let (s, warnings) = parse(&from_toml(
            r#"
            action = "drop"
            archives = "maybe"
            max_size = "huge"
            max_archive_entries = -3
            detect_executables = 1
            "#,
        ));
        assert_eq!(warnings.len(), 5, "{warnings:#?}");
        assert_eq!((s.action, s.archives, s.max_size), (Severity::Reject, None, Some(25 << 20)));
    }

    #[test]
    fn fixture_configs_parse_cleanly() {
        for file in ["fixtures/config.toml", "fixtures/config-quarantine.toml", "fixtures/config-small.toml"] {
            settings(&read_fixture(env!("CARGO_MANIFEST_DIR"), file));
        }
    }
}
