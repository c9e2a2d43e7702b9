//! The shared store: a Redis server several nodes use, so that greylisting and rate
//! limits agree across them. TTLs and increments map to native commands.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use super::KvError;

pub struct RedisKv {
    client: redis::Client,
    prefix: String,
    timeout: Duration,
    /// Connected lazily and re-used; a server that is down at start is retried on use.
    connection: Mutex<Option<ConnectionManager>>,
}

impl std::fmt::Debug for RedisKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKv").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(format!("redis: {e}"))
}

impl RedisKv {
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<RedisKv, KvError> {
        let client = redis::Client::open(url).map_err(|e| KvError::Invalid(format!("redis url: {e}")))?;
        Ok(RedisKv { client, prefix: prefix.to_string(), timeout, connection: Mutex::new(None) })
    }

    fn key(&self, namespace: &str, key: &str) -> String {
        format!("{}{namespace}:{key}", self.prefix)
    }

    async fn connection(&self) -> Result<ConnectionManager, KvError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let connection =
            tokio::time::timeout(self.timeout, ConnectionManager::new_with_config(self.client.clone(), config))
                .await
                .map_err(|_| unavailable("connect timed out"))?
                .map_err(unavailable)?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    async fn run<T>(&self, f: impl AsyncFnOnce(ConnectionManager) -> redis::RedisResult<T>) -> Result<T, KvError> {
        let connection = self.connection().await?;
        tokio::time::timeout(self.timeout, f(connection)).await.map_err(|_| unavailable("timed out"))?.map_err(|e| {
            match e.kind() {
                // A request the server refused as such (INCRBY on text, say).
                redis::ErrorKind::UnexpectedReturnType | redis::ErrorKind::Server(_) if !e.is_connection_dropped() => {
                    KvError::Invalid(e.to_string())
                }
                _ => unavailable(e),
            }
        })
    }

    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let key = self.key(namespace, key);
        self.run(async |mut c| c.get(key).await).await
    }

    pub async fn set(&self, namespace: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError> {
        let key = self.key(namespace, key);
        self.run(async |mut c| match ttl {
            Some(ttl) => c.pset_ex(key, value, ttl.as_millis().max(1) as u64).await,
            None => c.set(key, value).await,
        })
        .await
    }

    pub async fn increment(
        &self,
        namespace: &str,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
    ) -> Result<i64, KvError> {
        let key = self.key(namespace, key);
        self.run(async |mut c| {
            let mut pipe = redis::pipe();
            pipe.atomic().incr(&key, delta);
            if let Some(ttl) = ttl {
                // NX: the expiry is set when the counter is created, never extended.
                pipe.cmd("PEXPIRE").arg(&key).arg(ttl.as_millis().max(1) as u64).arg("NX").ignore();
            }
            let (value,): (i64,) = pipe.query_async(&mut c).await?;
            Ok(value)
        })
        .await
    }

    pub async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        let key = self.key(namespace, key);
        self.run(async |mut c| c.del::<_, i64>(key).await.map(|n| n > 0)).await
    }
}
