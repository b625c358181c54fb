//! This process's identity and lease: who owns the jobs in which processing list.
//!
//! The identity is `host:pid:nonce:generation`: Sidekiq's `host:pid:nonce`, plus the number
//! of identities this process took before. Jobs are fetched only into the
//! processing list of an identity whose lease exists, and the reaper only touches lists
//! whose lease has expired, so a list has one owner at a time. When the lease is lost
//! (Redis restarted, or the process stalled past the TTL) the process takes a fresh
//! identity instead of reviving the old one: late acks aimed at the old list then fail
//! if the reaper has already handed those jobs to someone else.
//!
//! Each identity also keeps, by this process's own clock, when its lease was last renewed,
//! so that the fence (`fence.rs`) can stop its jobs before the lease can have expired.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// One incarnation of this process in Redis.
#[derive(Debug)]
pub struct Identity {
    /// `host:pid:nonce:generation`; its lease and processing-list keys are built from it.
    pub name: String,
    /// When the last call that renewed the lease was sent: Redis ran it later, so the lease
    /// lives at least `lease_ttl` from this instant.
    renewed: Mutex<Instant>,
    /// Cancelled once this process can no longer be sure that the lease is alive: the jobs
    /// held under this identity stop, and nothing more is taken under it.
    pub(crate) fenced: CancellationToken,
    /// Cancelled once the lease is known to be gone (a renewal found it missing): the jobs
    /// still running under this identity are dropped at once, not at the fence's deadline.
    pub(crate) lost: CancellationToken,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Identity {}

impl Identity {
    /// Identity number `generation` of the process `incarnation` (`host:pid:nonce`).
    fn fresh(incarnation: &str, generation: u32) -> Self {
        Self::named(format!("{incarnation}:{generation}"))
    }

    /// An identity called `name`, counted as renewed now.
    pub(crate) fn named(name: String) -> Self {
        Self {
            name,
            renewed: Mutex::new(Instant::now()),
            fenced: CancellationToken::new(),
            lost: CancellationToken::new(),
        }
    }

    /// Records that a call sent at `sent` renewed (or created) the lease.
    pub(crate) fn renewed_at(&self, sent: Instant) {
        let mut renewed = self.renewed.lock().unwrap_or_else(PoisonError::into_inner);
        *renewed = (*renewed).max(sent);
    }

    /// The earliest the lease can expire, for a lease of `ttl`.
    pub(crate) fn lease_deadline(&self, ttl: Duration) -> Instant {
        *self.renewed.lock().unwrap_or_else(PoisonError::into_inner) + ttl
    }
}

/// The process an identity belongs to: `host:pid:nonce`, the same for every identity one
/// process takes (`host:pid:nonce:generation`), so that another process can tell a process
/// that stalled past its lease, and came back, from one that died.
pub(crate) fn incarnation(identity: &str) -> &str {
    identity
        .rsplit_once(':')
        .map_or(identity, |(process, _)| process)
}

/// The current identity, replaced when its lease is lost.
#[derive(Debug)]
pub(crate) struct Membership {
    /// `host:pid:nonce`, drawn once per process.
    incarnation: String,
    /// Identities taken so far.
    generations: std::sync::atomic::AtomicU32,
    /// Process start, epoch seconds (Sidekiq's `started_at`, the same for every identity).
    pub(crate) started_at: f64,
    current: Mutex<Arc<Identity>>,
    /// Held across "replace the identity" and "register the new one", so that tasks noticing
    /// the same loss do not each make a new identity.
    pub(crate) renewing: tokio::sync::Mutex<()>,
}

impl Membership {
    pub(crate) fn new(host: String) -> Self {
        let nonce = format!("{:012x}", fastrand::u64(..) & 0xffff_ffff_ffff);
        let incarnation = format!("{host}:{}:{nonce}", std::process::id());
        let first = Arc::new(Identity::fresh(&incarnation, 0));
        Self {
            incarnation,
            generations: std::sync::atomic::AtomicU32::new(1),
            started_at: queue_core::Timestamp::now().as_secs_f64(),
            current: Mutex::new(first),
            renewing: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn current(&self) -> Arc<Identity> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A new identity, not yet in use.
    pub(crate) fn fresh(&self) -> Arc<Identity> {
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Arc::new(Identity::fresh(&self.incarnation, generation))
    }

    /// Makes `fresh` (already registered) the current identity.
    pub(crate) fn install(&self, fresh: Arc<Identity>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = fresh;
    }
}

/// The host part of identities: `DYNO` on the platform, else the machine's host name.
pub(crate) fn host_name() -> String {
    std::env::var("DYNO")
        .ok()
        .filter(|d| !d.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
