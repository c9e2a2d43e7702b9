//! The example configurations pass `sluice check-config`: `examples/sluice.toml` where
//! it is, the production examples in the /etc/sluice layout their comments describe
//! (certificates, plugins and the smarthost secret beside the file).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::plugins::{compile_cache, external_tagger_js, wasm};
use crate::support::server::BIN;
use crate::support::tls::make_pki;

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples")
}

fn check_config(path: &Path) {
    let out = Command::new(BIN).arg("check-config").arg(path).output().unwrap();
    assert!(out.status.success(), "{} fails check-config:\n{}", path.display(), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": ok\n"));
}

/// A copy of `example` in a directory laid out as /etc/sluice would be.
fn installed(example: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path();
    std::fs::create_dir_all(etc.join("tls")).unwrap();
    std::fs::create_dir_all(etc.join("plugins")).unwrap();
    let pki = make_pki(&["mx1.example.com", "relay.office.example"]);
    std::fs::write(etc.join("tls/fullchain.pem"), &pki.cert_pem).unwrap();
    std::fs::write(etc.join("tls/privkey.pem"), &pki.key_pem).unwrap();
    std::fs::write(etc.join("smarthost.secret"), "correct horse battery staple\n").unwrap();
    std::fs::copy(examples_dir().join("recipients.txt"), etc.join("recipients.txt")).unwrap();
    for plugin in [
        "rate_limit",
        "dnsbl",
        "helo_checks",
        "greylist",
        "address_rewrite",
        "attachment_guard",
        "spam_score",
        "dmarc_policy",
        "rspamd",
    ] {
        std::os::unix::fs::symlink(wasm(plugin), etc.join(format!("plugins/{plugin}.wasm"))).unwrap();
    }
    std::os::unix::fs::symlink(external_tagger_js(), etc.join("plugins/external-tagger.wasm")).unwrap();
    let path = etc.join("sluice.toml");
    let mut text = std::fs::read_to_string(examples_dir().join(example)).unwrap();
    // Compiled plugins go to the tests' shared cache instead of /var/cache/sluice.
    text = text.replace("\"/var/cache/sluice\"", &format!("{:?}", compile_cache()));
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn the_run_example_passes_check_config() {
    wasm("noop"); // builds the plugins it names
    check_config(&examples_dir().join("sluice.toml"));
}

#[test]
fn the_filtering_relay_example_passes_check_config() {
    let (_dir, path) = installed("filtering-relay.toml");
    check_config(&path);
}

#[test]
fn the_outbound_smarthost_example_passes_check_config() {
    let (dir, path) = installed("outbound-smarthost.toml");
    check_config(&path);
    // Its secret is read at check time: a missing one is reported.
    std::fs::remove_file(dir.path().join("smarthost.secret")).unwrap();
    let out = Command::new(BIN).arg("check-config").arg(&path).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("smarthost.secret"), "{out:?}");
}

#[test]
fn every_example_is_checked() {
    let mut examples: Vec<String> = std::fs::read_dir(examples_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".toml"))
        .collect();
    examples.sort();
    assert_eq!(examples, ["filtering-relay.toml", "outbound-smarthost.toml", "sluice.toml"]);
}
