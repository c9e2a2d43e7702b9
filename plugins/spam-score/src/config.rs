//! The plugin's configuration: thresholds, scores of the built-in checks, and custom
//! pattern rules.
//!
//! Bad entries never fail the plugin: each is skipped (or replaced by its default)
//! with a warning logged once per instance.

use regex::{Regex, RegexBuilder};
use sluice_plugin::config::Value;

use filter_util::config::size_value;

use crate::prefilter::Prefilter;

/// The built-in checks, their report names and default scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    MissingDate,
    MalformedDate,
    MissingMessageId,
    MalformedMessageId,
    MissingFrom,
    FromReplyToMismatch,
    AllCapsSubject,
    HtmlOnly,
    ManyUrls,
}

impl Check {
    pub const ALL: [Check; 9] = [
        Check::MissingDate,
        Check::MalformedDate,
        Check::MissingMessageId,
        Check::MalformedMessageId,
        Check::MissingFrom,
        Check::FromReplyToMismatch,
        Check::AllCapsSubject,
        Check::HtmlOnly,
        Check::ManyUrls,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Check::MissingDate => "MISSING_DATE",
            Check::MalformedDate => "MALFORMED_DATE",
            Check::MissingMessageId => "MISSING_MESSAGE_ID",
            Check::MalformedMessageId => "MALFORMED_MESSAGE_ID",
            Check::MissingFrom => "MISSING_FROM",
            Check::FromReplyToMismatch => "FROM_REPLYTO_MISMATCH",
            Check::AllCapsSubject => "ALL_CAPS_SUBJECT",
            Check::HtmlOnly => "HTML_ONLY",
            Check::ManyUrls => "MANY_URLS",
        }
    }

    pub fn default_score(self) -> f64 {
        match self {
            Check::MissingDate => 1.0,
            Check::MalformedDate => 1.0,
            Check::MissingMessageId => 1.0,
            Check::MalformedMessageId => 0.5,
            Check::MissingFrom => 2.0,
            Check::FromReplyToMismatch => 1.5,
            Check::AllCapsSubject => 1.5,
            Check::HtmlOnly => 1.0,
            Check::ManyUrls => 1.5,
        }
    }
}

/// What a custom rule looks at.
#[derive(Clone, Debug)]
pub enum Target {
    /// Every value of this header (name compared case-insensitively).
    Header(String),
    /// The decoded text of the message's text parts (HTML as text).
    Body,
}

#[derive(Clone, Debug)]
pub struct Rule {
    pub name: String,
    pub target: Target,
    pub pattern: Regex,
    /// For body rules: rules out most text without running the regex.
    pub prefilter: Option<Prefilter>,
    pub score: f64,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// At or above: `X-Spam-Status: Yes`.
    pub required_score: f64,
    /// At or above: quarantine (None: never).
    pub quarantine_threshold: Option<f64>,
    /// At or above: reject (None: never).
    pub reject_threshold: Option<f64>,
    /// Whether the thresholds see the score earlier plugins gave the transaction.
    pub use_host_score: bool,
    /// Most decoded body bytes read, over all text parts.
    pub max_body_scan: u64,
    /// More distinct URLs than this triggers MANY_URLS.
    pub max_urls: usize,
    /// Fewest cased letters for ALL_CAPS_SUBJECT.
    pub all_caps_min_letters: usize,
    /// Scores of the built-in checks, in `Check::ALL` order (0 disables one).
    pub scores: [f64; 9],
    pub rules: Vec<Rule>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            required_score: 5.0,
            quarantine_threshold: Some(10.0),
            reject_threshold: Some(15.0),
            use_host_score: true,
            max_body_scan: 256 * 1024,
            max_urls: 10,
            all_caps_min_letters: 8,
            scores: Check::ALL.map(Check::default_score),
            rules: Vec::new(),
        }
    }
}

impl Settings {
    pub fn score(&self, check: Check) -> f64 {
        Check::ALL.iter().position(|c| *c == check).map_or(0.0, |i| self.scores[i])
    }
}

/// Most bytes a compiled pattern may take; larger ones are refused (a config mistake
/// such as `\w{1000}` should not eat the instance's memory).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Reads the settings; the second value lists what was skipped and why.
pub fn parse(root: &Value) -> (Settings, Vec<String>) {
    let mut warnings = Vec::new();
    let mut s = Settings::default();
    if let Some(v) = root.get("required_score") {
        match v.as_f64().filter(|f| f.is_finite()) {
            Some(score) => s.required_score = score,
            None => warnings.push(format!("required_score: expected a number, got {v:?}; using 5.0")),
        }
    }
    s.quarantine_threshold = threshold(root, "quarantine_threshold", s.quarantine_threshold, &mut warnings);
    s.reject_threshold = threshold(root, "reject_threshold", s.reject_threshold, &mut warnings);
    match root.get("use_host_score") {
        None => {}
        Some(Value::Boolean(b)) => s.use_host_score = *b,
        Some(v) => warnings.push(format!("use_host_score: expected true or false, got {v:?}; using true")),
    }
    if let Some(v) = root.get("max_body_scan") {
        match size_value(v) {
            Some(n) => s.max_body_scan = n,
            None => {
                warnings.push(format!("max_body_scan: expected a size such as \"256KiB\", got {v:?}; using 256KiB"))
            }
        }
    }
    for (key, slot, default) in
        [("max_urls", &mut s.max_urls, 10usize), ("all_caps_min_letters", &mut s.all_caps_min_letters, 8usize)]
    {
        if let Some(v) = root.get(key) {
            match v.as_i64().and_then(|i| usize::try_from(i).ok()) {
                Some(n) => *slot = n,
                None => warnings.push(format!("{key}: expected a non-negative integer, got {v:?}; using {default}")),
            }
        }
    }
    for (name, value) in root.get("scores").map(Value::entries).unwrap_or_default() {
        let key = name.to_ascii_uppercase();
        match (Check::ALL.iter().position(|c| c.name() == key), value.as_f64().filter(|f| f.is_finite())) {
            (Some(i), Some(score)) => s.scores[i] = score,
            (None, _) => warnings.push(format!("scores.{name}: no such check; skipped")),
            (_, None) => warnings.push(format!("scores.{name}: expected a number, got {value:?}; skipped")),
        }
    }
    for (i, rule) in root.get("rules").map(Value::as_array).unwrap_or_default().iter().enumerate() {
        match parse_rule(rule) {
            Ok(rule) => s.rules.push(rule),
            Err(why) => warnings.push(format!("rules[{i}]: {why}; skipped")),
        }
    }
    if let (Some(q), Some(r)) = (s.quarantine_threshold, s.reject_threshold)
        && q >= r
    {
        warnings.push(format!("quarantine_threshold {q} is not below reject_threshold {r}: nothing is quarantined"));
    }
    (s, warnings)
}

/// A threshold: a number, or `false` / `"off"` to disable it.
fn threshold(root: &Value, key: &str, default: Option<f64>, warnings: &mut Vec<String>) -> Option<f64> {
    match root.get(key) {
        None => default,
        Some(Value::Boolean(false)) => None,
        Some(Value::Text(t)) if t.eq_ignore_ascii_case("off") => None,
        Some(v) => v.as_f64().filter(|f| f.is_finite()).map(Some).unwrap_or_else(|| {
            warnings.push(format!("{key}: expected a number or \"off\", got {v:?}; using {default:?}"));
            default
        }),
    }
}

fn parse_rule(rule: &Value) -> Result<Rule, String> {
    let name = rule.str("name").ok_or("missing name")?;
    let name: String = name
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .take(40)
        .collect();
    if name.is_empty() {
        return Err("empty name".into());
    }
    let target = match (rule.str("header"), rule.bool("body")) {
        (Some(header), None | Some(false)) if filter_util::header::is_name(header) => {
            Target::Header(header.to_string())
        }
        (None, Some(true)) => Target::Body,
        _ => return Err(format!("{name}: give either header = \"Name\" or body = true")),
    };
    let pattern = rule.str("pattern").ok_or_else(|| format!("{name}: missing pattern"))?;
    let pattern = match rule.bool("unicode_word_boundary") {
        Some(true) => pattern.to_string(),
        _ => ascii_word_boundaries(pattern),
    };
    let pattern = RegexBuilder::new(&pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("{name}: bad pattern: {}", e.to_string().replace('\n', " ")))?;
    let score = rule.f64("score").filter(|f| f.is_finite()).ok_or_else(|| format!("{name}: missing score"))?;
    let prefilter = match target {
        Target::Body => Prefilter::new(pattern.as_str()),
        Target::Header(_) => None,
    };
    Ok(Rule { name, target, pattern, prefilter, score })
}

/// Rewrites `\b` and `\B` outside character classes as their ASCII forms
/// (`(?-u:\b)`). Why: the fast engine (a lazy DFA) cannot evaluate a Unicode word
/// boundary once the text holds a non-ASCII byte, and falls back to an engine about
/// 20 times slower; on 256 KiB of German or French mail that is ~150 ms, three times
/// the default CPU budget of a call. ASCII boundaries differ only next to non-ASCII
/// letters (`\bviagra\b` also matches inside `üviagra`). Rules that need the Unicode
/// meaning set `unicode_word_boundary = true`.
pub fn ascii_word_boundaries(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars();
    let mut class_depth = 0u32;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(b @ ('b' | 'B')) if class_depth == 0 => {
                    out.push_str("(?-u:\\");
                    out.push(b);
                    out.push(')');
                }
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => out.push('\\'),
            },
            '[' => {
                class_depth += 1;
                out.push(c);
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
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
        assert_eq!((s.required_score, s.quarantine_threshold, s.reject_threshold), (5.0, Some(10.0), Some(15.0)));
        assert_eq!(s.max_body_scan, 256 * 1024);
        assert_eq!(s.score(Check::AllCapsSubject), 1.5);
        assert!(s.rules.is_empty() && s.use_host_score);
    }

    #[test]
    fn reads_every_key() {
        let s = settings(
            r#"
            required_score = 4
            quarantine_threshold = "off"
            reject_threshold = 12.5
            use_host_score = false
            max_body_scan = "64KiB"
            max_urls = 3
            all_caps_min_letters = 5
            scores = { MISSING_DATE = 2.5, html_only = 0 }
            [[rules]]
            name = "pharma words"
            body = true
            pattern = '(?i)\b(viagra|cialis)\b'
            score = 3
            [[rules]]
            name = "LOTTERY_SUBJECT"
            header = "Subject"
            pattern = "(?i)you (have )?won"
            score = 2.0
            "#,
        );
        assert_eq!((s.required_score, s.quarantine_threshold, s.reject_threshold), (4.0, None, Some(12.5)));
        assert!(!s.use_host_score);
        assert_eq!((s.max_body_scan, s.max_urls, s.all_caps_min_letters), (64 * 1024, 3, 5));
        assert_eq!((s.score(Check::MissingDate), s.score(Check::HtmlOnly)), (2.5, 0.0));
        assert_eq!(s.rules.len(), 2);
        assert_eq!(s.rules[0].name, "PHARMA_WORDS");
        assert!(matches!(s.rules[0].target, Target::Body));
        assert!(s.rules[0].pattern.is_match("Buy VIAGRA now"));
        assert!(matches!(&s.rules[1].target, Target::Header(h) if h == "Subject"));
    }

    #[test]
    fn bad_entries_warn_and_fall_back() {
        let (s, warnings) = parse(&from_toml(
            r#"
            required_score = "five"
            reject_threshold = []
            max_body_scan = "lots"
            max_urls = -1
            scores = { NO_SUCH_CHECK = 1, MISSING_DATE = "high" }
            [[rules]]
            name = "BROKEN"
            body = true
            pattern = "(unclosed"
            score = 1
            [[rules]]
            name = "BOTH"
            body = true
            header = "Subject"
            pattern = "x"
            score = 1
            [[rules]]
            name = "NO_SCORE"
            header = "Subject"
            pattern = "x"
            [[rules]]
            name = "HUGE"
            body = true
            pattern = '\w{5000}\w{5000}'
            score = 1
            "#,
        ));
        assert_eq!(warnings.len(), 10, "{warnings:#?}");
        assert_eq!(
            (s.required_score, s.reject_threshold, s.max_body_scan, s.max_urls),
            (5.0, Some(15.0), 256 * 1024, 10)
        );
        assert_eq!(s.score(Check::MissingDate), 1.0);
        assert!(s.rules.is_empty());
    }

    #[test]
    fn word_boundaries_become_ascii() {
        assert_eq!(ascii_word_boundaries(r"(?i)\bviagra\B"), r"(?i)(?-u:\b)viagra(?-u:\B)");
        assert_eq!(ascii_word_boundaries(r"a\\b[\b]\d\\"), r"a\\b[\b]\d\\");
        assert_eq!(ascii_word_boundaries(r"[[a-z]\]]\b"), r"[[a-z]\]](?-u:\b)");
        let s = settings(
            r#"
            [[rules]]
            name = "ASCII"
            body = true
            pattern = '\bviagra\b'
            score = 1
            [[rules]]
            name = "UNICODE"
            body = true
            pattern = '\bviagra\b'
            unicode_word_boundary = true
            score = 1
            "#,
        );
        assert!(s.rules[0].pattern.is_match("üviagra") && !s.rules[1].pattern.is_match("üviagra"));
        assert!(s.rules[0].pattern.is_match("buy viagra now") && s.rules[1].pattern.is_match("buy viagra now"));
    }

    #[test]
    fn fixture_config_parses_cleanly() {
        let s = settings(&read_fixture(env!("CARGO_MANIFEST_DIR"), "fixtures/config.toml"));
        assert!(!s.rules.is_empty());
    }
}
