//! The service's JSON answer (the schema is in `README.md`) turned into an outcome.

use filter_util::header::{is_name, unfold};
use filter_util::reply::{check, sanitize, with_class};
use serde::Deserialize;
use sluice_plugin::Outcome;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Continue,
    Accept,
    Reject,
    Tempfail,
    Disconnect,
    Discard,
    Quarantine,
}

#[derive(Debug, Deserialize)]
pub struct AddHeader {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub struct Answer {
    pub action: Action,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
    pub text: Option<String>,
    #[serde(default)]
    pub add_headers: Vec<AddHeader>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub score: f64,
}

/// The outcome, and the headers to add (DATA only); a reply that does not fit its
/// action is an error, as is anything that is not such an answer.
pub fn read(body: &[u8]) -> Result<(Outcome, Vec<(String, String)>), String> {
    let answer: Answer =
        serde_json::from_slice(body).map_err(|e| format!("the policy service's answer is not a verdict: {e}"))?;
    let mut outcome = match answer.action {
        Action::Continue => Outcome::proceed(),
        Action::Accept => Outcome::accept(),
        Action::Reject => reply(&answer, Refusal::Reject)?,
        Action::Tempfail => reply(&answer, Refusal::Tempfail)?,
        Action::Disconnect => reply(&answer, Refusal::Disconnect)?,
        Action::Discard => Outcome::discard(),
        Action::Quarantine => {
            Outcome::quarantine(answer.text.as_deref().map(sanitize).unwrap_or_else(|| "policy service".into()))
        }
    };
    for tag in &answer.tags {
        outcome = outcome.tag(tag.clone());
    }
    outcome = outcome.score(answer.score);
    let mut headers = Vec::with_capacity(answer.add_headers.len());
    for header in answer.add_headers {
        if !is_name(&header.name) {
            return Err(format!("the policy service's header name {:?} is invalid", header.name));
        }
        headers.push((header.name, unfold(&header.value)));
    }
    Ok((outcome, headers))
}

#[derive(Clone, Copy)]
enum Refusal {
    Reject,
    Tempfail,
    Disconnect,
}

/// The answer's code, enhanced code and text, or the action's defaults; the code must
/// be of the action's class (421 or 5xx to disconnect).
fn reply(answer: &Answer, kind: Refusal) -> Result<Outcome, String> {
    let (default_code, default_enhanced, default_text) = match kind {
        Refusal::Reject => (550, "5.7.1", "Rejected by policy"),
        Refusal::Tempfail => (451, "4.7.1", "Try again later"),
        Refusal::Disconnect => (421, "4.7.0", "Closing connection"),
    };
    let code = answer.code.unwrap_or(default_code);
    let fits = match kind {
        Refusal::Reject => code / 100 == 5,
        Refusal::Tempfail => code / 100 == 4,
        Refusal::Disconnect => code == 421 || code / 100 == 5,
    };
    if !fits {
        return Err(format!("the policy service's code {code} does not fit its action"));
    }
    let enhanced = answer.enhanced.clone().unwrap_or_else(|| with_class(default_enhanced, code));
    check(code, &enhanced).map_err(|e| format!("the policy service's reply: {e}"))?;
    let text = answer.text.as_deref().map(sanitize).filter(|t| !t.is_empty()).unwrap_or_else(|| default_text.into());
    Ok(match kind {
        Refusal::Reject => Outcome::reject(code, &enhanced, text),
        Refusal::Tempfail => Outcome::tempfail(code, &enhanced, text),
        Refusal::Disconnect => Outcome::disconnect(code, &enhanced, text),
    })
}

#[cfg(test)]
mod tests {
    use sluice_plugin::Verdict;

    use super::*;

    fn verdict(json: &str) -> Verdict {
        read(json.as_bytes()).unwrap().0.verdict
    }

    fn refusal(json: &str) -> (u16, String, String) {
        match verdict(json) {
            Verdict::Reject(r) | Verdict::Tempfail(r) | Verdict::Disconnect(r) => (r.code, r.enhanced_code, r.text),
            other => panic!("not a refusal: {other:?}"),
        }
    }

    #[test]
    fn every_action() {
        assert!(matches!(verdict(r#"{"action":"continue"}"#), Verdict::Continue));
        assert!(matches!(verdict(r#"{"action":"accept"}"#), Verdict::Accept));
        assert!(matches!(verdict(r#"{"action":"discard"}"#), Verdict::Discard));
        assert!(matches!(verdict(r#"{"action":"quarantine","text":"look"}"#), Verdict::Quarantine(r) if r == "look"));
        assert_eq!(refusal(r#"{"action":"reject"}"#), (550, "5.7.1".into(), "Rejected by policy".into()));
        assert_eq!(
            refusal(r#"{"action":"reject","code":554,"enhanced":"5.7.0","text":"No\r\nthanks"}"#),
            (554, "5.7.0".into(), "No??thanks".into())
        );
        assert_eq!(refusal(r#"{"action":"tempfail","code":450}"#), (450, "4.7.1".into(), "Try again later".into()));
        assert_eq!(refusal(r#"{"action":"disconnect"}"#), (421, "4.7.0".into(), "Closing connection".into()));
    }

    #[test]
    fn tags_score_and_headers() {
        let body = br#"{"action":"continue","tags":["vip"],"score":1.5,
            "add_headers":[{"name":"X-Policy","value":"checked\n\tok"}],"unknown":true}"#;
        let (outcome, headers) = read(body).unwrap();
        assert_eq!(outcome.tags, ["vip"]);
        assert_eq!(outcome.score, 1.5);
        assert_eq!(headers, [("X-Policy".to_string(), "checked ok".to_string())]);
    }

    #[test]
    fn malformed_answers_are_errors() {
        for bad in [
            "not json",
            r#"{"code":550}"#,
            r#"{"action":"maybe"}"#,
            r#"{"action":"reject","code":451}"#,
            r#"{"action":"tempfail","enhanced":"5.7.1"}"#,
            r#"{"action":"disconnect","code":450}"#,
            r#"{"action":"continue","add_headers":[{"name":"Bad Name","value":"x"}]}"#,
            r#"{"action":"continue","score":"high"}"#,
        ] {
            assert!(read(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
