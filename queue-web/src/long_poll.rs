//! Long polling: one shared poller per process watches the `rev` of every job being waited on.
//!
//! A status request with `?wait=N` subscribes to its job here and sleeps on a
//! [`tokio::sync::watch`] channel. A single background task, running only while somebody
//! waits, reads `rev` of **all** watched jobs every [`POLL_INTERVAL`] in one pipelined round
//! trip ([`Inspector::status_revs`]: `HMGET <status key> state rev` per job) and publishes
//! what it read. So N waiting
//! clients cost one batched read per tick, not N polling loops, and a change is seen within
//! one tick. A record without `rev` (a queued job that nothing has changed yet) is at rev 1,
//! as [`JobStatus`](queue_core::JobStatus) reads it; a record without `state` is gone.
//!
//! `rev` only grows (every writer of the status record increments it), so a waiter wakes when
//! it sees a `rev` **greater** than the one in the record it already answered from; a value
//! read before its own read (by an earlier tick) can therefore never wake it by mistake,
//! while a change that happened between its read and its subscription wakes it at once.

use queue_core::inspect::StatusRev;
use queue_core::{Client, Inspector, JobId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// How often the poller reads the watched records: a change is seen within this delay.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// The per-process poller shared by every clone of a status router's state.
#[derive(Debug, Clone)]
pub(crate) struct Poller {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    watched: Mutex<Watched>,
}

#[derive(Debug, Default)]
struct Watched {
    /// Job → channel of the last `rev` read. An entry without receivers is dropped at the
    /// next tick (a waiter that timed out or whose client went away just drops its receiver).
    jobs: HashMap<JobId, watch::Sender<StatusRev>>,
    /// Whether the polling task is running; it stops when nobody waits.
    running: bool,
}

impl Poller {
    /// A poller reading through `client`; its task starts with the first waiter.
    pub(crate) fn new(client: Client) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                watched: Mutex::new(Watched::default()),
            }),
        }
    }

    /// Waits until job `id`'s record has a `rev` above `rev` (or disappears), or until
    /// `deadline`. Returns whether it changed.
    pub(crate) async fn wait_for_change(&self, id: &JobId, rev: u64, deadline: Instant) -> bool {
        let mut rx = self.subscribe(id, rev);
        let changed = |seen: &StatusRev| match *seen {
            StatusRev::Rev(r) => r > rev,
            // Gone: the caller re-reads it and answers.
            StatusRev::Gone => true,
        };
        match tokio::time::timeout_at(deadline, rx.wait_for(changed)).await {
            Ok(Ok(_)) => true,
            // The sender was dropped: impossible while we hold a receiver, but if it happens
            // the caller re-reads the record, which is always a correct answer.
            Ok(Err(_)) => true,
            Err(_) => false,
        }
    }

    fn subscribe(&self, id: &JobId, rev: u64) -> watch::Receiver<StatusRev> {
        let mut watched = self.lock();
        let rx = match watched.jobs.get(id) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(StatusRev::Rev(rev));
                watched.jobs.insert(id.clone(), tx);
                rx
            }
        };
        if !watched.running {
            watched.running = true;
            tokio::spawn(self.clone().run());
        }
        rx
    }

    fn lock(&self) -> MutexGuard<'_, Watched> {
        // The map stays consistent even if a holder panicked: every update is one insert,
        // retain or send.
        self.inner
            .watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The polling loop: runs while at least one request waits, then exits.
    async fn run(self) {
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tick.tick().await;
            let ids: Vec<JobId> = {
                let mut watched = self.lock();
                watched.jobs.retain(|_, tx| tx.receiver_count() > 0);
                if watched.jobs.is_empty() {
                    watched.running = false;
                    return;
                }
                watched.jobs.keys().cloned().collect()
            };
            let inspector = Inspector::new(&self.inner.client);
            match inspector.status_revs(&ids).await {
                Ok(revs) => {
                    if failing {
                        tracing::info!(waiting = ids.len(), "long-poll reads recovered");
                        failing = false;
                    }
                    let watched = self.lock();
                    for (id, seen) in ids.iter().zip(revs) {
                        if let Some(tx) = watched.jobs.get(id) {
                            tx.send_if_modified(|current| {
                                let modified = *current != seen;
                                *current = seen;
                                modified
                            });
                        }
                    }
                }
                // Log the first failure of a streak only: this runs 20 times a second.
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, waiting = ids.len(),
                        "long-poll read failed; waiters answer at their deadline unless it recovers");
                }
                Err(_) => {}
            }
        }
    }
}
