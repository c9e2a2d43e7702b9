//! The control socket: `<queue>/control.sock`, through which `sluice reload` asks the
//! running server to reload. One line in (`reload`), one line out (`ok` or
//! `error: ...`). The socket is private to the server's user.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use super::ReloadRequest;

pub const SOCKET_NAME: &str = "control.sock";
/// Reloading compiles plugins; allow for it.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Starts serving the socket at `path` (a stale one is replaced: the queue lock
/// guarantees we are the only server on this queue).
pub fn serve(path: &Path, reloads: mpsc::Sender<ReloadRequest>) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(|e| anyhow::anyhow!("cannot bind {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let reloads = reloads.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REPLY_TIMEOUT, handle(stream, reloads)).await;
            });
        }
    }))
}

async fn handle(stream: UnixStream, reloads: mpsc::Sender<ReloadRequest>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read).take(256).read_line(&mut line).await?;
    let answer = match line.trim() {
        "reload" => {
            let (reply, outcome) = oneshot::channel();
            if reloads.send(reply).await.is_err() {
                "error: the server is stopping".to_string()
            } else {
                match outcome.await {
                    Ok(Ok(())) => "ok".to_string(),
                    Ok(Err(error)) => format!("error: {}", error.replace('\n', " ")),
                    Err(_) => "error: the server is stopping".to_string(),
                }
            }
        }
        other => format!("error: unknown request {:?}", other.chars().take(40).collect::<String>()),
    };
    write.write_all(format!("{answer}\n").as_bytes()).await?;
    write.shutdown().await
}

/// Sends `request` to the server running on the queue at `queue_dir`; returns its answer.
pub async fn request(queue_dir: &Path, request: &str) -> anyhow::Result<String> {
    let path = queue_dir.join(SOCKET_NAME);
    let stream = UnixStream::connect(&path)
        .await
        .map_err(|e| anyhow::anyhow!("no server is running on {} ({e})", queue_dir.display()))?;
    let (read, mut write) = stream.into_split();
    write.write_all(format!("{request}\n").as_bytes()).await?;
    let mut line = String::new();
    tokio::time::timeout(REPLY_TIMEOUT, BufReader::new(read).read_line(&mut line))
        .await
        .map_err(|_| anyhow::anyhow!("the server did not answer"))??;
    Ok(line.trim().to_string())
}
