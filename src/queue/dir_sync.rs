//! Group commit for directory fsyncs. A rename is only durable once its directory is
//! fsynced; one fsync covers every rename made before it started, so concurrent
//! sessions share one instead of paying one each.

use std::fs::File;
use std::io;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

type Waiter = oneshot::Sender<Result<(), (io::ErrorKind, String)>>;

#[derive(Clone, Debug)]
pub struct DirSync {
    requests: mpsc::UnboundedSender<Waiter>,
}

impl DirSync {
    /// Starts the syncer for `dir`; needs a running tokio runtime.
    pub fn start(dir: File) -> DirSync {
        let dir = Arc::new(dir);
        let (requests, mut incoming) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(64);
            // Everyone in the batch asked after their rename, so one fsync started now
            // covers all of them; requests arriving meanwhile wait for the next round.
            while incoming.recv_many(&mut batch, 4096).await > 0 {
                let dir = Arc::clone(&dir);
                let result = match tokio::task::spawn_blocking(move || dir.sync_all()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err((e.kind(), e.to_string())),
                    Err(e) => Err((io::ErrorKind::Other, e.to_string())),
                };
                for waiter in batch.drain(..) {
                    let _ = waiter.send(result.clone());
                }
            }
        });
        DirSync { requests }
    }

    /// Returns once every rename made into the directory before the call is durable.
    pub async fn sync(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(tx).map_err(|_| io::Error::other("directory syncer stopped"))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err((kind, message))) => Err(io::Error::new(kind, message)),
            Err(_) => Err(io::Error::other("directory syncer stopped")),
        }
    }
}
