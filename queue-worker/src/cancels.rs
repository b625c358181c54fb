//! Cancel requests for running jobs: the jobs this process runs, by id, each with the token
//! that an operator's cancel fires.
//!
//! `cancel.lua` marks a running job's record cancelled and publishes `:cancel <id>` on the
//! wake channel; the wake listener fires the token here, and the job's `ctx.cancelled()`
//! fires with it (`runner.rs`). A job is registered before `start.lua` marks it running, so a
//! cancel that lands between the two is not missed; a notice lost while the subscription was
//! down is caught by the listener's read of these jobs' records after it resubscribes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

/// The running jobs of this process that can be cancelled, by id.
#[derive(Debug, Default)]
pub(crate) struct Cancels {
    // A job id is unique, but a crafted or duplicated entry may run twice here at once: each
    // run has its own ticket.
    running: Mutex<HashMap<String, Vec<(u64, CancellationToken)>>>,
    next_ticket: AtomicU64,
}

/// One job's registration; dropping it forgets the job.
#[derive(Debug)]
pub(crate) struct CancelHandle {
    cancels: Arc<Cancels>,
    jid: String,
    ticket: u64,
    /// Fired when an operator cancels the job.
    pub(crate) requested: CancellationToken,
}

impl Cancels {
    /// Registers job `jid` until the handle is dropped.
    pub(crate) fn register(self: &Arc<Self>, jid: &str) -> CancelHandle {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let requested = CancellationToken::new();
        self.lock()
            .entry(jid.to_owned())
            .or_default()
            .push((ticket, requested.clone()));
        CancelHandle {
            cancels: Arc::clone(self),
            jid: jid.to_owned(),
            ticket,
            requested,
        }
    }

    /// Fires the cancel of job `jid`; false when it does not run here.
    pub(crate) fn cancel(&self, jid: &str) -> bool {
        match self.lock().get(jid) {
            Some(runs) => {
                runs.iter().for_each(|(_, token)| token.cancel());
                true
            }
            None => false,
        }
    }

    /// The ids of the jobs registered now.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<(u64, CancellationToken)>>> {
        // The map stays consistent even if a holder panicked: every change is one call.
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for CancelHandle {
    fn drop(&mut self) {
        let mut running = self.cancels.lock();
        if let Some(runs) = running.get_mut(&self.jid) {
            runs.retain(|(ticket, _)| *ticket != self.ticket);
            if runs.is_empty() {
                running.remove(&self.jid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_reaches_every_run_of_the_id_until_it_ends() {
        let cancels = Arc::new(Cancels::default());
        let a = cancels.register("a");
        let a_again = cancels.register("a");
        let b = cancels.register("b");
        assert!(cancels.cancel("a"));
        assert!(a.requested.is_cancelled() && a_again.requested.is_cancelled());
        assert!(!b.requested.is_cancelled());
        drop(a);
        assert!(cancels.cancel("a"));
        drop(a_again);
        assert!(!cancels.cancel("a"));
        assert_eq!(cancels.ids(), ["b"]);
        drop(b);
        assert!(cancels.ids().is_empty());
    }
}
