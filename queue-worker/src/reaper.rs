//! The reaper and the audit: the reaper returns the jobs of worker processes that died
//! (their lease expired); the audit returns this process's own orphaned entries.
//!
//! Every worker runs it, so recovery does not wait for a restart. A job that keeps killing
//! its process is not recovered forever: after `max_recoveries` it goes to the dead set.
//!
//! Each pass also audits this process's own processing list: entries nobody here holds
//! (a fetch whose reply was lost, a settle call that gave up) go back to their queues.

use queue_core::scripts::{self, Reaped};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::settle::{self, HandBack};
use crate::shared::Shared;

/// Most jobs claimed by one pass (the loop continues until none are left).
const REAP_BATCH: usize = 100;

/// The reaper loop, with the audit after each pass.
#[derive(Debug)]
pub(crate) struct Reaper {
    shared: Arc<Shared>,
    every: Duration,
    /// Orphans seen by the last audit (handed back when seen again).
    suspects: HashSet<Vec<u8>>,
}

impl Reaper {
    /// Reaps about every `every` (jittered so that workers spread out).
    pub(crate) fn new(shared: Arc<Shared>, every: Duration) -> Self {
        Self {
            shared,
            every,
            suspects: HashSet::new(),
        }
    }

    /// Reaps and audits until `stop`.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let every = self.every;
        loop {
            let jitter = Duration::from_millis(fastrand::u64(0..=every.as_millis() as u64 / 4));
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(every - every / 8 + jitter) => {
                    // Once quiet, claim nothing more: jobs claimed now could be cut off by the
                    // shutdown deadline and counted as one more recovery.
                    if self.shared.quiet.is_cancelled() {
                        continue;
                    }
                    match reap(&self.shared).await {
                        Ok(0) => {}
                        Ok(n) => tracing::warn!(jobs = n, "recovered jobs of dead worker processes"),
                        Err(e) => tracing::warn!(error = %e, "reaper pass failed; will retry"),
                    }
                    match audit(&self.shared, &mut self.suspects).await {
                        Ok(0) => {}
                        Ok(n) => tracing::warn!(jobs = n, "handed back jobs this process had taken but was not running"),
                        Err(e) => tracing::warn!(error = %e, "audit of the processing list failed; will retry"),
                    }
                }
            }
        }
    }
}

/// One full pass: claims and hands back every job of every dead process. Returns how many.
///
/// An identity that fails (a wrong-type key, a hand-back that gave up) does not stop the
/// pass: the others are still reaped, and the first error is returned at the end.
async fn reap(shared: &Shared) -> queue_core::Result<usize> {
    let mut total = 0;
    let mut first_error = None;
    for reaped in shared.client.registered_identities().await? {
        match reap_identity(shared, &reaped).await {
            Ok(Some(n)) => total += n,
            // This process's own lease was lost: it has a new identity now; stop the pass.
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(identity = %reaped, error = %e, "could not reap a dead process; the others are reaped");
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(total), Err)
}

/// Claims and hands back the jobs of `reaped` if its lease has expired. Returns how many, or
/// `None` when the caller's own lease was lost.
async fn reap_identity(shared: &Shared, reaped: &str) -> queue_core::Result<Option<usize>> {
    let mut total = 0;
    loop {
        let ident = shared.membership.current();
        if reaped == ident.name {
            return Ok(Some(total));
        }
        let claimed = {
            let _gate = shared.in_flight.gate.read().await;
            let reply = scripts::reap(
                &shared.client,
                &ident.name,
                reaped,
                REAP_BATCH,
                shared.config.lease_ttl,
            )
            .await?;
            match reply {
                Reaped::Claimed(claimed) => {
                    for raw in &claimed {
                        shared.in_flight.add(raw);
                    }
                    claimed
                }
                Reaped::Alive => return Ok(Some(total)),
                Reaped::LeaseLost => {
                    drop(_gate);
                    crate::heartbeat::lease_lost(shared, &ident).await;
                    return Ok(None);
                }
            }
        };
        let n = claimed.len();
        // Every claimed entry leaves the in-flight set, even after an error, so that the
        // audit can hand back whatever this pass could not.
        let mut first_error = None;
        for raw in claimed {
            if let Err(e) =
                settle::hand_back(shared, &ident, &raw, HandBack::Recovered(reaped)).await
            {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        total += n;
        if n < REAP_BATCH {
            return Ok(Some(total));
        }
    }
}

/// Hands back the entries of this process's processing list that no task here held at two
/// passes in a row (`suspects` carries the first sighting). One sighting is not enough: a
/// runner may have settled an entry (failed, deferred, handed back) between the list read
/// and the in-flight check. Returns how many were handed back.
async fn audit(shared: &Shared, suspects: &mut HashSet<Vec<u8>>) -> queue_core::Result<usize> {
    let ident = shared.membership.current();
    let orphans = {
        let _gate = shared.in_flight.gate.write().await;
        let listed = shared.client.processing_entries(&ident.name).await?;
        let seen_now = shared.in_flight.orphans(listed);
        let (confirmed, fresh): (Vec<_>, Vec<_>) =
            seen_now.into_iter().partition(|raw| suspects.contains(raw));
        *suspects = fresh.into_iter().collect();
        for raw in &confirmed {
            shared.in_flight.add(raw);
        }
        confirmed
    };
    let n = orphans.len();
    let mut first_error = None;
    for raw in orphans {
        if let Err(e) = settle::hand_back(shared, &ident, &raw, HandBack::Orphaned).await {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(n), Err)
}
