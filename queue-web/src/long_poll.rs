//! Long polling: waiters cost Redis nothing while they wait; changes are pushed to them.
//!
//! A status request with `?wait=N` first takes one of this process's waiter places
//! ([`DEFAULT_MAX_WAITERS`], set with [`StatusState::max_waiters`]; beyond it the request
//! answers `503` with `Retry-After`). It then registers its job here, and reads the record
//! through [`scripts::watch`], which marks the record watched in the same call. While the mark
//! holds, every script that changes the record (start, ack, fail, requeue, defer, promote,
//! cancel, progress) publishes `<rev> <key>` on the status channel
//! ([`queue_core::status_changes`]). One task per process, alive while somebody waits (and for
//! [`IDLE_LINGER`] after), holds the one subscription (RESP3 pushes on the shared connection,
//! else a pub/sub connection of its own) and sends each announced `rev` into the
//! [`tokio::sync::watch`] channel of its job; the waiters of that job wake, re-read
//! the record and answer. So N waiters cost nothing per second, whatever N is: Redis works
//! only when a watched record changes (one `PUBLISH`), and the worker's hot path, for records
//! nobody watches, reads one more field of a hash it reads anyway.
//!
//! Pub/sub delivers at most once: on every (re)subscription the task reads the `rev` of every
//! watched job once ([`Inspector::status_revs`]), which catches the changes made while it was
//! disconnected. Since a job is registered before its record is read, a change between the
//! read and the subscription is caught the same way. A record that expires while watched is
//! not announced: its waiters answer at their deadline.
//!
//! `rev` only grows (every writer of the status record increments it), so a waiter wakes when
//! it sees a `rev` **greater** than the one in the record it answered from; a value sent before
//! its own read can therefore never wake it by mistake.
//!
//! [`StatusState::max_waiters`]: crate::StatusState::max_waiters

use futures_util::StreamExt;
use queue_core::inspect::StatusRev;
use queue_core::scripts;
use queue_core::{Client, Inspector, JobId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// Waiters one process holds at most, unless set otherwise: each is an open connection (a
/// file descriptor) and a few KiB of memory, and 10,000 is the target of issue 11 measured
/// by `tests/long_poll_scale.rs`. Keep it under the process's open-file limit.
pub const DEFAULT_MAX_WAITERS: usize = 10_000;

/// How long the subscriber stays connected after the last waiter left, so that a burst of
/// polls does not reconnect each time.
pub const IDLE_LINGER: Duration = Duration::from_secs(30);

/// How often the subscriber task drops the channels of jobs nobody waits on any more, and
/// checks whether it may stop; local work only, no Redis command.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// Longest pause between two attempts to subscribe again.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(5);

/// The per-process long-poll state shared by every clone of a status router's state.
#[derive(Debug, Clone)]
pub(crate) struct Poller {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: Client,
    watched: Mutex<Watched>,
    /// One permit per waiter place.
    places: Arc<Semaphore>,
    /// Requests parked in [`Poller::wait_for_change`] right now.
    waiting: AtomicUsize,
}

#[derive(Debug, Default)]
struct Watched {
    /// Job → channel of the last `rev` known. An entry without receivers is dropped at the
    /// next housekeeping (a waiter that answered or whose client went away drops its receiver).
    jobs: HashMap<JobId, watch::Sender<StatusRev>>,
    /// Whether the subscriber task is running.
    running: bool,
}

/// A waiter's place, held until it answers.
#[derive(Debug)]
pub(crate) struct Place {
    _permit: OwnedSemaphorePermit,
}

/// A registered interest in one job's changes.
#[derive(Debug)]
pub(crate) struct Interest {
    rx: watch::Receiver<StatusRev>,
}

impl Poller {
    /// A poller reading through `client` with `max` waiter places; its task starts with the
    /// first waiter.
    pub(crate) fn new(client: Client, max: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                watched: Mutex::new(Watched::default()),
                places: Arc::new(Semaphore::new(max)),
                waiting: AtomicUsize::new(0),
            }),
        }
    }

    /// How many requests wait right now.
    pub(crate) fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Relaxed)
    }

    /// A waiter place, or `None` when all are taken.
    pub(crate) fn place(&self) -> Option<Place> {
        let permit = self.inner.places.clone().try_acquire_owned().ok()?;
        Some(Place { _permit: permit })
    }

    /// Registers interest in job `id`'s changes. Call it before reading the record, so that
    /// no change after the read can be missed.
    pub(crate) fn register(&self, id: &JobId) -> Interest {
        let mut watched = self.lock();
        let rx = match watched.jobs.get(id) {
            Some(tx) => tx.subscribe(),
            None => {
                // 0 is below every real `rev` (≥ 1): it wakes nobody.
                let (tx, rx) = watch::channel(StatusRev::Rev(0));
                watched.jobs.insert(id.clone(), tx);
                rx
            }
        };
        if !watched.running {
            watched.running = true;
            tokio::spawn(subscriber(Arc::downgrade(&self.inner)));
        }
        Interest { rx }
    }

    /// Waits until the record of `interest` has a `rev` above `rev` (or disappears), or until
    /// `deadline`. Returns whether it changed.
    pub(crate) async fn wait_for_change(
        &self,
        mut interest: Interest,
        rev: u64,
        deadline: Instant,
    ) -> bool {
        let _waiting = Counted::new(&self.inner.waiting);
        let changed = |seen: &StatusRev| match *seen {
            StatusRev::Rev(r) => r > rev,
            // Gone: the caller re-reads it and answers.
            StatusRev::Gone => true,
        };
        match tokio::time::timeout_at(deadline, interest.rx.wait_for(changed)).await {
            Ok(Ok(_)) => true,
            // The sender was dropped: impossible while we hold a receiver, but if it happens
            // the caller re-reads the record, which is always a correct answer.
            Ok(Err(_)) => true,
            Err(_) => false,
        }
    }

    /// Reads job `id`'s record and marks it watched for `wait` (see [`scripts::watch`]).
    pub(crate) async fn read_and_watch(
        &self,
        id: &JobId,
        wait: Duration,
    ) -> queue_core::Result<Option<scripts::Watched>> {
        scripts::watch(&self.inner.client, id.as_str(), wait).await
    }

    fn lock(&self) -> MutexGuard<'_, Watched> {
        self.inner.lock()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Watched> {
        // The map stays consistent even if a holder panicked: every update is one insert,
        // retain or send.
        self.watched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `seen` to job `id`'s waiters, if it is newer than what they have.
    fn deliver(&self, id: &JobId, seen: StatusRev) {
        let watched = self.lock();
        if let Some(tx) = watched.jobs.get(id) {
            tx.send_if_modified(|current| {
                let newer = match (*current, seen) {
                    (StatusRev::Rev(old), StatusRev::Rev(new)) => new > old,
                    (StatusRev::Rev(_), StatusRev::Gone) => true,
                    (StatusRev::Gone, _) => false,
                };
                if newer {
                    *current = seen;
                }
                newer
            });
        }
    }

    /// Drops the channels nobody listens to; returns how many jobs are still watched.
    fn prune(&self) -> usize {
        let mut watched = self.lock();
        watched.jobs.retain(|_, tx| tx.receiver_count() > 0);
        watched.jobs.len()
    }

    /// Stops the task if nobody waits; under the lock, so a waiter registering at the same
    /// moment either is seen here or starts a new task.
    fn stop_if_idle(&self) -> bool {
        let mut watched = self.lock();
        watched.jobs.retain(|_, tx| tx.receiver_count() > 0);
        if watched.jobs.is_empty() {
            watched.running = false;
            return true;
        }
        false
    }

    fn watched_ids(&self) -> Vec<JobId> {
        self.lock().jobs.keys().cloned().collect()
    }
}

/// Counts a request as waiting for as long as it lives.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The wait before the next subscription after `failures` failures in a row: 200 ms, doubling
/// up to [`MAX_RECONNECT_DELAY`].
fn reconnect_delay(failures: u32) -> Duration {
    Duration::from_millis(100)
        .saturating_mul(1 << failures.min(6))
        .min(MAX_RECONNECT_DELAY)
}

/// The subscriber task: (re)subscribes, catches up, and delivers announcements until nobody
/// has waited for [`IDLE_LINGER`] or the poller is gone. Holds only a weak reference, so that
/// dropping every status router stops it.
async fn subscriber(poller: Weak<Inner>) {
    let mut failures = 0u32;
    let mut idle_since: Option<Instant> = None;
    loop {
        let Some(inner) = poller.upgrade() else {
            return;
        };
        let subscribed = inner.client.status_changes().await;
        let mut changes = match subscribed {
            Ok(changes) => changes,
            Err(e) => {
                if failures == 0 {
                    tracing::warn!(error = %e, waiting = inner.waiting.load(Ordering::Relaxed),
                        "long-poll subscription failed; waiters answer at their deadline unless it recovers");
                }
                failures = failures.saturating_add(1);
                let delay = reconnect_delay(failures);
                if inner.stop_if_idle() {
                    return;
                }
                drop(inner);
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        // Changes made while no subscription existed were announced to nobody: read them. If
        // that read fails, subscribe again and read again rather than miss them, dropping
        // the jobs nobody waits for any more (this path never reaches the housekeeping
        // below) and backing off further each time.
        if !catch_up(&inner).await {
            drop(changes);
            failures = failures.saturating_add(1);
            if inner.stop_if_idle() {
                return;
            }
            drop(inner);
            tokio::time::sleep(reconnect_delay(failures)).await;
            continue;
        }
        if failures > 0 {
            tracing::info!("long-poll subscription recovered");
            failures = 0;
        }
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        drop(inner);
        loop {
            tokio::select! {
                change = changes.next() => {
                    let Some(inner) = poller.upgrade() else { return };
                    match change {
                        Some(change) => inner.deliver(&change.job, StatusRev::Rev(change.rev)),
                        None => {
                            tracing::warn!("long-poll subscription lost; subscribing again");
                            break;
                        }
                    }
                }
                _ = housekeeping.tick() => {
                    let Some(inner) = poller.upgrade() else { return };
                    if inner.prune() > 0 {
                        idle_since = None;
                    } else if idle_since.get_or_insert_with(Instant::now).elapsed() >= IDLE_LINGER
                        && inner.stop_if_idle()
                    {
                        return;
                    }
                }
            }
        }
    }
}

/// Reads the `rev` of every watched job once and delivers what changed; `false` if the read
/// failed.
async fn catch_up(inner: &Inner) -> bool {
    let ids = inner.watched_ids();
    if ids.is_empty() {
        return true;
    }
    match Inspector::new(&inner.client).status_revs(&ids).await {
        Ok(revs) => {
            for (id, seen) in ids.iter().zip(revs) {
                inner.deliver(id, seen);
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, waiting = ids.len(), "long-poll catch-up read failed");
            false
        }
    }
}
