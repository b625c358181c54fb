//! The concurrency slots this process's running jobs hold, renewed with its lease.
//!
//! A slot (a class's `Job::CONCURRENCY_LIMIT`, or a concurrent limiter's) is taken for the
//! lease's lifetime and extended at each heartbeat while its job runs. A process that dies
//! holding one (SIGKILL, out of memory) therefore gives it back about when its lease expires
//! and its jobs are recovered, not after the job's timeout or an hour: with a limit of 1, a
//! leaked slot would defer every job of the limiter, the recovered one first, until then.

use queue_core::Client;
use queue_core::scripts::{self, HeldSlot};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The slots held now, and how long a slot lasts without a renewal.
#[derive(Debug, Clone)]
pub(crate) struct SlotLeases {
    held: Arc<Mutex<HashSet<HeldSlot>>>,
    lifetime: Duration,
}

impl SlotLeases {
    /// Slots lasting `lifetime` (the process's lease) unless renewed.
    pub(crate) fn new(lifetime: Duration) -> Self {
        Self {
            held: Arc::default(),
            lifetime,
        }
    }

    /// How long a slot taken now lasts unless renewed.
    pub(crate) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Renews `slot` with the lease from now on.
    pub(crate) fn hold(&self, slot: HeldSlot) {
        self.lock().insert(slot);
    }

    /// Stops renewing `slot` (it is being given back).
    pub(crate) fn forget(&self, slot: &HeldSlot) {
        self.lock().remove(slot);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<HeldSlot>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Extends every slot held (one round trip; none when no slot is held). Called after
    /// each renewal of the lease. A failure is logged: the next beat tries again, and the
    /// slots outlive one missed beat as the lease does.
    pub(crate) async fn renew(&self, client: &Client) {
        let slots: Vec<HeldSlot> = self.lock().iter().cloned().collect();
        if slots.is_empty() {
            return;
        }
        if let Err(e) = scripts::slot_renew(client, &slots, self.lifetime).await {
            tracing::warn!(slots = slots.len(), error = %e, "could not renew the concurrency slots held; will retry next beat");
        }
    }
}
