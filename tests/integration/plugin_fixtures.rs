//! Every example plugin's fixtures through `sluice plugin test`, as a plugin author
//! runs them: each `plugins/*/fixtures/cases.toml` lists messages, envelopes, client
//! addresses and configs with the fate each must meet (EXPECTED.md explains them).
//! DNS answers come from the fixtures' records file, served on loopback.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::plugins::{compile_cache, external_tagger_js, wasm};
use crate::support::server::BIN;

fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins")
}

/// A case's setting: its own, else the file's default.
fn setting<'a>(case: &'a toml::Table, defaults: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    case.get(key).or_else(|| defaults.get(key))
}

fn text(case: &toml::Table, defaults: &toml::Table, key: &str) -> Option<String> {
    setting(case, defaults, key).and_then(toml::Value::as_str).map(str::to_string)
}

fn strings(value: Option<&toml::Value>) -> Option<Vec<String>> {
    value?.as_array().map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
}

fn json_strings(report: &Value, key: &str) -> Vec<String> {
    report[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
}

fn run_cases(plugin: &str) {
    let fixtures = plugins_dir().join(plugin).join("fixtures");
    let file = fixtures.join("cases.toml");
    let defaults: toml::Table = toml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let component = match defaults["wasm"].as_str().unwrap() {
        path if path.ends_with(".wasm") => {
            assert_eq!(path, "external-tagger-js/external-tagger.wasm", "only the JS plugin is built elsewhere");
            external_tagger_js()
        }
        crate_name => wasm(crate_name),
    };
    // The runner answers DNS from the records file itself, as a plugin author runs it.
    let dns = defaults.get("dns_records").and_then(|v| v.as_str()).map(|f| fixtures.join(f));
    let cases = defaults["case"].as_array().unwrap();
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let case = case.as_table().unwrap();
        if let Err(problem) = run_case(&component, &fixtures, dns.as_deref(), case, &defaults) {
            failures.push(format!("{plugin} case {} ({}): {problem}", i + 1, toml::to_string(case).unwrap()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

fn run_case(
    component: &Path,
    fixtures: &Path,
    dns: Option<&Path>,
    case: &toml::Table,
    defaults: &toml::Table,
) -> Result<(), String> {
    let mut command = Command::new(BIN);
    command.arg("plugin").arg("test").arg(component).arg("--json").arg("--cache-dir").arg(compile_cache());
    let message = text(case, defaults, "message").ok_or("no message")?;
    command.arg("--message").arg(fixtures.join(message));
    command.arg("--from").arg(text(case, defaults, "from").ok_or("no from")?);
    command.arg("--rcpt").args(strings(setting(case, defaults, "rcpt")).ok_or("no rcpt")?);
    if let Some(config) = text(case, defaults, "config") {
        command.arg("--plugin-config").arg(fixtures.join(config));
    }
    for (key, flag) in [("client_ip", "--client-ip"), ("helo", "--helo"), ("wall_time", "--wall-time")] {
        if let Some(value) = text(case, defaults, key) {
            command.arg(flag).arg(value);
        }
    }
    if let Some(grants) = strings(setting(case, defaults, "grants")) {
        command.arg("--grant").args(grants);
    }
    if let Some(hops) = strings(setting(case, defaults, "next_hops")) {
        command.arg("--next-hop").args(hops);
    }
    if let Some(records) = dns {
        command.arg("--dns").arg(records);
    }
    let out = command.output().map_err(|e| e.to_string())?;
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("no report ({e}); stderr:\n{}", String::from_utf8_lossy(&out.stderr)))?;
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(format!("{what}; report: {report:#}")) };

    let fate = case.get("fate").and_then(|v| v.as_str()).ok_or("no fate")?;
    check(report["fate"] == fate, &format!("fate should be {fate}"))?;
    let refused = matches!(fate, "rejected" | "tempfailed" | "disconnected");
    check(out.status.code() == Some(i32::from(refused)), &format!("exit status {:?}", out.status.code()))?;
    for key in ["reply", "refused_at", "quarantine", "route", "sender_after"] {
        if let Some(expected) = case.get(key).and_then(|v| v.as_str()) {
            check(report[key] == expected, &format!("{key} should be {expected:?}"))?;
        }
    }
    if let Some(score) = case.get("score").and_then(|v| v.as_float()) {
        let got = report["score"].as_f64().unwrap_or(f64::NAN);
        check((got - score).abs() < 1e-9, &format!("score should be {score}"))?;
    }
    // Lists: each expected item must be there; an empty list means none at all.
    for key in ["tags", "headers_added", "recipients_after"] {
        if let Some(expected) = strings(case.get(key)) {
            let got = json_strings(&report, key);
            if expected.is_empty() {
                check(got.is_empty(), &format!("{key} should be empty"))?;
            }
            for item in &expected {
                check(got.contains(item), &format!("{key} should contain {item:?}"))?;
            }
            if key == "recipients_after" {
                check(got == expected, &format!("recipients_after should be {expected:?}"))?;
            }
        }
    }
    // Annotations as "key = value", matched by prefix (values may end in details).
    let annotations: Vec<String> = report["annotations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| format!("{} = {}", a[1].as_str().unwrap_or_default(), a[2].as_str().unwrap_or_default()))
        .collect();
    for expected in strings(case.get("annotations")).unwrap_or_default() {
        check(annotations.iter().any(|a| a.starts_with(&expected)), &format!("annotation {expected:?} missing"))?;
    }
    Ok(())
}

#[test]
fn every_plugin_with_fixtures_has_cases() {
    for entry in std::fs::read_dir(plugins_dir()).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("fixtures/EXPECTED.md").exists() {
            assert!(dir.join("fixtures/cases.toml").exists(), "{} has fixtures but no cases.toml", dir.display());
        }
    }
}

#[test]
fn dnsbl_fixtures() {
    run_cases("dnsbl");
}

#[test]
fn helo_checks_fixtures() {
    run_cases("helo-checks");
}

#[test]
fn greylist_fixtures() {
    run_cases("greylist");
}

#[test]
fn rate_limit_fixtures() {
    run_cases("rate-limit");
}

#[test]
fn address_rewrite_fixtures() {
    run_cases("address-rewrite");
}

#[test]
fn spam_score_fixtures() {
    run_cases("spam-score");
}

#[test]
fn attachment_guard_fixtures() {
    run_cases("attachment-guard");
}

#[test]
fn external_tagger_js_fixtures() {
    run_cases("external-tagger-js");
}

#[test]
fn dmarc_policy_fixtures() {
    run_cases("dmarc-policy");
}
