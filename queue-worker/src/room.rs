//! The room a worker process has for jobs: how many it has taken and not settled, over all
//! the queue slots it works, and the bell that tells every slot's exchange when some is
//! freed.
//!
//! One count per process, not per slot: when queues are spread over a cluster's slots
//! (`queue_slots.rs`), each slot has its own exchange, and a count of its own would let each
//! take the whole concurrency and prefetch for itself, so that a process working N queues
//! took N times what it can run: the surplus waited `prefetch_max_wait`, went back to its
//! queue, and was taken again, while other processes could not have it.
//!
//! The jobs finished are counted here too, over the process: each exchange sizes its
//! prefetch by what finished since its own last fetch, so a queue kept waiting sees more
//! room, not less (counted per slot, the queue that turned over took all the prefetch room
//! and the others next to nothing).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{Semaphore, watch};

/// The jobs taken and not settled, and the bell rung when one is.
#[derive(Debug)]
pub(crate) struct Room {
    /// One permit per job taken and not yet settled (running or waiting for a slot).
    unsettled: Arc<Semaphore>,
    capacity: usize,
    /// Held while an exchange works out how many places it may take and takes them, so
    /// that two slots' exchanges do not both count the same free places.
    taking: Mutex<()>,
    /// Jobs the process finished, ever (wrapping): how fast its slots turn over.
    finished: AtomicUsize,
    /// Whether several queue slots' exchanges take from it (queues spread over a cluster).
    shared: bool,
    /// Counts releases; every exchange watches it, so none misses one (a `Notify` wakes one
    /// waiter, and the one woken may have nothing to fetch while another does).
    freed: watch::Sender<u64>,
}

impl Room {
    /// Room for `capacity` jobs taken at once (concurrency + prefetch), shared by the
    /// exchanges of `slots` queue slots.
    pub(crate) fn new(capacity: usize, slots: usize) -> Self {
        Self {
            unsettled: Arc::new(Semaphore::new(capacity)),
            capacity,
            taking: Mutex::new(()),
            finished: AtomicUsize::new(0),
            shared: slots > 1,
            freed: watch::Sender::new(0),
        }
    }

    /// Jobs taken and not settled now.
    pub(crate) fn in_use(&self) -> usize {
        self.capacity
            .saturating_sub(self.unsettled.available_permits())
    }

    /// Places for as many jobs as `room` says for the jobs in use now (`None` when none):
    /// the count and the take are one step for all the process's exchanges.
    pub(crate) fn take(
        &self,
        room: impl FnOnce(usize) -> usize,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let _one_at_a_time = self.taking.lock().unwrap_or_else(PoisonError::into_inner);
        let n = room(self.in_use()).min(self.unsettled.available_permits());
        if n == 0 {
            return None;
        }
        let n = u32::try_from(n).ok()?;
        Arc::clone(&self.unsettled).try_acquire_many_owned(n).ok()
    }

    /// Tells every exchange to look at the room again (a job settled, or left its place
    /// without an ack, or the identity changed). Call it after the place was given back.
    pub(crate) fn freed(&self) {
        self.freed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// [`Room::freed`] for a job whose ack is on its way to its own slot's exchange, which
    /// the ack wakes: only the other slots' exchanges need the bell.
    pub(crate) fn freed_by_ack(&self) {
        if self.shared {
            self.freed();
        }
    }

    /// Counts a job finished (its places given back).
    pub(crate) fn finished_one(&self) {
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Jobs finished so far (wrapping; compare with `wrapping_sub`).
    pub(crate) fn finished(&self) -> usize {
        self.finished.load(Ordering::Relaxed)
    }

    /// What an exchange waits on for [`Room::freed`].
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.freed.subscribe()
    }
}
