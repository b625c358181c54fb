//! Global concurrency limits per job class, shared by every worker process.
//!
//! A limited job takes a slot (`limit_acquire.lua`) before it runs and gives it back when
//! it ends. When the class is full, the job goes back to the schedule set with a growing,
//! jittered delay (`settle::defer`): no failure is counted and no retry is used up. A slot
//! held by a process that dies expires after the job's timeout plus a margin.

use queue_core::JobPayload;
use queue_core::scripts::{self, Slot};
use std::time::Duration;

use crate::membership::Identity;
use crate::shared::{Shared, retry_transient};

/// Slack added to a job's timeout for the lifetime of its slot.
const SLOT_MARGIN: Duration = Duration::from_secs(60);

/// The member of the class's slot set held by one job run.
fn holder(ident: &Identity, job: &JobPayload) -> String {
    format!("{}:{}", ident.name, job.jid)
}

/// Tries to take a slot for `job`; true when it may run.
pub(crate) async fn acquire(
    shared: &Shared,
    ident: &Identity,
    job: &JobPayload,
    limit: u32,
    timeout: Duration,
) -> queue_core::Result<bool> {
    let member = holder(ident, job);
    let lifetime = timeout.saturating_add(SLOT_MARGIN);
    let slot = retry_transient("taking a concurrency slot", || {
        scripts::limit_acquire(&shared.client, &job.class, &member, limit, lifetime)
    })
    .await?;
    Ok(slot == Slot::Taken)
}

/// Gives the slot back. A failure only delays the slot's reuse until it expires.
pub(crate) async fn release(shared: &Shared, ident: &Identity, job: &JobPayload) {
    let member = holder(ident, job);
    if let Err(e) = scripts::limit_release(&shared.client, &job.class, &member).await {
        tracing::warn!(error = %e, job_id = %job.jid, "could not release a concurrency slot; it expires on its own");
    }
}
