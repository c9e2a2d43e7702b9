//! `sluice:plugin/kv`: the plugin's private namespace in the server's store.

use std::time::Duration;

use crate::kv::KvError;
use crate::plugin::bindings::sluice::plugin::kv::{Error, Host};
use crate::plugin::state::PluginState;

const MAX_KEY: usize = 512;
const MAX_VALUE: usize = 64 * 1024;

fn convert(error: KvError) -> Error {
    match error {
        KvError::Unavailable(why) => Error::Unavailable(why),
        KvError::Invalid(why) => Error::Invalid(why),
    }
}

fn check_key(key: &str) -> Result<(), Error> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(Error::Invalid(format!("keys must be 1 to {MAX_KEY} bytes")));
    }
    Ok(())
}

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        check_key(&key)?;
        self.services.kv.get(&self.plugin.name, &key).await.map_err(convert)
    }

    async fn set(&mut self, key: String, value: Vec<u8>, ttl_ms: Option<u64>) -> Result<(), Error> {
        check_key(&key)?;
        if value.len() > MAX_VALUE {
            return Err(Error::Invalid(format!("values must be at most {MAX_VALUE} bytes")));
        }
        self.services.kv.set(&self.plugin.name, &key, value, ttl_ms.map(Duration::from_millis)).await.map_err(convert)
    }

    async fn increment(&mut self, key: String, delta: i64, ttl_ms: Option<u64>) -> Result<i64, Error> {
        check_key(&key)?;
        self.services
            .kv
            .increment(&self.plugin.name, &key, delta, ttl_ms.map(Duration::from_millis))
            .await
            .map_err(convert)
    }

    async fn delete(&mut self, key: String) -> Result<bool, Error> {
        check_key(&key)?;
        self.services.kv.delete(&self.plugin.name, &key).await.map_err(convert)
    }
}
