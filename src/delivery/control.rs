//! How the admin CLI reaches a running server: request files in `<queue>/control/`.
//! The CLI writes `NAME.req` atomically (a temporary name, then rename); the server
//! polls the directory, applies the request through its scheduler, and answers with
//! `NAME.resp`, written the same way. Files need no protocol beyond the file system,
//! and only someone who may write the queue directory can send a request.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::oneshot;

use super::admin::{AdminReply, AdminRequest, ItemResult};
use super::event::{Event, Events};

const POLL: Duration = Duration::from_millis(100);
/// How long the CLI waits for an answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

pub fn control_dir(queue_root: &Path) -> PathBuf {
    queue_root.join("control")
}

/// Writes `bytes` to `path` so that readers see all of it or nothing.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// The server side: answers requests until the scheduler goes away.
pub async fn serve(queue_root: PathBuf, scheduler: Events) {
    let dir = control_dir(&queue_root);
    if let Err(error) = std::fs::create_dir_all(&dir) {
        tracing::error!(%error, dir = %dir.display(), "cannot create the control directory; queue commands will not reach the server");
        return;
    }
    // Leftovers of a previous run were never answered; their CLI has given up.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    loop {
        tokio::time::sleep(POLL).await;
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut requests: Vec<PathBuf> =
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "req")).collect();
        requests.sort();
        for path in requests {
            let reply = match std::fs::read(&path).map_err(|e| e.to_string()).and_then(|bytes| {
                serde_json::from_slice::<AdminRequest>(&bytes).map_err(|e| format!("bad request: {e}"))
            }) {
                Ok(request) => {
                    tracing::info!(action = ?request.action, ids = ?request.ids, all = request.all, "queue admin request");
                    let (tx, rx) = oneshot::channel();
                    if scheduler.send(Event::Admin { request, reply: tx }).is_err() {
                        return;
                    }
                    rx.await.unwrap_or_default()
                }
                Err(error) => AdminReply { results: vec![ItemResult { id: String::new(), ok: false, message: error }] },
            };
            let _ = std::fs::remove_file(&path);
            let answer = path.with_extension("resp");
            let bytes = serde_json::to_vec(&reply).unwrap_or_default();
            if let Err(error) = write_atomically(&answer, &bytes) {
                tracing::error!(%error, "cannot answer a queue admin request");
            }
        }
    }
}

/// The CLI side: sends a request to the server holding the queue and waits for its
/// answer.
pub fn request(queue_root: &Path, request: &AdminRequest) -> Result<AdminReply, String> {
    let dir = control_dir(queue_root);
    if !dir.is_dir() {
        return Err(format!("{} does not exist; is the server running?", dir.display()));
    }
    let nanos = crate::clock::since_epoch().as_nanos();
    let name = format!("{nanos:032}-{}", std::process::id());
    let path = dir.join(format!("{name}.req"));
    let bytes = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    write_atomically(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let answer = dir.join(format!("{name}.resp"));
    let deadline = std::time::Instant::now() + ANSWER_TIMEOUT;
    while std::time::Instant::now() < deadline {
        if let Ok(bytes) = std::fs::read(&answer) {
            let _ = std::fs::remove_file(&answer);
            return serde_json::from_slice(&bytes).map_err(|e| format!("bad answer from the server: {e}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&path);
    Err("the server holding the queue did not answer".into())
}
