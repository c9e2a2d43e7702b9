//! What sending a request needs from a plugin's store, handed to wasmtime-wasi-http
//! as its hooks: our sending instead of its default.

use std::sync::Arc;

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

use super::send::{Send, Sent};
use crate::dns::SharedResolver;
use crate::plugin::shared::PluginShared;

pub struct HttpHooks {
    plugin: Arc<PluginShared>,
    resolver: Option<SharedResolver>,
    /// Refreshed from the store before each use (`PluginState::http`).
    pub call_deadline: tokio::time::Instant,
}

impl HttpHooks {
    pub fn new(plugin: Arc<PluginShared>, resolver: Option<SharedResolver>) -> HttpHooks {
        HttpHooks { plugin, resolver, call_deadline: tokio::time::Instant::now() }
    }
}

type Io = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + std::marker::Send>;

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Io,
    ) -> Box<dyn Future<Output = Result<Sent, wasmtime_wasi_http::Error>> + std::marker::Send> {
        // The plugin's request-options may not stretch `http.timeout`; it is the bound.
        let send = Send {
            plugin: self.plugin.name.clone(),
            http: self.plugin.http.clone(),
            resolver: self.resolver.clone(),
            call_deadline: self.call_deadline,
        };
        Box::new(send.send(request))
    }
}
