//! `wasi:http` for plugins granted `http` (the loader refuses the import to others):
//! wasmtime-wasi-http's types and handler, with our own sending (`plugin::http`).

use std::sync::Arc;

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use crate::dns::SharedResolver;
use crate::plugin::http::Send;
use crate::plugin::shared::PluginShared;
use crate::plugin::state::PluginState;

/// What sending a request needs from the store, copied when the plugin makes one.
pub struct HttpHooks {
    plugin: Arc<PluginShared>,
    resolver: Option<SharedResolver>,
    call_deadline: tokio::time::Instant,
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
    ) -> Box<dyn Future<Output = Result<crate::plugin::http::Sent, wasmtime_wasi_http::Error>> + std::marker::Send>
    {
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

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http_hooks.call_deadline = self.host_call_deadline();
        WasiHttpCtxView { ctx: &mut self.http_ctx, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}
