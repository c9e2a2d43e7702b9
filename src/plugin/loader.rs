//! Loading a plugin: read, compile (or take from the cache), check its imports
//! against its grants, pre-instantiate, and ask it to describe itself.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};

use super::bindings::PluginPre;
use super::bindings::exports::sluice::plugin::hooks::PluginInfo as WitInfo;
use super::bindings::sluice::plugin::types::Stage as WitStage;
use super::cache;
use super::engine::PluginEngine;
use super::idle::IdleInstances;
use super::instance::Instance;
use super::shared::{LogLimiter, PluginShared, Services};
use super::stage::{Stage, StageSet};
use super::state::PluginState;
use crate::config::{Grant, PluginConfig, Quotas};

/// A plugin ready to be instantiated.
pub struct LoadedPlugin {
    pub shared: Arc<PluginShared>,
    pub pre: PluginPre<PluginState>,
    pub version: String,
    /// The name the plugin gives itself (the config's name is the one used).
    pub declared_name: String,
    pub stages: StageSet,
    /// Instances waiting for their next session (`reuse_instances` only).
    pub idle: IdleInstances,
}

/// A load failure, and which part of the plugin's config entry it is about.
#[derive(Debug)]
pub struct LoadError {
    pub at: ErrorSite,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSite {
    Path,
    Grants,
    Name,
}

fn error(at: ErrorSite, plugin: &str, message: impl std::fmt::Display) -> LoadError {
    LoadError { at, message: format!("plugin {plugin:?}: {message}") }
}

/// The WASI interfaces a standard library needs, and nothing else.
const WASI_ALLOWED: &[&str] = &[
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
];

/// Checks one import; `Err` says why it is refused.
fn check_import(name: &str, grants: &[Grant]) -> Result<(), (ErrorSite, String)> {
    let (interface, version) = name.split_once('@').unwrap_or((name, ""));
    if let Some(ours) = interface.strip_prefix("sluice:plugin/") {
        if !version.starts_with("0.1.") {
            return Err((ErrorSite::Path, format!("was built for {name}; this server provides sluice:plugin@0.1")));
        }
        let needed = match ours {
            "types" | "message" => return Ok(()),
            other => Grant::parse(other),
        };
        return match needed {
            Some(grant) if grants.contains(&grant) => Ok(()),
            Some(grant) => Err((ErrorSite::Grants, format!("imports {name} but is not granted {:?}", grant.name()))),
            None => Err((ErrorSite::Path, format!("imports {name}, which this server does not provide"))),
        };
    }
    if WASI_ALLOWED.contains(&interface) && version.starts_with("0.2.") {
        return Ok(());
    }
    Err((
        ErrorSite::Path,
        format!(
            "imports {name}, which plugins never get (no filesystem, no sockets; only io, cli, clocks and random from WASI)"
        ),
    ))
}

/// Everything loading needs from the host.
pub struct LoadContext<'a> {
    pub engine: &'a PluginEngine,
    pub linker: &'a Linker<PluginState>,
    pub services: &'a Arc<Services>,
    pub slots: &'a Arc<Semaphore>,
    pub cache_dir: &'a Path,
    pub log_rate: u32,
    pub quotas: Quotas,
}

pub async fn load(ctx: &LoadContext<'_>, config: &PluginConfig) -> Result<LoadedPlugin, LoadError> {
    let name = config.name.get_ref().as_str();
    let path = config.path.get_ref();
    let wasm = std::fs::read(path)
        .map_err(|e| error(ErrorSite::Path, name, format!("cannot read {}: {e}", path.display())))?;
    let engine = &ctx.engine.engine;
    let component = cache::load_component(engine, &wasm, ctx.cache_dir).map_err(|e| {
        error(
            ErrorSite::Path,
            name,
            format!("{} is not a usable WebAssembly component: {}", path.display(), root_cause(&e)),
        )
    })?;
    let grants = config.granted();
    check_imports(&component, engine, &grants).map_err(|(at, why)| error(at, name, why))?;
    let pre = ctx.linker.instantiate_pre(&component).and_then(PluginPre::new).map_err(|e| {
        error(ErrorSite::Path, name, format!("does not fit the sluice:plugin world: {}", root_cause(&e)))
    })?;
    let shared = Arc::new(PluginShared {
        name: name.to_string(),
        grants,
        on_error: config.on_error,
        cpu_time: config.cpu_time.get(),
        wall_time: config.wall_time.get(),
        memory_limit: usize::try_from(config.memory.bytes()).unwrap_or(usize::MAX),
        config: config.config.clone(),
        log_limiter: LogLimiter::new(ctx.log_rate),
        peak_memory: Default::default(),
        reuse_instances: config.reuse_instances,
        next_hops: config.next_hops.clone(),
        quotas: ctx.quotas,
        quota_hits: Default::default(),
    });
    let mut instance = Instance::new(ctx.engine, &pre, &shared, ctx.services, ctx.slots)
        .await
        .map_err(|f| error(ErrorSite::Path, name, format!("failed to start: {f}")))?;
    let info: WitInfo = instance
        .call(async |plugin, store| plugin.sluice_plugin_hooks().call_describe(store).await)
        .await
        .map_err(|f| error(ErrorSite::Path, name, format!("describe failed: {f}")))?;
    if info.name.len() > 64 || info.version.len() > 64 {
        return Err(error(ErrorSite::Path, name, "describe returned an overlong name or version"));
    }
    let stages = info.stages.iter().map(|s| match s {
        WitStage::Connect => Stage::Connect,
        WitStage::Helo => Stage::Helo,
        WitStage::MailFrom => Stage::MailFrom,
        WitStage::RcptTo => Stage::RcptTo,
        WitStage::Data => Stage::Data,
    });
    let idle = IdleInstances::new(&shared, ctx.slots.available_permits());
    // The instance that answered `describe` is as good as a fresh one.
    idle.give(instance);
    Ok(LoadedPlugin { shared, pre, version: info.version, declared_name: info.name, stages: stages.collect(), idle })
}

fn check_imports(
    component: &Component,
    engine: &wasmtime::Engine,
    grants: &[Grant],
) -> Result<(), (ErrorSite, String)> {
    for (name, _) in component.component_type().imports(engine) {
        check_import(name, grants)?;
    }
    Ok(())
}

fn root_cause(error: &wasmtime::Error) -> String {
    let text = error.root_cause().to_string().split_whitespace().collect::<Vec<_>>().join(" ");
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_need_grants_and_only_the_wasi_subset_is_allowed() {
        let dns = [Grant::Dns];
        assert!(check_import("sluice:plugin/types@0.1.0", &[]).is_ok());
        assert!(check_import("sluice:plugin/message@0.1.0", &[]).is_ok());
        assert!(check_import("sluice:plugin/dns@0.1.0", &dns).is_ok());
        assert_eq!(check_import("sluice:plugin/kv@0.1.0", &dns).unwrap_err().0, ErrorSite::Grants);
        assert_eq!(check_import("sluice:plugin/dns@0.2.0", &dns).unwrap_err().0, ErrorSite::Path);
        assert!(check_import("wasi:io/streams@0.2.0", &[]).is_ok());
        assert!(check_import("wasi:clocks/wall-clock@0.2.6", &[]).is_ok());
        assert!(check_import("wasi:filesystem/types@0.2.0", &[]).is_err());
        assert!(check_import("wasi:filesystem/preopens@0.2.0", &[]).is_err());
        assert!(check_import("wasi:sockets/tcp@0.2.0", &[]).is_err());
        assert!(check_import("wasi:http/outgoing-handler@0.2.0", &[]).is_err());
        assert!(check_import("evil:host/exec", &[]).is_err());
    }
}
