//! Long polling: one shared poller per process watches the `rev` of every job being waited on.
//!
//! A status request with `?wait=N` subscribes to its job here and sleeps on a
//! [`tokio::sync::watch`] channel. A single background task, running only while somebody
//! waits, reads `rev` of **all** watched jobs every [`POLL_INTERVAL`] in one pipelined round
//! trip (`HMGET <status key> state rev` per job) and publishes what it read. So N waiting
//! clients cost one batched read per tick, not N polling loops, and a change is seen within
//! one tick. A record without `rev` (a queued job that nothing has changed yet) is at rev 1,
//! as [`JobStatus`](queue_core::JobStatus) reads it; a record without `state` is gone.
//!
//! `rev` only grows (every writer of the status record increments it), so a waiter wakes when
//! it sees a `rev` **greater** than the one in the record it already answered from; a value
//! read before its own read (by an earlier tick) can therefore never wake it by mistake,
//! while a change that happened between its read and its subscription wakes it at once.

use queue_core::{Client, JobId, status::field};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

/// How often the poller reads the watched records: a change is seen within this delay.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Most `HMGET`s in one pipeline; more watched jobs take more (still batched) round trips.
const MAX_KEYS_PER_ROUND_TRIP: usize = 1000;

/// What the poller last read for one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// The record's `rev`.
    Rev(u64),
    /// The record is gone: expired or deleted.
    Gone,
}

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
    /// Status key → channel of the last `rev` read. An entry without receivers is dropped at
    /// the next tick (a waiter that timed out or whose client went away just drops its receiver).
    jobs: HashMap<String, watch::Sender<Seen>>,
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
        let changed = |seen: &Seen| match *seen {
            Seen::Rev(r) => r > rev,
            Seen::Gone => true,
        };
        match tokio::time::timeout_at(deadline, rx.wait_for(changed)).await {
            Ok(Ok(_)) => true,
            // The sender was dropped: impossible while we hold a receiver, but if it happens
            // the caller re-reads the record, which is always a correct answer.
            Ok(Err(_)) => true,
            Err(_) => false,
        }
    }

    fn subscribe(&self, id: &JobId, rev: u64) -> watch::Receiver<Seen> {
        let key = self.inner.client.keys().status(id.as_str());
        let mut watched = self.lock();
        let rx = match watched.jobs.get(&key) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(Seen::Rev(rev));
                watched.jobs.insert(key, tx);
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
            let keys: Vec<String> = {
                let mut watched = self.lock();
                watched.jobs.retain(|_, tx| tx.receiver_count() > 0);
                if watched.jobs.is_empty() {
                    watched.running = false;
                    return;
                }
                watched.jobs.keys().cloned().collect()
            };
            match self.read_revs(&keys).await {
                Ok(revs) => {
                    if failing {
                        tracing::info!(waiting = keys.len(), "long-poll reads recovered");
                        failing = false;
                    }
                    let watched = self.lock();
                    for (key, seen) in keys.iter().zip(revs) {
                        if let Some(tx) = watched.jobs.get(key) {
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
                    tracing::warn!(error = %e, waiting = keys.len(),
                        "long-poll read failed; waiters answer at their deadline unless it recovers");
                }
                Err(_) => {}
            }
        }
    }

    /// Reads `rev` of every key, in pipelines of at most [`MAX_KEYS_PER_ROUND_TRIP`].
    async fn read_revs(&self, keys: &[String]) -> queue_core::Result<Vec<Seen>> {
        let client = &self.inner.client;
        let mut seen = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_KEYS_PER_ROUND_TRIP) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("HMGET").arg(key).arg(field::STATE).arg(field::REV);
            }
            let mut conn = client.connection();
            let revs: Vec<(Option<String>, Option<u64>)> =
                client.bounded(pipe.query_async(&mut conn)).await?;
            seen.extend(revs.into_iter().map(|(state, rev)| match state {
                Some(_) => Seen::Rev(rev.unwrap_or(1)),
                None => Seen::Gone,
            }));
        }
        Ok(seen)
    }
}
