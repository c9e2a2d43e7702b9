//! Helpers shared by Sluice's filter plugins (dnsbl, helo-checks, greylist, rate-limit,
//! attachment-guard, spam-score, rspamd, http-policy).
//!
//! Pure logic: nothing here calls the host, so everything runs and tests on the host.
//! Of the SDK it uses only the plain config tree (`sluice_plugin::config::Value`), which
//! [`config`] reads into the types here; the host's interfaces (`dns`, `kv`, `log`)
//! and the settings loader are in the SDK; of its `http` module only the plain request
//! and response types.

pub mod clock;
pub mod config;
pub mod domain;
pub mod duration;
pub mod header;
pub mod key;
pub mod net;
pub mod reply;
pub mod service;
pub mod size;
