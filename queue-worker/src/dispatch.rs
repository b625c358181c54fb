//! Dispatch: turns the entries a cycle took into runners, after sorting out bad input,
//! unknown job types, and jobs cancelled before they started (`start.lua` marks the rest
//! running in one call).

use queue_core::scripts::{self, StartJob, Started as Mark};
use queue_core::{JobPayload, Timestamp};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use crate::ack::Ack;
use crate::cancels::CancelHandle;
use crate::membership::Identity;
use crate::registry::Registration;
use crate::runner::{self, Started};
use crate::settle::{self, Deferral};
use crate::shared::Shared;

/// A parsed entry of a known type.
struct Runnable {
    raw: Vec<u8>,
    job: JobPayload,
    reg: Registration,
    /// Registered before `start.lua` runs, so that a cancel arriving once the record says
    /// running reaches this job (`cancels.rs`).
    cancel: CancelHandle,
}

/// Starts a runner per runnable job, each holding one of `permits` (one per entry taken),
/// and sends the acks of jobs cancelled before they started. Runs in a task of its own, so
/// that the exchange sends its next call while `start.lua` runs; when it ends, the permits
/// it did not use are free, and the exchange is told.
///
/// `acks` is `None` once the worker is quiet: jobs of a call that was already out at that
/// moment are handed straight back instead of started.
pub(crate) async fn dispatch(
    shared: &Arc<Shared>,
    ident: &Arc<Identity>,
    taken: Vec<Vec<u8>>,
    mut permits: Vec<OwnedSemaphorePermit>,
    slots: &Arc<Semaphore>,
    acks: Option<mpsc::UnboundedSender<Ack>>,
    running: &TaskTracker,
) {
    let mut runnable = Vec::with_capacity(taken.len());
    for raw in taken {
        let Some(job) = settle::parse_or_bury(shared, ident, &raw).await else {
            shared.in_flight.remove(&raw);
            continue;
        };
        match shared.registry.get(&job.class) {
            Some(reg) => runnable.push(Runnable {
                cancel: shared.cancels.register(job.jid.as_str()),
                raw,
                job,
                reg: reg.clone(),
            }),
            None => {
                // During a deploy old and new code run side by side: a type this process does
                // not know is retried later: not dropped, not counted, and no retry used up.
                tracing::warn!(job_id = %job.jid, class = crate::retry::for_log(&job.class), "unknown job type; deferring it to the retry set");
                if let Err(e) =
                    settle::defer(shared, ident, &raw, &job, Deferral::UnknownClass).await
                {
                    tracing::error!(error = %e, "could not defer an unknown job; the audit will retry");
                }
            }
        }
    }
    let marks = match mark_started(shared, &runnable).await {
        Ok(marks) => marks,
        Err(e) => {
            // Whether any was cancelled is unknown: run none. They go back to their queues
            // (or, if Redis refuses that too, the audit hands them back later), and a
            // cancelled one is dropped on the way.
            tracing::warn!(error = %e, jobs = runnable.len(), "could not mark jobs running; handing them back");
            for r in runnable {
                runner::hand_back(shared, ident, &r.raw, "as it could not be marked running").await;
            }
            drop(permits);
            shared.room.freed();
            return;
        }
    };
    for (r, mark) in runnable.into_iter().zip(marks) {
        let Runnable {
            raw,
            job,
            reg,
            cancel,
        } = r;
        if mark == Mark::Cancelled {
            tracing::info!(job_id = %job.jid, "job was cancelled before it started; skipping");
            match &acks {
                Some(acks) => {
                    let _ = acks.send(Ack {
                        ident: Arc::clone(ident),
                        raw,
                        jid: job.jid.to_string(),
                        tracked: reg.track_status,
                        retried: job.error_message.is_some(),
                        result: None,
                        resent: false,
                        retention: Ack::retention_of(&reg, &shared.client),
                    });
                }
                // Quiet: handing it back drops it, since its record says cancelled.
                None => runner::hand_back(shared, ident, &raw, "at shutdown").await,
            }
            continue;
        }
        let Some(acks) = &acks else {
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
            cancel,
            tracked: mark == Mark::Running,
        };
        running.spawn(runner::run(
            Arc::clone(shared),
            started,
            permit,
            Arc::clone(slots),
            acks.clone(),
        ));
    }
    // Permits not used (cancelled, buried, deferred jobs) are free once this returns.
    drop(permits);
    shared.room.freed();
}

/// Marks `jobs` running (creating the records tracked jobs lack); one mark per job.
async fn mark_started(shared: &Shared, jobs: &[Runnable]) -> queue_core::Result<Vec<Mark>> {
    let starts: Vec<StartJob<'_>> = jobs
        .iter()
        .map(|r| StartJob {
            jid: r.job.jid.as_str(),
            attempt: r.job.attempt(),
            queue: &r.job.queue,
            class: &r.job.class,
            tracked: r.reg.track_status,
        })
        .collect();
    scripts::start(&shared.client, &starts, Timestamp::now()).await
}
