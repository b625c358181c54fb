//! Global concurrency limits per job class, shared by every worker process.
//!
//! A limited job takes a slot (`limit_acquire.lua`) before it runs and gives it back when
//! it ends. When the class is full, the job goes back to the schedule set with a growing,
//! jittered delay (`settle::defer`): no failure is counted and no retry is used up. A slot
//! lasts as long as the process's lease and is renewed with it (`slot_leases.rs`): a process
//! that dies holding one gives it back when its jobs are recovered.

use queue_core::JobPayload;
use queue_core::scripts::{self, HeldSlot, Slot, SlotSet};

use crate::membership::Identity;
use crate::shared::{Shared, retry_transient};

/// The member of the class's slot set held by one job run.
fn holder(ident: &Identity, job: &JobPayload) -> String {
    format!("{}:{}", ident.name, job.jid)
}

/// The slot `member` of `job`'s class, as the lease renewal names it.
fn slot(job: &JobPayload, member: String) -> HeldSlot {
    HeldSlot {
        set: SlotSet::Class(job.class.clone()),
        holder: member,
    }
}

/// Tries to take a slot for `job`; true when it may run.
pub(crate) async fn acquire(
    shared: &Shared,
    ident: &Identity,
    job: &JobPayload,
    limit: u32,
) -> queue_core::Result<bool> {
    let member = holder(ident, job);
    let lifetime = shared.slot_leases.lifetime();
    let taken = retry_transient("taking a concurrency slot", || {
        scripts::limit_acquire(&shared.client, &job.class, &member, limit, lifetime)
    })
    .await?;
    if taken == Slot::Taken {
        shared.slot_leases.hold(slot(job, member));
    }
    Ok(taken == Slot::Taken)
}

/// Gives the slot back. A failure only delays the slot's reuse until it expires.
pub(crate) async fn release(shared: &Shared, ident: &Identity, job: &JobPayload) {
    let member = holder(ident, job);
    shared.slot_leases.forget(&slot(job, member.clone()));
    if let Err(e) = scripts::limit_release(&shared.client, &job.class, &member).await {
        tracing::warn!(error = %e, job_id = %job.jid, "could not release a concurrency slot; it expires on its own");
    }
}
