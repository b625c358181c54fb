//! Running one job attempt in its own task: the wait for a slot, timeout, panic capture,
//! hand-back at shutdown.

use futures_util::FutureExt;
use queue_core::JobPayload;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::ack::Ack;
use crate::cancels::CancelHandle;
use crate::context::{JobContext, Reports};
use crate::failure::{Failure, Shown};
use crate::finished_log::Ended;
use crate::hooks::DeadJob;
use crate::membership::Identity;
use crate::registry::Registration;
use crate::settle::{self, Deferral, HandBack};
use crate::shared::Shared;
use queue_core::scripts::Failed;

/// A fetched job about to run.
pub(crate) struct Started {
    pub(crate) ident: Arc<Identity>,
    pub(crate) raw: Vec<u8>,
    pub(crate) job: JobPayload,
    pub(crate) reg: Registration,
    /// Fired by an operator's cancel (`cancels.rs`); dropped when the job ends.
    pub(crate) cancel: CancelHandle,
    /// Whether the job has a status record to keep true: `start.lua` marked one running.
    /// Its registered type's `TRACK_STATUS` decides only whether a missing one is made; a
    /// record that an enqueuer wrote for a type this worker does not track is still kept.
    pub(crate) tracked: bool,
}

/// How an attempt ended.
enum Outcome {
    Succeeded(serde_json::Value),
    Failed(Failure),
    HandBack,
}

/// Waits for a free slot, runs the job, then records its outcome. `unsettled` is released when
/// the outcome is sent, so that the exchange can take another job.
pub(crate) async fn run(
    shared: Arc<Shared>,
    started: Started,
    unsettled: OwnedSemaphorePermit,
    slots: Arc<Semaphore>,
    acks: mpsc::UnboundedSender<Ack>,
) {
    let Started {
        ident,
        raw,
        job,
        reg,
        cancel: requested,
        tracked,
    } = started;
    let Some(slot) = wait_for_slot(&shared, &ident, &slots, &requested.requested).await else {
        // A cancelled job's record says so: handing it back drops it (`requeue.lua`).
        let why = if requested.requested.is_cancelled() {
            "as an operator cancelled it, before it started"
        } else if shared.quiet.is_cancelled() {
            "at shutdown, before it started"
        } else if ident.fenced.is_cancelled() {
            "as its lease went unrenewed, before it started"
        } else {
            "after waiting its longest for a free slot"
        };
        hand_back(&shared, &ident, &raw, why).await;
        drop(unsettled);
        shared.room.freed();
        return;
    };
    let permit = (unsettled, slot);
    if let Some(deadline) = crate::expiry::deadline_of(&job)
        && !crate::expiry::runs_before_deadline(&shared, &ident, &raw, &job, deadline).await
    {
        release_unacked(&shared, permit);
        return;
    }
    let timeout = crate::expiry::timeout_of(&job)
        .or(reg.timeout)
        .unwrap_or(shared.config.default_job_timeout);
    if let Some(limit) = reg.concurrency_limit {
        match crate::limit::acquire(&shared, &ident, &job, limit).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(job_id = %job.jid, class = %job.class, limit, "class at its concurrency limit; deferred");
                if let Err(e) =
                    settle::defer(&shared, &ident, &raw, &job, Deferral::OverLimit).await
                {
                    tracing::error!(job_id = %job.jid, error = %e,
                        "could not defer the job; the audit hands it back to its queue");
                }
                release_unacked(&shared, permit);
                return;
            }
            Err(e) => {
                tracing::error!(job_id = %job.jid, error = %e,
                    "could not take a concurrency slot; the audit hands the job back to its queue");
                shared.in_flight.remove(&raw);
                release_unacked(&shared, permit);
                return;
            }
        }
    }
    crate::unique::release_at(&shared, &job, crate::unique::Moment::Started).await;
    shared.busy.fetch_add(1, Ordering::Relaxed);
    shared.extensions.metrics.started();
    let began = Instant::now();
    let cancel = shared.hand_back.child_token();
    let ctx = JobContext {
        id: job.jid.clone(),
        attempt: job.attempt(),
        queue: job.queue.clone(),
        tracked,
        reports: Reports::Redis(shared.client.clone()),
        cancel: cancel.clone(),
        slot_leases: shared.slot_leases.clone(),
    };
    let outcome = match crate::perform::attempt(&shared.extensions.middleware, &reg, &job, ctx) {
        Err(e) => {
            // serde's message quotes the offending value, which may be a secret: the log
            // gets its category and position only, and the status record and dead set
            // (which web pages show) not even that.
            tracing::error!(job_id = %job.jid, class = %job.class, error = %without_values(&e),
                "arguments do not fit the job type");
            Outcome::Failed(Failure::dead(
                "arguments do not fit the job type (details in the worker log)",
            ))
        }
        Ok(fut) => {
            // The handler runs inside this task (one task per job, no extra hand-off);
            // a panic is caught here, and timeout or shutdown drops the future, which
            // cancels it at its next await.
            let mut attempt = AssertUnwindSafe(fut).catch_unwind();
            let stopped = || shared.hand_back.is_cancelled() || ident.fenced.is_cancelled();
            let ended = |finished: std::thread::Result<Result<serde_json::Value, Failure>>| {
                match finished {
                    Ok(Ok(value)) => Outcome::Succeeded(value),
                    // The job saw the shutdown's or the fence's cancellation before this
                    // select did and returned an error: that is the hand-back, not a failed
                    // attempt (which would send it to the retry set for 15 s or more).
                    Ok(Err(_)) if stopped() => Outcome::HandBack,
                    Ok(Err(failure)) => Outcome::Failed(failure),
                    Err(panic) => Outcome::Failed(Failure::panic(panic_message(panic))),
                }
            };
            tokio::select! {
                finished = &mut attempt => ended(finished),
                _ = tokio::time::sleep(timeout) => {
                    cancel.cancel();
                    Outcome::Failed(Failure::with_class(
                        "Timeout",
                        format!("timeout: job ran longer than {:?}", timeout),
                    ))
                }
                _ = shared.hand_back.cancelled() => {
                    cancel.cancel();
                    Outcome::HandBack
                }
                _ = requested.requested.cancelled() => {
                    // An operator cancelled it: its record says so already, so however it
                    // ends (but a success, whose work is done) it is dropped, not retried
                    // (fail.lua). A job that ignores the cancel is dropped after the grace.
                    cancel.cancel();
                    tracing::info!(job_id = %job.jid, "job cancelled by an operator; asking it to stop");
                    tokio::select! {
                        biased;
                        finished = &mut attempt => ended(finished),
                        _ = tokio::time::sleep(shared.config.cancel_grace) => {
                            Outcome::Failed(Failure::with_class(
                                "Cancelled",
                                "cancelled, and still running when the grace ran out",
                            ))
                        }
                        // Handed back, it is dropped on the way: its record says cancelled.
                        _ = shared.hand_back.cancelled() => Outcome::HandBack,
                        _ = ident.fenced.cancelled() => Outcome::HandBack,
                    }
                }
                _ = ident.fenced.cancelled() => {
                    // Cooperatively first; dropped before the lease can have expired, so
                    // that it never runs here and elsewhere at once (`fence.rs`).
                    cancel.cancel();
                    let hard = crate::fence::hard_stop(&ident, shared.config.lease_ttl);
                    tokio::select! {
                        biased;
                        _ = ident.lost.cancelled() => Outcome::HandBack,
                        finished = &mut attempt => ended(finished),
                        _ = tokio::time::sleep_until(hard) => Outcome::HandBack,
                    }
                }
            }
        }
    };
    shared.busy.fetch_sub(1, Ordering::Relaxed);
    shared.extensions.metrics.stopped();
    let took = began.elapsed();
    let cancelled_by_operator = requested.requested.is_cancelled();
    drop(requested);
    match &outcome {
        Outcome::Succeeded(_) => {
            shared.finished_since_beat.fetch_add(1, Ordering::Relaxed);
        }
        Outcome::Failed(_) => {
            shared.finished_since_beat.fetch_add(1, Ordering::Relaxed);
            if !cancelled_by_operator {
                shared.failed_since_beat.fetch_add(1, Ordering::Relaxed);
            }
        }
        Outcome::HandBack => {}
    }
    if reg.concurrency_limit.is_some() {
        crate::limit::release(&shared, &ident, &job).await;
    }
    let jid = job.jid.clone();
    match outcome {
        Outcome::Succeeded(value) => {
            let mut result = if value.is_null() {
                String::new()
            } else {
                value.to_string()
            };
            let cap = shared.client.config().max_payload_bytes;
            if result.len() > cap {
                // A huge result would sit in Redis for the whole retention on a small plan.
                tracing::warn!(job_id = %jid, bytes = result.len(), cap, "job result over the size cap; not stored");
                result = serde_json::json!({ "result_omitted": "over the size cap", "bytes": result.len() })
                    .to_string();
            }
            shared
                .extensions
                .ended(jid.as_str(), &job.class, Ended::Succeeded, took);
            // Before the ack is sent: an equal enqueue that comes in between queues a fresh
            // run, which is what "unique until it succeeds" promises.
            crate::unique::release_at(&shared, &job, crate::unique::Moment::Succeeded).await;
            // Released before the ack is sent, so the exchange that reads the ack already
            // sees the room it leaves.
            release(&shared, permit);
            let _ = acks.send(Ack {
                ident,
                raw,
                jid: jid.to_string(),
                tracked,
                retried: job.error_message.is_some(),
                result: Some(result),
                resent: false,
                retention: Ack::retention_of(&reg, &shared.client),
            });
            return;
        }
        Outcome::Failed(Failure::OverLimit { limiter, wait, .. }) => {
            tracing::debug!(job_id = %jid, class = %job.class, limiter = %limiter, "over a limiter; deferred");
            if let Err(e) =
                settle::defer(&shared, &ident, &raw, &job, Deferral::Limited(wait)).await
            {
                tracing::error!(job_id = %jid, error = %e,
                    "could not defer the job; the audit hands it back to its queue");
            }
        }
        Outcome::Failed(failure) => {
            // What is stored is what anyone holding the status URL reads: see `failure.rs`.
            let failure = failure.redacted();
            if !cancelled_by_operator {
                tracing::warn!(job_id = %jid, class = %job.class, attempt = job.attempt(),
                    error = %Shown(&failure), "job failed");
            }
            let class = job.class.clone();
            let as_ran = shared.extensions.hooks.wants_deaths().then(|| job.clone());
            let unique = crate::unique::held(&job);
            match settle::fail(&shared, &ident, &raw, job, &failure, tracked).await {
                Ok(Failed::Dead) => {
                    tracing::warn!(job_id = %jid, "job moved to the dead set");
                    if let Some(held) = &unique {
                        held.release_at(&shared, crate::unique::Moment::Died).await;
                    }
                    let ext = &shared.extensions;
                    ext.ended(jid.as_str(), &class, Ended::Dead, took);
                    if let Some(job) = as_ran {
                        ext.hooks.died(DeadJob::new(job, &failure)).await;
                    }
                }
                Ok(Failed::Retrying) => {
                    shared
                        .extensions
                        .ended(jid.as_str(), &class, Ended::Failed, took);
                }
                Ok(Failed::Cancelled) => {
                    tracing::info!(job_id = %jid, "job was cancelled; dropped, not retried")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(job_id = %jid, error = %e,
                    "could not record the failure; the audit hands the job back and it runs again"),
            }
            shared.in_flight.remove(&raw);
        }
        Outcome::HandBack => {
            let when = if ident.fenced.is_cancelled() {
                "as its lease went unrenewed"
            } else {
                "at shutdown"
            };
            let why = HandBack::Interrupted(when);
            if let Err(e) = settle::hand_back(&shared, &ident, &raw, why).await {
                tracing::error!(error = %e,
                    "could not hand the job back; it stays in the processing list for recovery");
            }
        }
    }
    release_unacked(&shared, permit);
}

/// A free slot at once, or after waiting up to `prefetch_max_wait`; `None` when the wait ran
/// out or the worker went quiet (the job has not started, so it goes back to its queue for
/// an idle worker to take, rather than wait behind long jobs here), or an operator cancelled
/// the job meanwhile (it must not start at all).
async fn wait_for_slot(
    shared: &Shared,
    ident: &Identity,
    slots: &Arc<Semaphore>,
    cancelled: &CancellationToken,
) -> Option<OwnedSemaphorePermit> {
    if shared.quiet.is_cancelled() || ident.fenced.is_cancelled() || cancelled.is_cancelled() {
        return None;
    }
    // The common case, with no timer armed.
    if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
        return Some(slot);
    }
    tokio::select! {
        biased;
        _ = shared.quiet.cancelled() => None,
        _ = ident.fenced.cancelled() => None,
        _ = cancelled.cancelled() => None,
        slot = Arc::clone(slots).acquire_owned() => slot.ok(),
        _ = tokio::time::sleep(shared.config.prefetch_max_wait) => None,
    }
}

/// Frees the job's slot and its place among the jobs taken, and counts it as finished, which
/// lets the exchange fetch ahead while slots keep turning over.
fn release(shared: &Shared, permit: (OwnedSemaphorePermit, OwnedSemaphorePermit)) {
    drop(permit);
    shared.room.finished_one();
    // The ack wakes this slot's exchange; the other slots share the room.
    shared.room.freed_by_ack();
}

/// [`release`] for a job that ends without an ack (failed, deferred, handed back): no ack
/// will wake the exchange, so every exchange is told that there is room.
fn release_unacked(shared: &Shared, permit: (OwnedSemaphorePermit, OwnedSemaphorePermit)) {
    release(shared, permit);
    shared.room.freed();
}

/// Puts a job that did not finish back at the front of its queue; `when` ends the log line.
pub(crate) async fn hand_back(shared: &Shared, ident: &Identity, raw: &[u8], when: &'static str) {
    if let Err(e) = settle::hand_back(shared, ident, raw, HandBack::Unfinished(when)).await {
        tracing::error!(error = %e,
            "could not hand the job back; it stays in the processing list for recovery");
    }
}

/// What an argument mismatch says without quoting the arguments: serde's category and the
/// position in the arguments' JSON.
fn without_values(e: &queue_core::Error) -> String {
    match e {
        queue_core::Error::ArgumentMismatch { class, source } => format!(
            "arguments of job {} do not match its type ({:?} error at line {} column {})",
            crate::retry::for_log(class),
            source.classify(),
            source.line(),
            source.column()
        ),
        other => other.to_string(),
    }
}

pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic with a non-string payload".to_owned());
    format!("panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mismatch_is_logged_without_the_argument_values() {
        let source = serde_json::from_str::<u32>(r#""s3cret-token""#).unwrap_err();
        let e = queue_core::Error::ArgumentMismatch {
            class: "Charge".into(),
            source,
        };
        assert!(
            e.to_string().contains("s3cret-token"),
            "serde quotes the value"
        );
        let logged = without_values(&e);
        assert!(!logged.contains("s3cret"), "{logged}");
        assert!(
            logged.contains("Charge") && logged.contains("column"),
            "{logged}"
        );
    }
}
