//! The message of an attempt; its bytes are read once, when the first connection is
//! ready, so messages waiting for a connection slot hold no memory.

use std::sync::Arc;

use tokio::sync::OnceCell;

use super::engine::Engine;
use crate::queue::Entry;

/// Messages larger than this are read off the runtime's threads.
const READ_INLINE_LIMIT: u64 = 1 << 20;

pub struct Loaded {
    pub entry: Entry,
    content: OnceCell<Option<Arc<Vec<u8>>>>,
}

impl Loaded {
    pub fn new(entry: Entry) -> Loaded {
        Loaded { entry, content: OnceCell::new() }
    }

    pub async fn content(&self, engine: &Engine) -> Option<Arc<Vec<u8>>> {
        self.content
            .get_or_init(|| async {
                let id = self.entry.envelope.id;
                let read = if self.entry.location.body_len <= READ_INLINE_LIMIT {
                    engine.queue.read_message(id)
                } else {
                    let queue = Arc::clone(&engine.queue);
                    tokio::task::spawn_blocking(move || queue.read_message(id))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                };
                match read {
                    Ok(bytes) => Some(Arc::new(bytes)),
                    Err(error) => {
                        tracing::error!(%id, %error, "cannot read a queued message");
                        None
                    }
                }
            })
            .await
            .clone()
    }
}
