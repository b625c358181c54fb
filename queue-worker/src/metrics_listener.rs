//! The worker's optional `/metrics` listener (`WORKER_METRICS_ADDR`), for a Prometheus
//! that can reach worker processes (a private network, a sidecar agent on the host).
//!
//! Off by default, and given a bare port it binds loopback only: a worker dyno has no routed
//! port, and the page names every job class. A minimal HTTP/1.1 responder, not a web
//! framework: it answers `GET /metrics` and closes; anything else gets 404. Each request is
//! read with a size cap and a deadline, so a stuck or hostile client holds one small task,
//! and at most `MAX_CONNECTIONS` are held at once: a flood of idle connections is closed
//! on arrival rather than left to use up the file descriptors the worker's Redis
//! connections need (scrapes fail during the flood; jobs keep running).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

/// Longest request head read (a scrape's is a few hundred bytes).
const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Connections answered at once (a Prometheus scrapes with one).
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// Time a client gets to send its request and read the answer.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// Binds `addr` (before the worker starts, so a taken port fails the start-up).
pub(crate) async fn bind(addr: SocketAddr) -> crate::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::Error::MetricsListener { addr, source })
}

/// Serves `/metrics` on `listener` until `stop`.
pub(crate) async fn run(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // No slot: dropping the stream closes it at once.
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        continue;
                    };
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(REQUEST_DEADLINE, answer(stream, &shared)).await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener: accept failed");
                    // Out of file descriptors, say: do not spin.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_REQUEST_BYTES {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let (status, body) = if line.starts_with(b"GET /metrics ") {
        ("200 OK", shared.extensions.metrics.text())
    } else {
        ("404 Not Found", "not found\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
