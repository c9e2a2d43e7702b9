//! Loading a plugin: read, compile (or take from the cache), tell which interface
//! version it targets, check its imports against that version and its grants,
//! pre-instantiate, and ask it to describe itself.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;
use wasmtime::component::{Component, Linker};

use super::bindings::sluice::plugin::types::Stage as WitStage;
use super::cache;
use super::engine::PluginEngine;
use super::hooks::HooksPre;
use super::idle::IdleInstances;
use super::instance::Instance;
use super::shared::{LogLimiter, PluginShared, Services};
use super::stage::{Stage, StageSet};
use super::state::PluginState;
use super::version::{Interface, Line};
use crate::config::{Grant, PluginConfig, Quotas};

/// A plugin ready to be instantiated.
pub struct LoadedPlugin {
    pub shared: Arc<PluginShared>,
    pub pre: HooksPre,
    /// The `sluice:plugin` version it targets.
    pub interface: Interface,
    pub version: String,
    /// The name the plugin gives itself (the config's name is the one used).
    pub declared_name: String,
    pub stages: StageSet,
    /// Whether its instances serve later sessions, and who decided.
    pub reuse: Reuse,
    /// Instances waiting for their next session (when reused).
    pub idle: IdleInstances,
}

/// A load failure, and which part of the plugin's config entry it is about.
#[derive(Debug)]
pub struct LoadError {
    pub at: ErrorSite,
    pub message: String,
}

/// Whether a plugin's instances serve later sessions: the admin's `reuse_instances`,
/// or else what the plugin declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    Configured(bool),
    Declared(bool),
}

impl Reuse {
    pub fn enabled(self) -> bool {
        matches!(self, Reuse::Configured(true) | Reuse::Declared(true))
    }

    /// Such as "reused (declared by the plugin)".
    pub fn describe(self) -> String {
        let (on, by) = match self {
            Reuse::Configured(on) => (on, "reuse_instances"),
            Reuse::Declared(on) => (on, "declared by the plugin"),
        };
        format!("{} ({by})", if on { "reused" } else { "fresh per session" })
    }
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

/// The one WASI interface a grant unlocks (`http`), with the types it needs.
const WASI_HTTP: &[&str] = &["wasi:http/outgoing-handler", "wasi:http/types"];

/// Checks one import of a component whose hooks are of `line`; `Err` says why it is
/// refused.
fn check_import(name: &str, line: Line, grants: &[Grant]) -> Result<(), (ErrorSite, String)> {
    let (interface, version) = name.split_once('@').unwrap_or((name, ""));
    if let Some(ours) = interface.strip_prefix("sluice:plugin/") {
        if !version.starts_with(line.prefix()) {
            let hooks = line.prefix().trim_end_matches('.');
            return Err((ErrorSite::Path, format!("imports {name} but exports sluice:plugin/hooks@{hooks}")));
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
    if WASI_HTTP.contains(&interface) && version.starts_with("0.2.") {
        if grants.contains(&Grant::Http) {
            return Ok(());
        }
        return Err((ErrorSite::Grants, format!("imports {name} but is not granted \"http\"")));
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
    let interface = Interface::of(&component, engine).map_err(|why| error(ErrorSite::Path, name, why))?;
    let grants = config.granted();
    check_imports(&component, engine, interface.line, &grants).map_err(|(at, why)| error(at, name, why))?;
    let pre =
        ctx.linker.instantiate_pre(&component).and_then(|pre| HooksPre::new(interface.line, pre)).map_err(|e| {
            error(ErrorSite::Path, name, format!("does not fit the {interface} world: {}", root_cause(&e)))
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
        next_hops: config.next_hops.clone(),
        quotas: ctx.quotas,
        quota_hits: Default::default(),
        http: config.http.as_ref().map(|http| Arc::new(http.get_ref().clone())),
    });
    let mut instance = Instance::new(ctx.engine, &pre, &shared, ctx.services, ctx.slots)
        .await
        .map_err(|f| error(ErrorSite::Path, name, format!("failed to start: {f}")))?;
    let info = instance
        .call(async |hooks, store| hooks.describe(store).await)
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
    let reuse = config.reuse_instances.map_or(Reuse::Declared(info.reuse_instances), Reuse::Configured);
    let idle = IdleInstances::new(&shared, reuse.enabled(), ctx.slots.available_permits());
    // The instance that answered `describe` is as good as a fresh one.
    idle.give(instance);
    Ok(LoadedPlugin {
        shared,
        pre,
        interface,
        version: info.version,
        declared_name: info.name,
        stages: stages.collect(),
        reuse,
        idle,
    })
}

fn check_imports(
    component: &Component,
    engine: &wasmtime::Engine,
    line: Line,
    grants: &[Grant],
) -> Result<(), (ErrorSite, String)> {
    for (name, _) in component.component_type().imports(engine) {
        check_import(name, line, grants)?;
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
        let check = |name, grants: &[Grant]| check_import(name, Line::V0_1, grants);
        assert!(check("sluice:plugin/types@0.1.0", &[]).is_ok());
        assert!(check("sluice:plugin/message@0.1.0", &[]).is_ok());
        assert!(check("sluice:plugin/dns@0.1.0", &dns).is_ok());
        assert_eq!(check("sluice:plugin/kv@0.1.0", &dns).unwrap_err().0, ErrorSite::Grants);
        assert!(check("wasi:io/streams@0.2.0", &[]).is_ok());
        assert!(check("wasi:clocks/wall-clock@0.2.6", &[]).is_ok());
        assert!(check("wasi:filesystem/types@0.2.0", &[]).is_err());
        assert!(check("wasi:filesystem/preopens@0.2.0", &[]).is_err());
        assert!(check("wasi:sockets/tcp@0.2.0", &[]).is_err());
        let (at, why) = check("wasi:http/outgoing-handler@0.2.0", &[]).unwrap_err();
        assert_eq!(at, ErrorSite::Grants);
        assert!(why.contains("not granted \"http\""), "{why}");
        assert!(check("wasi:http/outgoing-handler@0.2.6", &[Grant::Http]).is_ok());
        assert!(check("wasi:http/types@0.2.0", &[Grant::Http]).is_ok());
        assert!(check("wasi:http/incoming-handler@0.2.0", &[Grant::Http]).is_err(), "no serving");
        assert!(check("wasi:http/outgoing-handler@0.3.0", &[Grant::Http]).is_err());
        assert!(check("wasi:sockets/tcp@0.2.0", &[Grant::Http]).is_err());
        assert!(check("evil:host/exec", &[]).is_err());
    }

    #[test]
    fn imports_are_of_the_line_the_hooks_are() {
        let dns = [Grant::Dns];
        assert!(check_import("sluice:plugin/dns@0.2.0", Line::V0_2, &dns).is_ok());
        assert!(check_import("sluice:plugin/dns@0.2.4", Line::V0_2, &dns).is_ok(), "any 0.2.x");
        assert_eq!(check_import("sluice:plugin/dns@0.2.0", Line::V0_1, &dns).unwrap_err().0, ErrorSite::Path);
        let (_, why) = check_import("sluice:plugin/kv@0.1.0", Line::V0_2, &[Grant::Kv]).unwrap_err();
        assert!(why.contains("exports sluice:plugin/hooks@0.2"), "{why}");
    }
}
