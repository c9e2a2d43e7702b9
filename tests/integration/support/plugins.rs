//! The plugins the tests load, built once per test run from `plugins/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Path of the built component `name` (a crate in `plugins/`).
pub fn wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins");
        let out = Command::new("cargo")
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&root)
            .output()
            .expect("run cargo for the plugins");
        assert!(out.status.success(), "building plugins failed:\n{}", String::from_utf8_lossy(&out.stderr));
        root.join("target/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A `[[plugin]]` entry for the testing plugin with the given `[plugin.config]` body,
/// granted the host interfaces (`config`, `log`, `dns`, `kv`) and no effects.
pub fn testing(name: &str, extra_keys: &str, config: &str) -> String {
    testing_at(&wasm("testing"), name, &[], extra_keys, config)
}

/// `testing`, granted these effects (`recipients`, `route`, `body`) too.
pub fn testing_granted(name: &str, effects: &[&str], extra_keys: &str, config: &str) -> String {
    testing_at(&wasm("testing"), name, effects, extra_keys, config)
}

/// [`testing`] with the testing plugin built at `path` (such as a [`wit_0_1_0`] fixture),
/// granted `effects` besides config, log, dns and kv.
pub fn testing_at(path: &Path, name: &str, effects: &[&str], extra_keys: &str, config: &str) -> String {
    let effects: String = effects.iter().map(|e| format!(", \"{e}\"")).collect();
    format!(
        "[[plugin]]
name = \"{name}\"
path = \"{}\"
grants = [\"config\", \"log\", \"dns\", \"kv\"{effects}]
{extra_keys}
[plugin.config]
{config}
",
        path.display()
    )
}

/// A committed component built from the frozen sluice:plugin@0.1.0 WIT
/// (`tests/fixtures/wit-0.1.0/`): `testing` or `noop`.
pub fn wit_0_1_0(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wit-0.1.0").join(format!("{name}.wasm"))
}

/// The JavaScript example plugin, built once per test run with componentize-js
/// (`plugins/external-tagger-js/build.sh`, which needs node and npm; `scripts/test`
/// installs them).
pub fn external_tagger_js() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugins/external-tagger-js");
            let out = Command::new("bash").arg(dir.join("build.sh")).output().expect("run build.sh");
            assert!(
                out.status.success(),
                "building the JavaScript plugin failed (node and npm installed?):\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            dir.join("external-tagger.wasm")
        })
        .clone()
}

/// Compiled plugins shared by the tests that run `sluice plugin test`, so each
/// component is compiled once per test run rather than once per case.
pub fn compile_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache")
}
