//! Dispatch: turns the entries a cycle took into runners, after sorting out bad input,
//! unknown job types, and jobs cancelled before they started.

use queue_core::JobPayload;
use queue_core::scripts::{self, Mark, StartJob, TakenJob};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use crate::ack::Ack;
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
    mark: Mark,
}

/// Starts a runner per runnable job, each holding one of `permits` (one per entry taken).
/// Returns the acks of jobs that were cancelled before they started, for the next cycle.
///
/// `acks` is `None` once the worker is quiet: jobs of a call that was already out at that
/// moment are handed straight back instead of started.
pub(crate) async fn dispatch(
    shared: &Arc<Shared>,
    ident: &Arc<Identity>,
    taken: Vec<TakenJob>,
    mut permits: Vec<OwnedSemaphorePermit>,
    slots: &Arc<Semaphore>,
    acks: Option<&mpsc::UnboundedSender<Ack>>,
    running: &TaskTracker,
) -> Vec<Ack> {
    let mut runnable = Vec::with_capacity(taken.len());
    for TakenJob { raw, mark } in taken {
        let Some(job) = settle::parse_or_bury(shared, ident, &raw).await else {
            shared.in_flight.remove(&raw);
            continue;
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
            runner::hand_back(shared, ident, &raw, "at shutdown, before it started").await;
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
    let mut flags: Vec<bool> = jobs.iter().map(|j| j.mark != Mark::Cancelled).collect();
    // `ack_fetch.lua` already marked the jobs that have a record; only tracked jobs without
    // one (pushed by another client, or not JSON to Lua) need a record made here.
    let tracked: Vec<usize> = (0..jobs.len())
        .filter(|i| {
            let j = &jobs[*i];
            j.reg.track_status && !matches!(j.mark, Mark::Running | Mark::Cancelled)
        })
        .collect();
    let starts: Vec<StartJob<'_>> = tracked
        .iter()
        .map(|&i| {
            let job = &jobs[i].job;
            StartJob {
                jid: job.jid.as_str(),
                attempt: job.attempt(),
                queue: &job.queue,
                class: &job.class,
            }
        })
        .collect();
    let started = scripts::start(&shared.client, &starts).await?;
    for (&i, s) in tracked.iter().zip(started) {
        flags[i] = s == scripts::Started::Run;
    }
    Ok(flags)
}
