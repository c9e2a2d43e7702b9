//! A component's hooks, whichever version line it targets: each call goes to that
//! version's bindings and comes back in the host's types (see `bindings`), so the
//! chain runs every plugin the same way.

use wasmtime::Store;
use wasmtime::component::{InstancePre, Resource};

use super::bindings::exports::sluice::plugin::hooks::{DataResult, MailFromResult, RcptToResult};
use super::bindings::sluice::plugin::types::{Outcome, Recipient, Session, Transaction};
use super::bindings::v0_2::exports::sluice::plugin::hooks::PluginInfo;
use super::bindings::{v0_1, v0_2};
use super::message::MessageView;
use super::state::PluginState;
use super::version::Line;

/// A component checked against its line's world, ready to instantiate.
pub enum HooksPre {
    V0_1(v0_1::PluginPre<PluginState>),
    V0_2(v0_2::PluginPre<PluginState>),
}

/// An instantiated component's exports.
pub enum Hooks {
    V0_1(v0_1::Plugin),
    V0_2(v0_2::Plugin),
}

impl HooksPre {
    pub fn new(line: Line, pre: InstancePre<PluginState>) -> wasmtime::Result<HooksPre> {
        Ok(match line {
            Line::V0_1 => HooksPre::V0_1(v0_1::PluginPre::new(pre)?),
            Line::V0_2 => HooksPre::V0_2(v0_2::PluginPre::new(pre)?),
        })
    }

    pub async fn instantiate(&self, store: &mut Store<PluginState>) -> wasmtime::Result<Hooks> {
        Ok(match self {
            HooksPre::V0_1(pre) => Hooks::V0_1(pre.instantiate_async(store).await?),
            HooksPre::V0_2(pre) => Hooks::V0_2(pre.instantiate_async(store).await?),
        })
    }
}

/// Calls hook `$call` of whichever version, converting its result into the host's
/// types (for the version they come from, `into` is the identity).
macro_rules! call {
    ($hooks:expr, $call:ident($($arg:expr),*)) => {
        match $hooks {
            Hooks::V0_1(p) => p.sluice_plugin_hooks().$call($($arg),*).await.map(Into::into),
            Hooks::V0_2(p) => p.sluice_plugin_hooks().$call($($arg),*).await.map(Into::into),
        }
    };
}

type Call<T> = wasmtime::Result<T>;

impl Hooks {
    /// What the plugin says about itself (a 0.1.0 plugin never declares reuse).
    pub async fn describe(&self, store: &mut Store<PluginState>) -> Call<PluginInfo> {
        call!(self, call_describe(store))
    }

    pub async fn connect(&self, store: &mut Store<PluginState>, session: &Session) -> Call<Outcome> {
        call!(self, call_connect(store, session))
    }

    pub async fn helo(&self, store: &mut Store<PluginState>, session: &Session) -> Call<Outcome> {
        call!(self, call_helo(store, session))
    }

    pub async fn mail_from(
        &self,
        store: &mut Store<PluginState>,
        s: &Session,
        t: &Transaction,
    ) -> Call<MailFromResult> {
        call!(self, call_mail_from(store, s, t))
    }

    pub async fn rcpt_to(
        &self,
        store: &mut Store<PluginState>,
        session: &Session,
        txn: &Transaction,
        recipient: &Recipient,
    ) -> Call<RcptToResult> {
        call!(self, call_rcpt_to(store, session, txn, recipient))
    }

    pub async fn data(
        &self,
        store: &mut Store<PluginState>,
        session: &Session,
        txn: &Transaction,
        message: Resource<MessageView>,
    ) -> Call<DataResult> {
        call!(self, call_data(store, session, txn, message))
    }
}
