//! rspamd's scan turned into what the DATA hook returns.

use filter_util::reply::sanitize;
use sluice_plugin::{DataResult, HeaderChange, Outcome};

use filter_util::header::{is_name, unfold};

use crate::config::{Action, Settings};
use crate::reply::Scan;

/// The verdict for an enforced action (no objection for the others), with the score,
/// the symbols as tags, rspamd's milter headers and the result header.
pub fn decide(settings: &Settings, scan: &Scan, subject: Option<&str>) -> DataResult {
    let action = Action::parse(&scan.action);
    let enforced = action.filter(|a| settings.enforce.contains(a)).unwrap_or(Action::NoAction);
    let message = scan.messages.smtp_message.as_deref().map(sanitize).filter(|m| !m.is_empty());
    let mut outcome = match enforced {
        Action::Reject => Outcome::reject(550, "5.7.1", message.unwrap_or_else(|| "Spam message rejected".into())),
        Action::SoftReject => Outcome::tempfail(451, "4.7.1", message.unwrap_or_else(|| "Try again later".into())),
        Action::Greylist => Outcome::tempfail(451, "4.7.1", greylist_text(scan, message)),
        Action::AddHeader | Action::RewriteSubject | Action::NoAction => Outcome::proceed(),
    };
    if is_spam(action) {
        outcome = outcome.tag("spam");
    }
    for (name, symbol) in &scan.symbols {
        if symbol.score != 0.0 {
            outcome = outcome.tag(format!("rspamd:{name}"));
        }
    }
    outcome =
        outcome.score(scan.score).annotate("action", &scan.action).annotate("score", format!("{:.2}", scan.score));
    let mut result = DataResult::from(outcome);
    result.header_changes = header_changes(settings, scan, enforced, subject);
    result
}

fn is_spam(action: Option<Action>) -> bool {
    matches!(action, Some(Action::Reject | Action::AddHeader | Action::RewriteSubject))
}

/// rspamd's message, with when greylisting ends if the `GREYLIST` symbol says so and
/// the message does not already.
fn greylist_text(scan: &Scan, message: Option<String>) -> String {
    let text = message.unwrap_or_else(|| "Greylisted, try again later".into());
    let until = scan.symbols.get("GREYLIST").and_then(|s| match s.options.as_slice() {
        [what, until, ..] if what == "greylisted" => Some(sanitize(until)),
        _ => None,
    });
    match until {
        Some(until) if !until.is_empty() && !text.contains(&until) => sanitize(&format!("{text} (until {until})")),
        _ => text,
    }
}

fn header_changes(settings: &Settings, scan: &Scan, enforced: Action, subject: Option<&str>) -> Vec<HeaderChange> {
    let mut changes = Vec::new();
    for name in scan.milter.remove_headers.keys().filter(|n| is_name(n)) {
        changes.push(HeaderChange::Remove(name.clone()));
    }
    let additions = scan.milter.additions();
    let milter_adds = |header: &str| additions.iter().any(|(n, _)| n.eq_ignore_ascii_case(header));
    match enforced {
        Action::AddHeader => {
            changes.push(HeaderChange::Set((settings.spam_header.clone(), settings.spam_value.clone())));
        }
        Action::RewriteSubject => {
            let new = scan.subject.clone().unwrap_or_else(|| settings.subject.replace("%s", subject.unwrap_or("")));
            changes.push(HeaderChange::Set(("Subject".to_string(), unfold(&new))));
        }
        _ => {}
    }
    changes
        .extend(additions.iter().filter(|(n, _)| is_name(n)).map(|(n, v)| HeaderChange::Add((n.clone(), v.clone()))));
    if let Some(header) = &settings.result_header
        && !milter_adds(header)
    {
        changes.push(HeaderChange::Set((header.clone(), result_line(scan))));
    }
    changes
}

/// As rspamd's milter writes it, on one line: `default: False [1.20 / 15.00];
/// SYMBOL(0.50)[option,...]; ...`.
pub fn result_line(scan: &Scan) -> String {
    let spam = if is_spam(Action::parse(&scan.action)) { "True" } else { "False" };
    let mut line = format!("default: {spam} [{:.2} / {:.2}]", scan.score, scan.required_score);
    for (name, symbol) in &scan.symbols {
        line.push_str(&format!("; {name}({:.2})", symbol.score));
        if !symbol.options.is_empty() {
            line.push_str(&format!("[{}]", symbol.options.join(",")));
        }
    }
    unfold(&line)
}

#[cfg(test)]
mod tests {
    use sluice_plugin::Verdict;
    use sluice_plugin::testing::{from_toml, parse_clean};

    use super::*;
    use crate::config::parse;

    fn settings(toml: &str) -> Settings {
        parse_clean(parse, &from_toml(toml))
    }

    fn scan(json: &str) -> Scan {
        Scan::parse(json.as_bytes()).unwrap()
    }

    fn reply(result: &DataResult) -> Option<(u16, String, String)> {
        match &result.outcome.verdict {
            Verdict::Reject(r) | Verdict::Tempfail(r) => Some((r.code, r.enhanced_code.clone(), r.text.clone())),
            _ => None,
        }
    }

    /// The changes as `set N: V`, `add N: V`, `remove N` (`HeaderChange` has no `==`).
    fn changes(result: &DataResult) -> Vec<String> {
        result
            .header_changes
            .iter()
            .map(|change| match change {
                HeaderChange::Set((n, v)) => format!("set {n}: {v}"),
                HeaderChange::Add((n, v)) => format!("add {n}: {v}"),
                HeaderChange::Remove(n) => format!("remove {n}"),
            })
            .collect()
    }

    #[test]
    fn reject_uses_rspamds_message() {
        let s = scan(
            r#"{"action":"reject","score":1000,"required_score":15,
                "symbols":{"GTUBE":{"score":0}},"messages":{"smtp_message":"Gtube pattern\r\n"}}"#,
        );
        let result = decide(&settings(""), &s, None);
        assert_eq!(reply(&result), Some((550, "5.7.1".into(), "Gtube pattern".into())));
        assert_eq!(result.outcome.score, 1000.0);
        assert!(result.outcome.tags.contains(&"spam".to_string()));
        let without = decide(&settings(""), &scan(r#"{"action":"reject"}"#), None);
        assert_eq!(reply(&without), Some((550, "5.7.1".into(), "Spam message rejected".into())));
    }

    #[test]
    fn soft_reject_and_greylist_defer() {
        let soft = decide(&settings(""), &scan(r#"{"action":"soft reject"}"#), None);
        assert_eq!(reply(&soft), Some((451, "4.7.1".into(), "Try again later".into())));
        let grey = scan(
            r#"{"action":"greylist","symbols":{"GREYLIST":{"score":0,
                "options":["greylisted","Thu, 03 Dec 2026 17:40:00 GMT","new record"]}}}"#,
        );
        let result = decide(&settings(""), &grey, None);
        let text = "Greylisted, try again later (until Thu, 03 Dec 2026 17:40:00 GMT)";
        assert_eq!(reply(&result), Some((451, "4.7.1".into(), text.into())));
    }

    #[test]
    fn add_header_sets_the_configured_header_and_the_result() {
        let s = scan(
            r#"{"action":"add header","score":6.5,"required_score":15,
                "symbols":{"TEST_ADD":{"score":6.5,"options":["x"]},"ZERO":{"score":0}}}"#,
        );
        let result = decide(&settings(""), &s, None);
        assert!(matches!(result.outcome.verdict, Verdict::Continue));
        assert_eq!(
            changes(&result),
            ["set X-Spam: Yes", "set X-Spamd-Result: default: True [6.50 / 15.00]; TEST_ADD(6.50)[x]; ZERO(0.00)"]
        );
        assert_eq!(result.outcome.tags, ["spam", "rspamd:TEST_ADD"]);
        let custom = settings("spam_header = \"X-Junk\"\nspam_header_value = \"yes\"\nresult_header = \"\"");
        assert_eq!(changes(&decide(&custom, &s, None)), ["set X-Junk: yes"]);
    }

    #[test]
    fn rewrite_subject_prefers_rspamds_subject() {
        let with = scan(r#"{"action":"rewrite subject","subject":"[SPAM] Hello"}"#);
        let result = decide(&settings("result_header = \"\""), &with, Some("Hello"));
        assert_eq!(changes(&result), ["set Subject: [SPAM] Hello"]);
        let without = scan(r#"{"action":"rewrite subject"}"#);
        let result = decide(&settings("result_header = \"\""), &without, Some("Hello"));
        assert_eq!(changes(&result), ["set Subject: *** SPAM *** Hello"]);
    }

    #[test]
    fn actions_not_enforced_only_annotate() {
        let s = scan(r#"{"action":"reject","score":20}"#);
        let result = decide(&settings("enforce = [\"add header\"]\nresult_header = \"\""), &s, None);
        assert!(matches!(result.outcome.verdict, Verdict::Continue));
        assert!(result.header_changes.is_empty());
        assert_eq!(result.outcome.score, 20.0);
        assert!(result.outcome.annotations.contains(&("action".into(), "reject".into())));
        let unknown = decide(&settings(""), &scan(r#"{"action":"discard"}"#), None);
        assert!(matches!(unknown.outcome.verdict, Verdict::Continue));
    }

    #[test]
    fn milter_block_is_applied_and_its_result_header_wins() {
        let s = scan(
            r#"{"action":"no action","milter":{
                "add_headers":{"X-Spamd-Result":"default: False [0.00 / 15.00]","X-Rspamd-Server":"scanner"},
                "remove_headers":{"X-Spam":0,"Bad Name":0}}}"#,
        );
        let result = decide(&settings(""), &s, None);
        assert_eq!(
            changes(&result),
            ["remove X-Spam", "add X-Rspamd-Server: scanner", "add X-Spamd-Result: default: False [0.00 / 15.00]"]
        );
    }
}
