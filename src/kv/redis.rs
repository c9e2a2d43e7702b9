//! The shared store: a Redis server several nodes use, so that greylisting and rate
//! limits agree across them. TTLs and increments map to native commands.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use super::KvError;
use super::quota::Usage;

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

/// `text` matched literally in a SCAN pattern.
fn glob_escape(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
        out
    })
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

    /// The size (key and value bytes) of the value under `key`.
    pub async fn size_of(&self, namespace: &str, key: &str) -> Result<Option<u64>, KvError> {
        let full = self.key(namespace, key);
        let (exists, len): (bool, u64) =
            self.run(async |mut c| redis::pipe().exists(&full).strlen(&full).query_async(&mut c).await).await?;
        Ok(exists.then_some(key.len() as u64 + len))
    }

    /// The keys of `namespace` and their size: a SCAN of its keys (only when the
    /// quota needs a recount, not on every write).
    pub async fn usage(&self, namespace: &str) -> Result<Usage, KvError> {
        let prefix = self.key(namespace, "");
        let pattern = format!("{}*", glob_escape(&prefix));
        self.run(async |mut c| {
            let mut usage = Usage::default();
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(&mut c)
                    .await?;
                let mut pipe = redis::pipe();
                for key in &keys {
                    pipe.strlen(key);
                }
                let lengths: Vec<u64> = if keys.is_empty() { Vec::new() } else { pipe.query_async(&mut c).await? };
                for (key, len) in keys.iter().zip(lengths) {
                    usage = usage.plus(key.len() - prefix.len() + len as usize);
                }
                if next == 0 {
                    return Ok(usage);
                }
                cursor = next;
            }
        })
        .await
    }

    pub async fn delete(&self, namespace: &str, key: &str) -> Result<bool, KvError> {
        let key = self.key(namespace, key);
        self.run(async |mut c| c.del::<_, i64>(key).await.map(|n| n > 0)).await
    }
}
