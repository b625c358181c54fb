//! Wake-ups: one subscription hears our enqueues announce work, and operators' notices. It
//! rides on the shared connection where the server speaks RESP3, else on a pub/sub
//! connection of its own (`queue_core::Client::wake_ups`).
//!
//! The enqueue scripts publish the queue name on the wake channel. An idle exchange waits on
//! a shared `Notify` (, which keeps one pending wake-up, so none is lost between a
//! fetch that found nothing and the wait that follows it). Notices start with `:`, which no
//! queue name has: the paused set changed (`paused.rs`), a running job was cancelled
//! (`cancels.rs`), a process has a signal waiting (`signals.rs`).

use futures_util::StreamExt;
use queue_core::scripts::{CANCEL_NOTICE, PAUSED_CHANGED, SIGNAL_NOTICE};
use queue_core::{JobId, JobState};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::paused::PAUSED_REFRESH;
use crate::shared::Shared;

/// First pause before reconnecting a lost pub/sub connection.
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// Longest pause before reconnecting a lost pub/sub connection.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// The wake listener: it wakes the exchange for this worker's queues, keeps the copy of
/// the paused set fresh, and passes on cancels and signals. One per process: when queues are
/// spread over a cluster's slots, it serves every slot's worker (the channel is the app's).
#[derive(Debug)]
pub(crate) struct WakeListener {
    /// Each slot's worker with the queues it works; never empty.
    slots: Vec<(Arc<Shared>, HashSet<String>)>,
}

impl WakeListener {
    /// The listener of the slot workers `slots` (at least one).
    pub(crate) fn new(slots: &[Arc<Shared>]) -> Self {
        let slots = slots
            .iter()
            .map(|shared| {
                let ours = shared
                    .config
                    .queues
                    .names()
                    .iter()
                    .map(|q| (*q).to_owned())
                    .collect();
                (Arc::clone(shared), ours)
            })
            .collect();
        Self { slots }
    }

    /// The slot workers.
    fn workers(&self) -> impl Iterator<Item = &Arc<Shared>> {
        self.slots.iter().map(|(shared, _)| shared)
    }

    /// Wakes every slot's exchange.
    fn wake_all(&self) {
        for shared in self.workers() {
            shared.wake.notify_one();
        }
    }

    /// Reads the paused set into this process's copy; a failure keeps the old copy (the next
    /// notice or refresh reads again). A change wakes the exchanges: a resumed queue may hold
    /// jobs that no enqueue will announce.
    async fn refresh_paused(&self) {
        let Some(first) = self.workers().next() else {
            return;
        };
        // One copy for the process: every slot's worker shares it.
        let paused = &first.paused;
        match queue_core::Inspector::new(&first.client).paused().await {
            Ok(names) => {
                if paused.set(names) {
                    tracing::info!(paused = ?paused.names(), "paused queues changed");
                    self.wake_all();
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading paused queues failed; keeping the last copy")
            }
        }
    }

    /// Fires the cancel of every job running here whose record says cancelled: a notice sent
    /// while the subscription was down is lost, the record is not. A failed read is logged;
    /// the next resubscription reads again.
    async fn catch_up_cancels(&self) {
        for shared in self.workers() {
            let ids: Vec<JobId> = shared
                .cancels
                .ids()
                .into_iter()
                .filter_map(|id| JobId::parse(&id).ok())
                .collect();
            if ids.is_empty() {
                continue;
            }
            match queue_core::Inspector::new(&shared.client)
                .states(&ids)
                .await
            {
                Ok(states) => {
                    for (id, state) in ids.iter().zip(states) {
                        if state == Some(JobState::Cancelled) && shared.cancels.cancel(id.as_str())
                        {
                            tracing::info!(job_id = %id, "running job found cancelled after resubscribing");
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read whether running jobs were cancelled")
                }
            }
        }
    }

    /// Listens until `stop`, reconnecting with backoff when the connection drops.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let mut delay = MIN_RECONNECT_DELAY;
        let Some(client) = self.workers().next().map(|shared| shared.client.clone()) else {
            return;
        };
        loop {
            match client.wake_ups().await {
                Ok(messages) => {
                    // Backoff spaces out failed connects; a drop after a subscription starts
                    // over, or a few drops in a process's life would leave every later one
                    // down for the longest delay (and a cancel sent meanwhile late by that).
                    delay = MIN_RECONNECT_DELAY;
                    match self.listen(messages, &stop).await {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "wake-up channel lost; idle pickup falls back to polling until it reconnects")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not subscribe to the wake-up channel; idle pickup falls back to polling")
                }
            }
            // Jobs are fetched by polling until the subscription is back; the first pass after
            // it (in `listen`) catches what was announced meanwhile.
            self.wake_all();
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(MAX_RECONNECT_DELAY);
        }
    }

    /// Reads `messages` (a live subscription); Ok when stopped, Err when the connection
    /// dropped.
    async fn listen(
        &self,
        messages: impl futures_util::Stream<Item = String>,
        stop: &CancellationToken,
    ) -> queue_core::Result<()> {
        tokio::pin!(messages);
        // Subscribed first, read next: a pause, cancel or signal sent between the two is in
        // the read or announced. The interval's first tick is at once, which is that read.
        let mut refresh = tokio::time::interval(PAUSED_REFRESH);
        let mut caught_up = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = refresh.tick() => {
                    self.refresh_paused().await;
                    if !caught_up {
                        caught_up = true;
                        // An enqueue announced while nobody listened (between the drop and
                        // this subscription) is found by one more fetch, made now that the
                        // next announcement cannot be missed.
                        self.wake_all();
                        self.catch_up_cancels().await;
                        for shared in self.workers() {
                            shared.beat_now.notify_one();
                        }
                    }
                }
                msg = messages.next() => match msg {
                    Some(notice) if notice == PAUSED_CHANGED => self.refresh_paused().await,
                    Some(notice) if notice.starts_with(CANCEL_NOTICE) => {
                        let jid = &notice[CANCEL_NOTICE.len()..];
                        for shared in self.workers() {
                            if shared.cancels.cancel(jid) {
                                tracing::info!(job_id = %jid, "cancel request for a running job received");
                            }
                        }
                    }
                    Some(notice) if notice.starts_with(SIGNAL_NOTICE) => {
                        let identity = &notice[SIGNAL_NOTICE.len()..];
                        for shared in self.workers() {
                            if identity == shared.membership.current().name {
                                shared.beat_now.notify_one();
                            }
                        }
                    }
                    Some(queue) => {
                        for (shared, ours) in &self.slots {
                            if ours.contains(&queue) {
                                shared.wake.notify_one();
                            }
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
