//! Wake-ups: one pub/sub connection hears our enqueues announce work.
//!
//! The enqueue scripts publish the queue name on the wake channel. An idle exchange waits on
//! a shared `Notify` (, which keeps one pending wake-up, so none is lost between a
//! fetch that found nothing and the wait that follows it).

use futures_util::StreamExt;
use queue_core::Client;
use queue_core::scripts::PAUSED_CHANGED;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::paused::{PAUSED_REFRESH, Paused};

/// Longest pause before reconnecting a lost pub/sub connection.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// The wake listener and what it needs: a client, the queue names of this worker, the
/// `Notify` the exchange waits on, and the copy of the paused set it keeps fresh.
#[derive(Debug)]
pub(crate) struct WakeListener {
    client: Client,
    ours: HashSet<String>,
    wake: Arc<Notify>,
    paused: Arc<Paused>,
}

impl WakeListener {
    pub(crate) fn new(
        client: Client,
        queues: &[&str],
        wake: Arc<Notify>,
        paused: Arc<Paused>,
    ) -> Self {
        Self {
            client,
            ours: queues.iter().map(|q| (*q).to_owned()).collect(),
            wake,
            paused,
        }
    }

    /// Reads the paused set into this process's copy; a failure keeps the old copy (the next
    /// notice or refresh reads again). A change wakes the exchange: a resumed queue may hold
    /// jobs that no enqueue will announce.
    async fn refresh_paused(&self) {
        match queue_core::Inspector::new(&self.client).paused().await {
            Ok(names) => {
                if self.paused.set(names) {
                    tracing::info!(paused = ?self.paused.names(), "paused queues changed");
                    self.wake.notify_one();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading paused queues failed; keeping the last copy")
            }
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
        // Subscribed first, read next: a pause between the two is in the read or announced.
        // The interval's first tick is at once, which is that read.
        let mut refresh = tokio::time::interval(PAUSED_REFRESH);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = refresh.tick() => self.refresh_paused().await,
                msg = messages.next() => match msg {
                    Some(notice) if notice == PAUSED_CHANGED => self.refresh_paused().await,
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
