//! Scoring a message: the built-in checks and custom rules over headers and text, then
//! the decision against the thresholds. Pure functions over plain data.

use std::collections::HashSet;

use crate::config::{Check, Settings, Target};
use crate::date::is_valid_date;
use crate::text::{address_domain, html_to_text, is_all_caps, related_domains, urls};

/// A decoded text part of the message (bounded by `max_body_scan`).
#[derive(Clone, Debug)]
pub struct TextBody {
    pub html: bool,
    pub content: String,
}

/// A rule that matched, with its score.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub name: String,
    pub score: f64,
}

fn values<'h>(headers: &'h [(String, String)], name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Every rule that matches, in a stable order: built-in checks, then custom rules.
/// Rules whose score is 0 are disabled and never reported.
pub fn evaluate(settings: &Settings, headers: &[(String, String)], bodies: &[TextBody]) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut hit = |check: Check| {
        let score = settings.score(check);
        if score != 0.0 {
            hits.push(Hit { name: check.name().to_string(), score });
        }
    };

    match values(headers, "Date").next() {
        None => hit(Check::MissingDate),
        Some(date) if !is_valid_date(date) => hit(Check::MalformedDate),
        Some(_) => {}
    }
    match values(headers, "Message-ID").next().map(str::trim) {
        None | Some("") => hit(Check::MissingMessageId),
        Some(id) if !is_valid_message_id(id) => hit(Check::MalformedMessageId),
        Some(_) => {}
    }
    let from = values(headers, "From").next().and_then(address_domain);
    if values(headers, "From").next().is_none() {
        hit(Check::MissingFrom);
    }
    if let (Some(from), Some(reply_to)) = (from, values(headers, "Reply-To").next().and_then(address_domain))
        && !related_domains(&from, &reply_to)
    {
        hit(Check::FromReplyToMismatch);
    }
    if values(headers, "Subject").next().is_some_and(|s| is_all_caps(s, settings.all_caps_min_letters)) {
        hit(Check::AllCapsSubject);
    }
    let has_text = bodies.iter().any(|b| !b.html && !b.content.trim().is_empty());
    if !has_text && bodies.iter().any(|b| b.html) {
        hit(Check::HtmlOnly);
    }
    let distinct: HashSet<String> = bodies.iter().flat_map(|b| urls(&b.content)).collect();
    if distinct.len() > settings.max_urls {
        hit(Check::ManyUrls);
    }

    // Custom rules: HTML is matched as its visible text, computed once.
    let texts: Vec<std::borrow::Cow<'_, str>> = if settings.rules.iter().any(|r| matches!(r.target, Target::Body)) {
        bodies
            .iter()
            .map(|b| if b.html { html_to_text(&b.content).into() } else { b.content.as_str().into() })
            .collect()
    } else {
        Vec::new()
    };
    for rule in &settings.rules {
        let matched = match &rule.target {
            Target::Header(name) => values(headers, name).any(|v| rule.pattern.is_match(v)),
            Target::Body => texts
                .iter()
                .any(|t| rule.prefilter.as_ref().is_none_or(|p| p.may_match(t.as_bytes())) && rule.pattern.is_match(t)),
        };
        if matched && rule.score != 0.0 {
            hits.push(Hit { name: rule.name.clone(), score: rule.score });
        }
    }
    hits
}

/// `<left@right>` with something on both sides of the `@`.
fn is_valid_message_id(id: &str) -> bool {
    id.strip_prefix('<').and_then(|rest| rest.strip_suffix('>')).and_then(|inner| inner.split_once('@')).is_some_and(
        |(left, right)| {
            !left.is_empty()
                && !right.is_empty()
                && !left.contains(char::is_whitespace)
                && !right.contains(char::is_whitespace)
        },
    )
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    Continue,
    Quarantine,
    Reject,
}

/// The result for one message.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// This plugin's own score (added to the transaction's).
    pub own: f64,
    /// What the thresholds were compared with (own, plus earlier plugins' if enabled).
    pub total: f64,
    pub spam: bool,
    pub action: Action,
    pub hits: Vec<Hit>,
    /// The earlier plugins' score, when it counted.
    pub prior: Option<f64>,
}

pub fn decide(settings: &Settings, hits: Vec<Hit>, prior: f64) -> Verdict {
    let own: f64 = hits.iter().map(|h| h.score).sum();
    let prior = (settings.use_host_score && prior != 0.0).then_some(prior);
    let total = own + prior.unwrap_or(0.0);
    let at_least = |threshold: Option<f64>| threshold.is_some_and(|t| total >= t);
    let action = if at_least(settings.reject_threshold) {
        Action::Reject
    } else if at_least(settings.quarantine_threshold) {
        Action::Quarantine
    } else {
        Action::Continue
    };
    Verdict { own, total, spam: total >= settings.required_score, action, hits, prior }
}

/// Scores as shown in headers: one decimal, two when needed (`7.5`, `0.25`, `-1.0`).
pub fn format_score(score: f64) -> String {
    let score = if score == 0.0 { 0.0 } else { score };
    let two = format!("{score:.2}");
    match two.strip_suffix('0') {
        Some(one) => one.to_string(),
        None => two,
    }
}

impl Verdict {
    /// `X-Spam-Status`: `Yes, score=7.5 required=5.0`.
    pub fn status(&self, settings: &Settings) -> String {
        format!(
            "{}, score={} required={}",
            if self.spam { "Yes" } else { "No" },
            format_score(self.total),
            format_score(settings.required_score)
        )
    }

    /// `X-Spam-Report`: `MISSING_DATE=1.0, ALL_CAPS_SUBJECT=1.5` (or `none`).
    pub fn report(&self) -> String {
        let mut entries: Vec<String> =
            self.hits.iter().take(50).map(|h| format!("{}={}", h.name, format_score(h.score))).collect();
        if let Some(prior) = self.prior {
            entries.push(format!("EARLIER_PLUGINS={}", format_score(prior)));
        }
        if entries.is_empty() { "none".to_string() } else { entries.join(", ") }
    }

    /// The names of the rules that matched, for tags and logs.
    pub fn rule_names(&self) -> String {
        self.hits.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::settings;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn plain(text: &str) -> TextBody {
        TextBody { html: false, content: text.to_string() }
    }

    fn html(text: &str) -> TextBody {
        TextBody { html: true, content: text.to_string() }
    }

    fn names(hits: &[Hit]) -> Vec<&str> {
        hits.iter().map(|h| h.name.as_str()).collect()
    }

    fn good_headers() -> Vec<(String, String)> {
        h(&[
            ("From", "Alice <alice@example.org>"),
            ("Reply-To", "alice@lists.example.org"),
            ("Date", "Mon, 3 Nov 2025 10:00:00 +0000"),
            ("Message-ID", "<1@example.org>"),
            ("Subject", "Lunch on Friday?"),
        ])
    }

    #[test]
    fn a_clean_message_hits_nothing() {
        let hits = evaluate(&settings(""), &good_headers(), &[plain("See you at noon.")]);
        assert!(hits.is_empty(), "{hits:?}");
    }

    #[test]
    fn header_checks() {
        let s = settings("");
        let hits = evaluate(&s, &h(&[("Subject", "FREE MONEY WAITING")]), &[plain("x")]);
        assert_eq!(names(&hits), ["MISSING_DATE", "MISSING_MESSAGE_ID", "MISSING_FROM", "ALL_CAPS_SUBJECT"]);
        let hits = evaluate(
            &s,
            &h(&[
                ("From", "PayPal <service@paypal.example>"),
                ("Reply-To", "<claims@freemail.example>"),
                ("Date", "today"),
                ("Message-ID", "no-brackets"),
            ]),
            &[plain("x")],
        );
        assert_eq!(names(&hits), ["MALFORMED_DATE", "MALFORMED_MESSAGE_ID", "FROM_REPLYTO_MISMATCH"]);
    }

    #[test]
    fn html_only_and_urls() {
        let s = settings("max_urls = 2");
        let links = "<a href=\"http://a.example/1\">1</a> <a href=\"http://a.example/2\">2</a> http://a.example/3";
        let hits = evaluate(&s, &good_headers(), &[html(links)]);
        assert_eq!(names(&hits), ["HTML_ONLY", "MANY_URLS"]);
        // An empty text/plain alternative does not count as text.
        let hits = evaluate(&s, &good_headers(), &[plain("  \r\n"), html("<p>hi</p>")]);
        assert_eq!(names(&hits), ["HTML_ONLY"]);
        let hits =
            evaluate(&s, &good_headers(), &[plain("hi http://a.example/1"), html("<p>hi http://a.example/1</p>")]);
        assert!(hits.is_empty(), "same URL in both alternatives counts once: {hits:?}");
    }

    #[test]
    fn custom_rules_and_disabled_checks() {
        let s = settings(
            r#"
            scores = { MISSING_DATE = 0 }
            [[rules]]
            name = "PHARMA"
            body = true
            pattern = '(?i)\bviagra\b'
            score = 3.5
            [[rules]]
            name = "WON_SUBJECT"
            header = "subject"
            pattern = "(?i)you have won"
            score = 2
            [[rules]]
            name = "KNOWN_LIST"
            header = "List-Id"
            pattern = "example\\.org"
            score = -1
            "#,
        );
        let mut headers = good_headers();
        headers.retain(|(n, _)| n != "Date");
        headers.push(("Subject".into(), "You have WON".into()));
        headers.push(("List-Id".into(), "<news.example.org>".into()));
        let hits = evaluate(&s, &headers, &[html("<p>cheap <b>VIAGRA</b></p>")]);
        assert_eq!(names(&hits), ["HTML_ONLY", "PHARMA", "WON_SUBJECT", "KNOWN_LIST"]);
        // HTML tags do not hide words from body rules, and rules see only text parts.
        let hits = evaluate(&s, &good_headers(), &[html("<p>via<!-- -->gra</p>")]);
        assert_eq!(names(&hits), ["HTML_ONLY"]);
    }

    #[test]
    fn thresholds_decide() {
        let s = settings("required_score = 5\nquarantine_threshold = 8\nreject_threshold = 12");
        let hit = |score| vec![Hit { name: "X".into(), score }];
        assert_eq!(decide(&s, hit(4.9), 0.0).action, Action::Continue);
        assert!(decide(&s, hit(5.0), 0.0).spam);
        assert_eq!(decide(&s, hit(8.0), 0.0).action, Action::Quarantine);
        assert_eq!(decide(&s, hit(12.0), 0.0).action, Action::Reject);
        // Earlier plugins' score counts towards the thresholds, not towards our own.
        let v = decide(&s, hit(6.0), 3.0);
        assert_eq!((v.own, v.total, v.action), (6.0, 9.0, Action::Quarantine));
        assert_eq!(v.report(), "X=6.0, EARLIER_PLUGINS=3.0");
        let s = settings("use_host_score = false\nreject_threshold = false\nquarantine_threshold = 8");
        let v = decide(&s, hit(100.0), 3.0);
        assert_eq!((v.total, v.action), (100.0, Action::Quarantine));
    }

    #[test]
    fn headers_text() {
        let s = settings("");
        let v = decide(
            &s,
            vec![Hit { name: "MISSING_DATE".into(), score: 1.0 }, Hit { name: "ALL_CAPS_SUBJECT".into(), score: 1.5 }],
            0.0,
        );
        assert_eq!(v.status(&s), "No, score=2.5 required=5.0");
        assert_eq!(v.report(), "MISSING_DATE=1.0, ALL_CAPS_SUBJECT=1.5");
        assert_eq!(v.rule_names(), "MISSING_DATE,ALL_CAPS_SUBJECT");
        assert_eq!(decide(&s, vec![], 0.0).report(), "none");
        assert_eq!(format_score(0.25), "0.25");
        assert_eq!(format_score(-1.0), "-1.0");
        assert_eq!(format_score(-0.0), "0.0");
        assert_eq!(format_score(7.456), "7.46");
    }
}
