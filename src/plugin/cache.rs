//! Compiled plugins cached on disk, keyed by the component's SHA-256 and the engine's
//! compatibility hash, so a restart does not recompile unchanged plugins.
//!
//! Loading a cached artifact runs native code produced by an earlier compilation, so
//! the cache directory must be writable by the server's user only.

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::Path;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::fsync;

fn key(engine: &Engine, wasm: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, wasm);
    let mut hex = String::with_capacity(64 + 17);
    for byte in digest.as_ref() {
        hex.push_str(&format!("{byte:02x}"));
    }
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{hex}-{:016x}", hasher.finish())
}

/// Compiles `wasm`, or loads it from `cache_dir` if it was compiled before by a
/// compatible engine. Cache failures only cost a recompilation.
pub fn load_component(engine: &Engine, wasm: &[u8], cache_dir: &Path) -> wasmtime::Result<Component> {
    let path = cache_dir.join(format!("{}.cwasm", key(engine, wasm)));
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` of an engine with the
        // same compatibility hash, into a directory only the server writes.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(error) => tracing::warn!(%error, path = %path.display(), "ignoring unusable cached plugin"),
        }
    }
    let component = Component::new(engine, wasm)?;
    if let Err(error) = store(&component, cache_dir, &path) {
        tracing::warn!(%error, dir = %cache_dir.display(), "cannot cache compiled plugin");
    }
    Ok(component)
}

fn store(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    fsync::create_dir_all_durable(dir)?;
    let bytes = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    // Synced before the rename: after a power cut the name must not point at a torn
    // artifact, whose native code would be loaded.
    let mut file = fs::File::create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    fsync::sync_dir(dir)?;
    Ok(())
}
