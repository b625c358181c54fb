//! The fence: stops the jobs held under an identity before its lease can have expired.
//!
//! While Redis stalls or cannot be reached, the lease runs out on Redis's clock although the
//! jobs still run here; once it has, any process's reaper hands those jobs to another
//! worker. So that a job never runs twice at the same time, this process stops them first,
//! by its own clock, counting from the last call that renewed the lease (Redis ran it
//! after it was sent, so the lease lives at least `lease_ttl` from the send):
//! - at two thirds of the lease without a renewal (normally one comes every heartbeat, a
//!   third of the lease by default), the identity is fenced: its jobs see
//!   `ctx.cancelled()`, jobs still waiting for a slot go back, nothing more is taken under
//!   it, and the process registers a fresh identity;
//! - a job that has not ended by [`hard_stop`] (a tenth of the lease, at most 1 s, before
//!   the lease can end) is dropped at its next await.
//!
//! Either way the job is handed back to its queue without counting a recovery, as at
//! shutdown. A stall shorter than two thirds of the lease changes nothing.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::membership::Identity;
use crate::shared::Shared;

/// First wait before registering again after a refusal; it doubles up to [`MAX_RETRY`].
const MIN_RETRY: Duration = Duration::from_millis(100);
/// Longest wait between two tries to register a fresh identity.
const MAX_RETRY: Duration = Duration::from_secs(5);

/// When the identity is fenced, for a lease of `ttl`: two thirds of it after the renewal.
fn fence_at(ident: &Identity, ttl: Duration) -> Instant {
    Instant::from_std(ident.lease_deadline(ttl)) - ttl / 3
}

/// When a fenced identity's jobs that are still running are dropped.
pub(crate) fn hard_stop(ident: &Identity, ttl: Duration) -> Instant {
    Instant::from_std(ident.lease_deadline(ttl)) - (ttl / 10).min(Duration::from_secs(1))
}

/// The fence loop: fences the current identity when its lease goes unrenewed too long.
#[derive(Debug)]
pub(crate) struct Fence {
    shared: Arc<Shared>,
}

impl Fence {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Watches until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let shared = &self.shared;
        let ttl = shared.config.lease_ttl;
        let mut retry_in = MIN_RETRY;
        loop {
            let ident = shared.membership.current();
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep_until(fence_at(&ident, ttl)) => {}
            }
            // Renewed meanwhile, or already replaced: look again.
            if *shared.membership.current() != *ident || fence_at(&ident, ttl) > Instant::now() {
                continue;
            }
            if !ident.fenced.is_cancelled() {
                tracing::warn!(identity = %ident.name, lease_ms = ttl.as_millis() as u64,
                    "lease not renewed for two thirds of its time (Redis stalled or unreachable); stopping this identity's jobs before it can expire");
                ident.fenced.cancel();
                retry_in = MIN_RETRY;
            }
            let registered = tokio::select! {
                _ = stop.cancelled() => break,
                registered = crate::heartbeat::reregister(shared, &ident) => registered,
            };
            if !registered {
                // Redis answers but refuses (a full disk, a key of the wrong type): try again
                // later, not at once, or this loop would flood Redis and the log.
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(retry_in) => {}
                }
                retry_in = (retry_in * 2).min(MAX_RETRY);
            }
        }
    }
}
