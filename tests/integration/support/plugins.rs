//! The plugins the tests load, built once per test run from `plugins/`.

use std::path::PathBuf;
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

/// A `[[plugin]]` entry for the testing plugin with the given `[plugin.config]` body.
pub fn testing(name: &str, extra_keys: &str, config: &str) -> String {
    format!(
        "[[plugin]]\nname = \"{name}\"\npath = \"{}\"\ngrants = [\"config\", \"log\", \"dns\", \"kv\"]\n{extra_keys}\n[plugin.config]\n{config}\n",
        wasm("testing").display()
    )
}
