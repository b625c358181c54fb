//! Wake-ups: one pub/sub connection hears our enqueues announce work.
//!
//! The enqueue scripts publish the queue name on the wake channel. An idle exchange waits on
//! `Shared::wake` (a `Notify`, which keeps one pending wake-up, so none is lost between a
//! fetch that found nothing and the wait that follows it).

use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

/// Longest pause before reconnecting a lost pub/sub connection.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// Listens until `stop`, reconnecting with backoff when the connection drops.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let ours: HashSet<String> = shared
        .config
        .queues
        .names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut delay = Duration::from_millis(100);
    loop {
        match listen(&shared, &ours, &stop).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "wake-up channel lost; idle pickup falls back to polling until it reconnects")
            }
        }
        // Whatever was announced while disconnected is caught by this wake-up or by polling.
        shared.wake.notify_one();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RECONNECT_DELAY);
    }
}

/// Returns Ok when stopped, Err when the connection failed or dropped.
async fn listen(
    shared: &Shared,
    ours: &HashSet<String>,
    stop: &CancellationToken,
) -> queue_core::Result<()> {
    let messages = shared.client.wake_ups().await?;
    tokio::pin!(messages);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            msg = messages.next() => match msg {
                Some(queue) => {
                    if ours.contains(&queue) {
                        shared.wake.notify_one();
                    }
                }
                None => {
                    return Err(queue_core::Error::Unavailable(redis::RedisError::from((
                        redis::ErrorKind::Io,
                        "pub/sub connection closed",
                    ))))
                }
            }
        }
    }
}
