//! `wasi:http` for plugins granted `http` (the loader refuses the import to others):
//! wasmtime-wasi-http's types and handler, sending through `plugin::http`.

use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::plugin::state::PluginState;

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.http_hooks.call_deadline = self.host_call_deadline();
        WasiHttpCtxView { ctx: &mut self.http_ctx, table: &mut self.table, hooks: &mut self.http_hooks }
    }
}
