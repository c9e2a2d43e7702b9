//! The host side of the interfaces plugins import, and the linker that offers them.

mod config;
mod dns;
mod http;
mod kv;
mod log;
mod message;
mod v0_2;

use wasmtime::component::{HasData, HasSelf, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

pub use http::HttpHooks;

use super::bindings;
use super::bindings::sluice::plugin::types;
use super::state::PluginState;

impl types::Host for PluginState {}

struct Io;

impl HasData for Io {
    type Data<'a> = &'a mut ResourceTable;
}

/// A linker with the `sluice:plugin` host interfaces of every version served and the WASI subset a standard
/// library needs (io, cli, clocks, random), and `wasi:http` (for plugins granted
/// `http`). Filesystem and sockets are deliberately absent, so a plugin that imports
/// them cannot even be instantiated.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<PluginState>> {
    use wasmtime_wasi::p2::bindings::{cli, clocks, random};
    use wasmtime_wasi_io::bindings::wasi::io;

    let mut linker = Linker::new(engine);
    let l = &mut linker;
    io::error::add_to_linker::<PluginState, Io>(l, |s| &mut s.table)?;
    io::poll::add_to_linker::<PluginState, Io>(l, |s| &mut s.table)?;
    io::streams::add_to_linker::<PluginState, Io>(l, |s| &mut s.table)?;
    clocks::wall_clock::add_to_linker::<PluginState, WasiClocks>(l, PluginState::clocks)?;
    clocks::monotonic_clock::add_to_linker::<PluginState, WasiClocks>(l, PluginState::clocks)?;
    random::random::add_to_linker::<PluginState, WasiRandom>(l, PluginState::random)?;
    random::insecure::add_to_linker::<PluginState, WasiRandom>(l, PluginState::random)?;
    random::insecure_seed::add_to_linker::<PluginState, WasiRandom>(l, PluginState::random)?;
    cli::exit::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::environment::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::stdin::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::stdout::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::stderr::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_input::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_output::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stdin::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stdout::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    cli::terminal_stderr::add_to_linker::<PluginState, WasiCli>(l, PluginState::cli)?;
    // Linked for every plugin; the loader refuses the import without the `http` grant.
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(l)?;
    bindings::v0_1::Plugin::add_to_linker::<PluginState, HasSelf<PluginState>>(l, |s| s)?;
    bindings::v0_2::Plugin::add_to_linker::<PluginState, HasSelf<PluginState>>(l, |s| s)?;
    Ok(linker)
}
