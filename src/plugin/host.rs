//! The plugin host: the engine, the loaded plugin chain in configuration order, and the
//! services plugins share.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::engine::PluginEngine;
use super::imports::linker;
use super::loader::{ErrorSite, LoadContext, LoadedPlugin, load};
use super::shared::Services;
use super::stage::Stage;
use crate::config::{Config, ConfigError, Grant, PluginConfig, PluginsConfig};
use crate::dns::SharedResolver;
use crate::kv::KvStore;

pub struct PluginHost {
    engine: Option<PluginEngine>,
    plugins: Vec<LoadedPlugin>,
    /// For each stage (by `Stage as usize`), the indexes of the plugins hooking it.
    hooked: [Box<[usize]>; 5],
    services: Arc<Services>,
    slots: Arc<Semaphore>,
}

impl PluginHost {
    /// A host without plugins: every stage passes at no cost.
    pub fn empty() -> PluginHost {
        PluginHost {
            engine: None,
            plugins: Vec::new(),
            hooked: Default::default(),
            services: Arc::new(Services { resolver: None, kv: Arc::new(KvStore::memory()) }),
            slots: Arc::new(Semaphore::new(0)),
        }
    }

    /// Loads the configured chain. Errors point at the plugin's entry in the config.
    pub async fn load(config: &Config, kv: Arc<KvStore>, resolver: SharedResolver) -> Result<PluginHost, ConfigError> {
        if config.plugin.is_empty() {
            return Ok(PluginHost::empty());
        }
        let origin = &config.origin;
        // HTTP requests resolve names through the same resolver.
        let wants_dns = config.plugin.iter().any(|p| p.granted().iter().any(|g| matches!(g, Grant::Dns | Grant::Http)));
        let resolver = wants_dns.then_some(resolver);
        let cache_dir = config.plugins.cache_dir.clone().unwrap_or_else(|| config.queue.path.join("plugin-cache"));
        let mut host = PluginHost::start(config.plugins.max_instances, &config.plugin, Services { resolver, kv })
            .map_err(|e| ConfigError::without_position(&origin.file, format!("cannot start the plugin engine: {e}")))?;
        for plugin in &config.plugin {
            let loaded = host.load_one(plugin, &cache_dir, &config.plugins).await.map_err(|e| {
                let span_of = |site| match site {
                    ErrorSite::Path => plugin.path.span(),
                    ErrorSite::Grants if !plugin.grants.span().is_empty() => plugin.grants.span(),
                    _ => plugin.name.span(),
                };
                ConfigError::at(&origin.file, &origin.text, Some(span_of(e.at)), e.message)
            })?;
            tracing::info!(
                plugin = %plugin.name.get_ref(),
                version = %loaded.version,
                interface = %loaded.interface,
                stages = ?loaded.stages.names(),
                may = %plugin.permissions(&config.plugins),
                reuse = %loaded.reuse.describe(),
                "plugin loaded"
            );
            if let Some(notice) = loaded.interface.line.notice() {
                tracing::warn!(plugin = %plugin.name.get_ref(), interface = %loaded.interface, "{notice}");
            }
            host.push(loaded);
        }
        Ok(host)
    }

    /// An engine and services sized for `plugins`, with nothing loaded yet.
    pub fn start(max_instances: u32, plugins: &[PluginConfig], services: Services) -> anyhow::Result<PluginHost> {
        let max_memory = plugins.iter().map(|p| p.memory.bytes()).max().unwrap_or(32 << 20);
        Ok(PluginHost {
            engine: Some(PluginEngine::new(max_instances.max(1), max_memory)?),
            plugins: Vec::new(),
            hooked: Default::default(),
            services: Arc::new(services),
            slots: Arc::new(Semaphore::new(max_instances.max(1) as usize)),
        })
    }

    /// Loads one plugin into this host (used by `load` and the offline runner).
    pub async fn load_one(
        &mut self,
        plugin: &PluginConfig,
        cache_dir: &PathBuf,
        settings: &PluginsConfig,
    ) -> Result<LoadedPlugin, super::loader::LoadError> {
        let engine = self
            .engine
            .as_ref()
            .ok_or_else(|| super::loader::LoadError { at: ErrorSite::Path, message: "no plugin engine".into() })?;
        let linker = linker(&engine.engine).map_err(|e| super::loader::LoadError {
            at: ErrorSite::Path,
            message: format!("cannot link host interfaces: {e}"),
        })?;
        let ctx = LoadContext {
            engine,
            linker: &linker,
            services: &self.services,
            slots: &self.slots,
            cache_dir,
            log_rate: settings.log_rate,
            quotas: plugin.quotas(settings),
        };
        load(&ctx, plugin).await
    }

    pub fn push(&mut self, plugin: LoadedPlugin) {
        self.plugins.push(plugin);
        for stage in Stage::ALL {
            self.hooked[stage as usize] =
                self.plugins.iter().enumerate().filter(|(_, p)| p.stages.contains(stage)).map(|(i, _)| i).collect();
        }
    }

    pub(super) fn hooked(&self, stage: Stage) -> &[usize] {
        &self.hooked[stage as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// Whether any plugin hooks `stage` (so callers can skip building its input).
    pub fn hooks(&self, stage: Stage) -> bool {
        !self.hooked[stage as usize].is_empty()
    }

    pub(super) fn engine(&self) -> Option<&PluginEngine> {
        self.engine.as_ref()
    }

    pub(super) fn services(&self) -> &Arc<Services> {
        &self.services
    }

    pub(super) fn slots(&self) -> &Arc<Semaphore> {
        &self.slots
    }
}
