//! Wake-ups: one pub/sub connection hears our enqueues announce work.
//!
//! The enqueue scripts publish the queue name on the wake channel. An idle exchange waits on
//! a shared `Notify` (, which keeps one pending wake-up, so none is lost between a
//! fetch that found nothing and the wait that follows it).

use futures_util::StreamExt;
use queue_core::Client;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Longest pause before reconnecting a lost pub/sub connection.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// The wake listener and what it needs: a client, the queue names of this worker, and the
/// `Notify` the exchange waits on.
#[derive(Debug)]
pub(crate) struct WakeListener {
    client: Client,
    ours: HashSet<String>,
    wake: Arc<Notify>,
}

impl WakeListener {
    pub(crate) fn new(client: Client, queues: &[&str], wake: Arc<Notify>) -> Self {
        Self {
            client,
            ours: queues.iter().map(|q| (*q).to_owned()).collect(),
            wake,
        }
    }

    /// Listens until `stop`, reconnecting with backoff when the connection drops.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.listen(&stop).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "wake-up channel lost; idle pickup falls back to polling until it reconnects")
                }
            }
            // Whatever was announced while disconnected is caught by this wake-up or by polling.
            self.wake.notify_one();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        }
    }

    /// Returns Ok when stopped, Err when the connection failed or dropped.
    async fn listen(&self, stop: &CancellationToken) -> queue_core::Result<()> {
        let messages = self.client.wake_ups().await?;
        tokio::pin!(messages);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                msg = messages.next() => match msg {
                    Some(queue) => {
                        if self.ours.contains(&queue) {
                            self.wake.notify_one();
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
}
