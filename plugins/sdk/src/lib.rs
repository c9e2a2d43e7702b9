//! Write [Sluice](https://github.com/) mail filter plugins in Rust.
//!
//! A plugin is a `cdylib` crate that implements [`Plugin`] (only the hooks it needs;
//! the others let everything through) and names its type in [`export!`]. Its settings
//! come from a parse function turned into a [`PluginConfig`]: read at the first call of
//! an instance, each warning logged once. `plugins/template` is a whole one to copy.
//!
//! ```
//! use sluice_plugin::config::Value;
//! use sluice_plugin::prelude::*;
//!
//! struct Traps(Vec<String>);
//!
//! fn parse(config: &Value) -> (Traps, Vec<String>) {
//!     let (traps, bad): (Vec<String>, Vec<String>) =
//!         config.strings("traps").into_iter().partition(|t| t.contains('@'));
//!     let warnings = bad.iter().map(|t| format!("traps: {t:?} is not an address; left out")).collect();
//!     (Traps(traps), warnings)
//! }
//!
//! static CONFIG: PluginConfig<Traps> = PluginConfig::new(parse);
//!
//! struct NoSpamTraps;
//!
//! impl Plugin for NoSpamTraps {
//!     fn describe() -> PluginInfo {
//!         // Nothing about a session is kept in globals: instances may be reused.
//!         sluice_plugin::plugin_info!(Stage::RcptTo).reusable()
//!     }
//!
//!     fn rcpt_to(_session: &Session, _txn: &Transaction, rcpt: &Recipient) -> RcptToResult {
//!         if CONFIG.get().0.iter().any(|trap| trap.eq_ignore_ascii_case(&rcpt.address)) {
//!             return Outcome::reject(550, "5.1.1", "No such user").tag("spam-trap").into();
//!         }
//!         Outcome::proceed().into()
//!     }
//! }
//!
//! sluice_plugin::export!(NoSpamTraps);
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip2` and point a
//! `[[plugin]]` entry of the server's config at `target/wasm32-wasip2/release/NAME.wasm`.
//! Try it without a server: `sluice plugin test NAME.wasm --message some.eml --from
//! a@example.org --rcpt b@example.com`.
//!
//! The host interfaces ([`log`], [`config`], [`dns`], [`kv`], [`auth`], [`http`]) each need a
//! grant in the plugin's config entry; a plugin that uses one it is not granted is refused
//! at load. On a non-wasm target (for `cargo test` of a plugin's own logic) calling them
//! panics, so keep the logic you test apart from the calls: it takes `&mut impl dns::Dns`,
//! `&mut impl kv::Kv`, `&mut impl auth::Auth` or `&mut impl http::Http` ([`dns::HostDns`],
//! [`kv::HostKv`], [`auth::HostAuth`], `http::HostHttp` with the feature `http` in the
//! plugin), and its tests use `testing` (feature `testing`): config values, `FakeDns`,
//! `MemoryKv`, `FakeAuth`, `FakeHttp`.

pub mod bindings {
    //! The raw bindings generated from `wit/v0.2.0/plugin.wit` (`sluice:plugin@0.2.0`).
    wit_bindgen::generate!({
        path: "../../wit/v0.2.0",
        world: "plugin",
        pub_export_macro: true,
        export_macro_name: "export_world",
        default_bindings_module: "sluice_plugin::bindings",
    });
}

pub mod auth;
pub mod config;
pub mod dns;
pub mod http;
pub mod kv;
pub mod log;
mod outcome;
mod settings;
#[cfg(feature = "testing")]
pub mod testing;

pub use bindings::exports::sluice::plugin::hooks::{
    DataResult, HeaderChange, MailFromResult, PluginInfo, RcptToResult, RecipientAction,
};
pub use bindings::sluice::plugin::message::{Header, Message, Part};
pub use bindings::sluice::plugin::types::{
    Annotation, EsmtpParam, Outcome, Recipient, Reply, Route, Session, Stage, TlsInfo, Transaction, Verdict,
};
pub use settings::{Parse, PluginConfig};

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::{
        DataResult, Header, HeaderChange, MailFromResult, Message, Outcome, Part, Plugin, PluginConfig, PluginInfo,
        RcptToResult, Recipient, RecipientAction, Route, Session, Stage, Transaction, Verdict,
    };
}

/// A plugin: implement the hooks you listed in [`Plugin::describe`]; the defaults let
/// everything through unchanged. Hooks are plain functions: an instance lives for one
/// SMTP session, or for several one after the other if it is reused (see
/// [`PluginInfo::reusable`]), so keep no state you cannot lose.
pub trait Plugin {
    /// Name, version, the stages to be called at, and whether instances may be reused.
    fn describe() -> PluginInfo;

    /// A client connected.
    fn connect(_session: &Session) -> Outcome {
        Outcome::proceed()
    }

    /// The client said HELO or EHLO (`session.helo`).
    fn helo(_session: &Session) -> Outcome {
        Outcome::proceed()
    }

    /// MAIL FROM (`transaction.sender`).
    fn mail_from(_session: &Session, _transaction: &Transaction) -> MailFromResult {
        Outcome::proceed().into()
    }

    /// RCPT TO for `recipient`.
    fn rcpt_to(_session: &Session, _transaction: &Transaction, _recipient: &Recipient) -> RcptToResult {
        Outcome::proceed().into()
    }

    /// The message arrived.
    fn data(_session: &Session, _transaction: &Transaction, _message: &Message) -> DataResult {
        Outcome::proceed().into()
    }
}

/// Fails this call: logs `why` (grant: `log`) and traps, so the server counts a plugin
/// failure (`trap`) and the plugin's `on_error` decides the reply. For a peer that is
/// down or answers nonsense, where neither letting the mail through nor refusing it is
/// the plugin's call to make.
pub fn fail(why: &str) -> ! {
    log::error(why);
    panic!("{why}")
}

impl PluginInfo {
    /// Not reused: each SMTP session gets a fresh instance.
    pub fn new(name: &str, version: &str, stages: &[Stage]) -> PluginInfo {
        PluginInfo {
            name: name.to_string(),
            version: version.to_string(),
            stages: stages.to_vec(),
            reuse_instances: false,
        }
    }

    /// Declares that the plugin keeps nothing about a session or a message in its
    /// globals (its parsed [`PluginConfig`] and warn-once flags are fine), so one
    /// instance may serve several sessions, one after the other. The server's
    /// `reuse_instances` defaults to this; an administrator can still turn it off.
    pub fn reusable(mut self) -> PluginInfo {
        self.reuse_instances = true;
        self
    }
}

/// The [`PluginInfo`] of the crate it is written in: named and versioned after its
/// package (`name` and `version` in `Cargo.toml`), called at the stages listed:
/// `plugin_info!(Stage::Connect, Stage::MailFrom)`.
#[macro_export]
macro_rules! plugin_info {
    ($($stage:expr),* $(,)?) => {
        $crate::PluginInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"), &[$($stage),*])
    };
}

#[doc(hidden)]
pub struct Adapter<T>(core::marker::PhantomData<T>);

impl<T: Plugin> bindings::exports::sluice::plugin::hooks::Guest for Adapter<T> {
    fn describe() -> PluginInfo {
        T::describe()
    }
    fn connect(session: Session) -> Outcome {
        T::connect(&session)
    }
    fn helo(session: Session) -> Outcome {
        T::helo(&session)
    }
    fn mail_from(session: Session, transaction: Transaction) -> MailFromResult {
        T::mail_from(&session, &transaction)
    }
    fn rcpt_to(session: Session, transaction: Transaction, recipient: Recipient) -> RcptToResult {
        T::rcpt_to(&session, &transaction, &recipient)
    }
    fn data(session: Session, transaction: Transaction, message: &Message) -> DataResult {
        T::data(&session, &transaction, message)
    }
}

/// Exports a [`Plugin`] implementation as the component's hooks. Only on wasm32: on
/// the host (`cargo test` of a plugin) there is nothing to export to.
#[macro_export]
macro_rules! export {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        mod __sluice_plugin_export {
            #[allow(unused_imports)]
            use super::*;
            type Exported = $crate::Adapter<$plugin>;
            $crate::bindings::export_world!(Exported with_types_in $crate::bindings);
        }
    };
}

impl Message {
    /// The first value of header `name`, if present.
    pub fn first_header(&self, name: &str) -> Option<String> {
        self.header(name).into_iter().next()
    }

    /// Reads the body from the start, at most `limit` bytes, in host-sized chunks.
    pub fn read_body_prefix(&self, limit: u64) -> Vec<u8> {
        read_prefix(limit, |offset, max| self.read_body(offset, max))
    }

    /// Reads a whole MIME part's decoded content, at most `limit` bytes.
    pub fn read_part_prefix(&self, index: u32, limit: u64) -> Vec<u8> {
        read_prefix(limit, |offset, max| self.read_part(index, offset, max))
    }
}

/// Largest piece the host hands over in one read.
const READ_CHUNK: u64 = 64 * 1024;

/// Up to `limit` bytes read in chunks from offset 0 until an empty one. The first
/// chunk is kept as the buffer (no copy); the buffer grows once to what is left.
fn read_prefix(limit: u64, mut read: impl FnMut(u64, u32) -> Vec<u8>) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::new();
    while (out.len() as u64) < limit {
        let want = (limit - out.len() as u64).min(READ_CHUNK) as u32;
        let chunk = read(out.len() as u64, want);
        if chunk.is_empty() {
            break;
        }
        if out.is_empty() {
            out = chunk;
            if (out.len() as u64) < limit && out.len() as u64 == READ_CHUNK {
                // More may follow: make room for it at once rather than doubling.
                out.reserve((limit - out.len() as u64).min(16 * READ_CHUNK) as usize);
            }
        } else {
            out.extend_from_slice(&chunk);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::read_prefix;

    #[test]
    fn prefixes_are_read_in_chunks() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let read = |offset: u64, max: u32| {
            let start = (offset as usize).min(data.len());
            data[start..(start + max as usize).min(data.len())].to_vec()
        };
        assert_eq!(read_prefix(10, read), data[..10]);
        assert_eq!(read_prefix(150_000, read), data[..150_000]);
        assert_eq!(read_prefix(1 << 20, read), data);
        assert!(read_prefix(0, read).is_empty());
    }
}
