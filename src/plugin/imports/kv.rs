//! `sluice:plugin/kv`: the plugin's private namespace in the server's store.

use std::time::Duration;

use crate::kv::{KvError, Limit};
use crate::plugin::bindings::sluice::plugin::kv::{Error, Host};
use crate::plugin::state::PluginState;

const MAX_KEY: usize = 512;
const MAX_VALUE: usize = 64 * 1024;

/// An unavailable store fails the call, so the plugin's `on_error` policy decides the
/// reply uniformly (a Redis outage must not quietly switch greylisting off); a request
/// the store refuses is the plugin's to handle.
fn convert<T>(result: Result<T, KvError>) -> wasmtime::Result<Result<T, Error>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(KvError::Invalid(why) | KvError::OverQuota(why)) => Ok(Err(Error::Invalid(why))),
        Err(KvError::Unavailable(why)) => Err(wasmtime::Error::msg(format!("kv store unavailable: {why}"))),
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Error::Invalid(format!("keys must be 1 to {MAX_KEY} bytes")));
    }
    Ok(())
}

impl PluginState {
    fn kv_limit(&self) -> Limit {
        Limit { keys: self.plugin.quotas.kv_keys, bytes: self.plugin.quotas.kv_bytes }
    }

    /// Counts (and logs, rate-limited) a write the quota refused.
    fn counted<T>(&self, result: Result<T, KvError>) -> Result<T, KvError> {
        if let Err(KvError::OverQuota(why)) = &result {
            self.plugin.quota_hits.hit(&self.plugin.name, "kv", why);
        }
        result
    }
}

impl Host for PluginState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        convert(self.services.kv.get(&self.plugin.name, &key).await)
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> wasmtime::Result<Result<(), Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        if value.len() > MAX_VALUE {
            return Ok(Err(Error::Invalid(format!("values must be at most {MAX_VALUE} bytes"))));
        }
        let ttl = ttl_ms.map(Duration::from_millis);
        let written = self.services.kv.set(&self.plugin.name, &key, value, ttl, self.kv_limit()).await;
        convert(self.counted(written))
    }

    async fn increment(
        &mut self,
        key: String,
        delta: i64,
        ttl_ms: Option<u64>,
    ) -> wasmtime::Result<Result<i64, Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        let ttl = ttl_ms.map(Duration::from_millis);
        let counted = self.services.kv.increment(&self.plugin.name, &key, delta, ttl, self.kv_limit()).await;
        convert(self.counted(counted))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<bool, Error>> {
        if let Err(e) = check_key(&key) {
            return Ok(Err(e));
        }
        convert(self.services.kv.delete(&self.plugin.name, &key).await)
    }
}
