//! A minimal HTTP/1.1 endpoint for Prometheus and orchestrators: `/metrics`,
//! `/healthz` (the process serves) and `/readyz` (listeners up, queue writable,
//! plugins loaded). Requests are bounded in size and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::telemetry;
use crate::queue::Queue;
use crate::smtp::LiveContext;

const MAX_REQUEST: usize = 8192;
const TIMEOUT: Duration = Duration::from_secs(10);

pub async fn serve(
    address: SocketAddr,
    queue: Arc<Queue>,
    live: LiveContext,
    stopping: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener =
        TcpListener::bind(address).await.map_err(|e| anyhow::anyhow!("cannot listen on {address} for metrics: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (queue, live, stopping) = (Arc::clone(&queue), Arc::clone(&live), stopping.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(TIMEOUT, handle(stream, &queue, &live, &stopping)).await;
            });
        }
    }))
}

async fn handle(
    mut stream: TcpStream,
    queue: &Queue,
    live: &LiveContext,
    stopping: &watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || request.len() + n > MAX_REQUEST {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut words = line.split(|&b| b == b' ');
    let (method, path) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let (status, body) = match (method, path) {
        (b"GET", b"/metrics") => {
            super::telemetry_queue(queue);
            ("200 OK", telemetry::render())
        }
        (b"GET", b"/healthz") => ("200 OK", "ok\n".to_string()),
        (b"GET", b"/readyz") => {
            let problems = readiness(queue, live, stopping);
            if problems.is_empty() {
                ("200 OK", "ready\n".to_string())
            } else {
                ("503 Service Unavailable", problems.join("\n") + "\n")
            }
        }
        (b"GET", _) => ("404 Not Found", "not found\n".to_string()),
        _ => ("405 Method Not Allowed", "GET only\n".to_string()),
    };
    let content_type = if path == b"/metrics" { "text/plain; version=0.0.4" } else { "text/plain" };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

/// What keeps the server from taking mail, if anything.
fn readiness(queue: &Queue, live: &LiveContext, stopping: &watch::Receiver<bool>) -> Vec<String> {
    let mut problems = Vec::new();
    if *stopping.borrow() {
        problems.push("shutting down".to_string());
    }
    if let Err(error) = queue.check_writable() {
        problems.push(format!("queue not writable: {error}"));
    }
    let ctx = live.load();
    if ctx.plugins.plugins().len() != ctx.config.plugin.len() {
        problems.push("plugins not loaded".to_string());
    }
    problems
}
