//! Dispatch: turns the entries a cycle took into runners, after sorting out bad input,
//! unknown job types, and jobs cancelled before they started.

use queue_core::{JobPayload, Timestamp};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use crate::ack::Ack;
use crate::in_flight::{MARK_CANCELLED, MARK_RUNNING};
use crate::membership::Identity;
use crate::registry::Registration;
use crate::runner::{self, Started};
use crate::settle::{self, Deferral};
use crate::shared::Shared;

/// A parsed entry of a known type, with its mark from `ack_fetch.lua`.
struct Runnable {
    raw: Vec<u8>,
    job: JobPayload,
    reg: Registration,
    mark: i64,
}

/// Starts a runner per runnable job, each holding one of `permits` (one per entry taken).
/// Returns the acks of jobs that were cancelled before they started, for the next cycle.
///
/// `acks` is `None` once the worker is quiet: jobs of a call that was already out at that
/// moment are handed straight back instead of started.
pub(crate) async fn dispatch(
    shared: &Arc<Shared>,
    ident: &Arc<Identity>,
    taken: Vec<(Vec<u8>, i64)>,
    mut permits: Vec<OwnedSemaphorePermit>,
    slots: &Arc<Semaphore>,
    acks: Option<&mpsc::UnboundedSender<Ack>>,
    running: &TaskTracker,
) -> Vec<Ack> {
    let mut runnable = Vec::with_capacity(taken.len());
    for (raw, mark) in taken {
        let job = match JobPayload::from_json(&raw) {
            Ok(job) => job,
            Err(e) => {
                let reason = format!("not valid job JSON: {e}");
                if let Err(e) = settle::bury_malformed(shared, ident, &raw, &reason).await {
                    tracing::error!(error = %e, "could not bury a malformed entry; the audit will retry");
                }
                shared.in_flight.remove(&raw);
                continue;
            }
        };
        match shared.registry.get(&job.class) {
            Some(reg) => runnable.push(Runnable {
                raw,
                job,
                reg: reg.clone(),
                mark,
            }),
            None => {
                // During a deploy old and new code run side by side: a type this process does
                // not know is retried later: not dropped, not counted, and no retry used up.
                tracing::warn!(job_id = %job.jid, class = %job.class, "unknown job type; deferred to the retry set");
                if let Err(e) =
                    settle::defer(shared, ident, &raw, &job, Deferral::UnknownClass).await
                {
                    tracing::error!(error = %e, "could not defer an unknown job; the audit will retry");
                }
                shared.in_flight.remove(&raw);
            }
        }
    }
    let run_flags = match mark_started(shared, &runnable).await {
        Ok(flags) => flags,
        Err(e) => {
            // The jobs are safe in the processing list; run them anyway rather than strand
            // them until a restart: the status record is advisory.
            tracing::warn!(error = %e, "could not mark jobs running; running them anyway");
            vec![true; runnable.len()]
        }
    };
    let mut cancelled = Vec::new();
    for (r, run) in runnable.into_iter().zip(run_flags) {
        let Runnable { raw, job, reg, .. } = r;
        if !run {
            tracing::info!(job_id = %job.jid, "job was cancelled before it started; skipping");
            cancelled.push(Ack {
                ident: Arc::clone(ident),
                raw,
                jid: job.jid.to_string(),
                tracked: reg.track_status,
                retried: job.error_message.is_some(),
                result: None,
                resent: false,
            });
            continue;
        }
        let Some(acks) = acks else {
            runner::hand_back(shared, ident, &raw, &job, "at shutdown, before it started").await;
            continue;
        };
        let Some(permit) = permits.pop() else {
            // Unreachable by construction (one permit per entry taken). Leave the job to the
            // audit, which hands it back to its queue.
            tracing::error!(job_id = %job.jid, "no permit for a fetched job");
            shared.in_flight.remove(&raw);
            continue;
        };
        let started = Started {
            ident: Arc::clone(ident),
            raw,
            job,
            reg,
        };
        running.spawn(runner::run(
            Arc::clone(shared),
            started,
            permit,
            Arc::clone(slots),
            acks.clone(),
        ));
    }
    cancelled
}

/// Marks tracked jobs running; returns for each job whether to run it (false: cancelled).
async fn mark_started(shared: &Shared, jobs: &[Runnable]) -> queue_core::Result<Vec<bool>> {
    let mut flags: Vec<bool> = jobs.iter().map(|j| j.mark != MARK_CANCELLED).collect();
    // `ack_fetch.lua` already marked the jobs that have a record; only tracked jobs without
    // one (pushed by another client, or not JSON to Lua) need a record made here.
    let tracked: Vec<usize> = (0..jobs.len())
        .filter(|i| {
            let j = &jobs[*i];
            j.reg.track_status && j.mark != MARK_RUNNING && j.mark != MARK_CANCELLED
        })
        .collect();
    if tracked.is_empty() {
        return Ok(flags);
    }
    let mut inv = queue_core::scripts::START.prepare_invoke();
    for &i in &tracked {
        inv.key(shared.keys.status(jobs[i].job.jid.as_str()));
    }
    inv.arg(format!("{:.6}", Timestamp::now().as_secs_f64()))
        .arg(shared.client.config().status_retention.active.as_secs());
    for &i in &tracked {
        let job = &jobs[i].job;
        inv.arg(runner::attempt_of(job))
            .arg(&job.queue)
            .arg(&job.class);
    }
    let mut conn = shared.client.connection();
    let reply: Vec<i64> = shared.client.bounded(inv.invoke_async(&mut conn)).await?;
    for (&i, flag) in tracked.iter().zip(reply) {
        flags[i] = flag == 1;
    }
    Ok(flags)
}
