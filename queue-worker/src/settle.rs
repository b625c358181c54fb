//! Ending an attempt other than by success: retry, death, burial of bad input, deferral,
//! and the one hand-back used by the runner, the reaper and the audit.
//!
//! Each call moves the job out of a processing list in one script; if the job is no longer
//! there (the reaper gave it to another worker), nothing is written and the late outcome
//! is rejected and logged.

use queue_core::malformed::malformed_wrapper;
use queue_core::scripts::{self, FailTo, Failed, Requeue, Requeued};
use queue_core::{JobId, JobPayload, Timestamp};
use std::future::Future;
use std::time::Duration;

use crate::failure::Failure;
use crate::membership::Identity;
use crate::retry::{backoff_with_jitter, truncate_error};
use crate::shared::{Shared, retry_transient};

pub use queue_core::malformed::MALFORMED_CLASS;

/// Records a failed attempt: rewrites the job with Sidekiq's error fields and moves it to
/// the retry set (with a growing, jittered delay) or, when out of retries, the dead set.
pub(crate) async fn fail(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    mut job: JobPayload,
    failure: &Failure,
    tracked: bool,
) -> queue_core::Result<Failed> {
    let now = Timestamp::now();
    // A crafted count may sit at `u32::MAX`: saturate, which is "out of retries" anyway.
    let retry_count = job.retry_count.map_or(0, |c| c.saturating_add(1));
    job.retry_count = Some(retry_count);
    job.error_class = Some(failure.class().to_owned());
    job.error_message = Some(truncate_error(failure.message()));
    if job.failed_at.is_none() {
        job.failed_at = Some(now);
    } else {
        job.retried_at = Some(now);
    }
    // Sidekiq drops `enqueued_at` outside queue lists; promotion sets it again.
    job.enqueued_at = None;
    let dead = matches!(failure, Failure::Dead { .. }) || retry_count >= job.max_retries();
    let delay = match failure {
        Failure::RetryIn { delay, .. } => *delay,
        _ => backoff_with_jitter(retry_count),
    };
    let rewritten = job.to_json()?;
    let to = if dead {
        FailTo::Dead
    } else {
        FailTo::Retry { delay }
    };
    // The status record shows Sidekiq's "Class: message" line (see `Failure` for what
    // a failure's class and message may contain).
    let error = truncate_error(&format!("{}: {}", failure.class(), failure.message()));
    let failed = settle_failure(
        shared, ident, raw, &rewritten, &job.jid, to, tracked, &error,
    )
    .await?;
    if failed == Failed::NotOwned {
        tracing::warn!(job_id = %job.jid, "late failure rejected: the job is no longer in this process's list (recovered by another worker, or lost with Redis's data)");
    }
    Ok(failed)
}

/// Moves a queue entry that is not valid job JSON to the dead set, wrapped in a job so
/// that Sidekiq's dead-set tools can show it, with the raw bytes (truncated) and the reason.
///
/// When the entry's own jid can be read ([`JobPayload::recover_jid`]), the wrapper carries
/// it, so a search by id finds the buried entry, and the job's status record, which
/// `ack_fetch.lua` may have marked `running`, says `dead` with the reason. A cancelled record
/// stays cancelled: the job did not run either way.
pub(crate) async fn bury_malformed(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    reason: &str,
) -> queue_core::Result<Failed> {
    // The wrapper keeps a lossy text copy for people, while the script removes the exact
    // bytes from the processing list. It keeps the entry's own id when one can be read, so
    // that its status record can say what became of it.
    let own = JobPayload::recover_jid(raw)
        .filter(|jid| (1..=MAX_JID_BYTES).contains(&jid.as_str().len()));
    let tracked = match &own {
        Some(jid) => has_live_record(shared, jid).await?,
        None => false,
    };
    let mut wrapper = malformed_wrapper(raw, &truncate_error(reason), Timestamp::now());
    if let Some(jid) = own {
        wrapper.jid = jid;
    }
    let json = wrapper.to_json()?;
    let buried = settle_failure(
        shared,
        ident,
        raw,
        &json,
        &wrapper.jid,
        FailTo::Dead,
        tracked,
        reason,
    )
    .await?;
    if buried == Failed::Dead {
        tracing::error!(job_id = %wrapper.jid, reason, "malformed queue entry moved to the dead set");
    }
    Ok(buried)
}

/// Whether `jid` has a status record that burying its entry must update: one that exists
/// and is not cancelled. A record that cannot be read (a key of the wrong type) is left
/// alone rather than keep the entry from its burial; a transient error is returned, and the
/// audit tries again.
async fn has_live_record(shared: &Shared, jid: &JobId) -> queue_core::Result<bool> {
    match retry_transient("reading a status record", || shared.client.status(jid)).await {
        Ok(record) => Ok(record.is_some_and(|r| r.state != queue_core::JobState::Cancelled)),
        Err(e) if e.is_transient() => Err(e),
        Err(e) => {
            tracing::warn!(job_id = %jid, error = %e, "status record unreadable; burying the entry without it");
            Ok(false)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn settle_failure(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    rewritten: &str,
    jid: &JobId,
    to: FailTo,
    tracked: bool,
    error: &str,
) -> queue_core::Result<Failed> {
    let c = &shared.config;
    let attempt = scripts::FailedAttempt {
        identity: &ident.name,
        raw,
        rewritten,
        jid: jid.as_str(),
        to,
        tracked,
        error,
        clock_offset_ms: c.clock_offset_ms,
        dead_max_jobs: c.dead_max_jobs,
        dead_max_age: c.dead_max_age,
    };
    retry_transient("recording a failure", || {
        scripts::fail(&shared.client, &attempt)
    })
    .await
}

/// Longest job id a worker accepts from a queue (ours are 32 hex digits, Sidekiq's 24).
const MAX_JID_BYTES: usize = 255;

/// Parses a processing-list entry, or buries it in the dead set when it is not a job.
/// `None` when it was buried (or could not be: the audit tries again later).
pub(crate) async fn parse_or_bury(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
) -> Option<JobPayload> {
    let parsed = JobPayload::from_json(raw).map_err(|e| format!("not valid job JSON: {e}"));
    // An id names the job's status key and is shown in URLs: empty or huge is not an id.
    let checked = parsed.and_then(|job| match job.jid.as_str().len() {
        1..=MAX_JID_BYTES => Ok(job),
        n => Err(format!(
            "its job id is {n} bytes long (1 to {MAX_JID_BYTES} allowed)"
        )),
    });
    match checked {
        Ok(job) => Some(job),
        Err(reason) => {
            if let Err(e) = bury_malformed(shared, ident, raw, &reason).await {
                tracing::error!(error = %e, "could not bury a malformed entry; the audit will retry");
            }
            None
        }
    }
}

/// Why a job goes back to its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandBack<'a> {
    /// This process took it and will not run it: the shutdown came, or no slot came free in
    /// time. The text ends the log line.
    Unfinished(&'static str),
    /// It ran here and was stopped (the shutdown's deadline, or the lease went unrenewed):
    /// it goes back with `handed_back` + 1. The text ends the log line.
    Interrupted(&'static str),
    /// Its worker process (this identity) lost its lease: it goes back with one more
    /// `recovered`, or to the dead set once it has killed `max_recoveries` processes.
    /// Processes that are alive again (they stalled, they did not die) are not counted.
    Recovered(&'a str),
    /// Nobody here holds it (a fetch reply was lost, or settling it gave up): the audit.
    Orphaned,
}

/// The one hand-back: parses `raw` (held in `ident`'s processing list), buries it if it is
/// not a job, otherwise requeues it at the front of its queue; then releases it from the
/// in-flight set, whatever happened, so that the audit can retry what failed here.
pub(crate) async fn hand_back(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    why: HandBack<'_>,
) -> queue_core::Result<()> {
    releasing(shared, raw, hand_back_entry(shared, ident, raw, why)).await
}

/// Runs `settling` for the in-flight entry `raw`, then releases `raw` whatever happened: an
/// entry that could not be settled stays in the processing list, where the audit finds it.
async fn releasing<T>(shared: &Shared, raw: &[u8], settling: impl Future<Output = T>) -> T {
    let settled = settling.await;
    shared.in_flight.remove(raw);
    settled
}

async fn hand_back_entry(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    why: HandBack<'_>,
) -> queue_core::Result<()> {
    let Some(mut job) = parse_or_bury(shared, ident, raw).await else {
        return Ok(());
    };
    let rewritten;
    let pushed: &[u8] = match why {
        HandBack::Unfinished(_) | HandBack::Orphaned => raw,
        HandBack::Interrupted(_) => {
            job.handed_back = Some(job.handed_back.unwrap_or(0).saturating_add(1));
            rewritten = job.to_json()?;
            rewritten.as_bytes()
        }
        HandBack::Recovered(from) => {
            let recovered = count_recovery(shared, &mut job, from).await?;
            if recovered > shared.config.max_recoveries {
                let failure = Failure::dead(format!(
                    "recovered {} times: its worker process died each time it ran this job (killed, out of memory, or crashed)",
                    recovered - 1
                ));
                tracing::error!(job_id = %job.jid, class = crate::retry::for_log(&job.class), "job keeps killing its worker; moved to the dead set");
                // A death releases every unique lifetime, here as in the runner.
                let unique = crate::unique::held(&job);
                let tracked = shared.registry.tracks(&job);
                if matches!(
                    fail(shared, ident, raw, job, &failure, tracked).await?,
                    Failed::Dead
                ) && let Some(held) = unique
                {
                    held.release_at(shared, crate::unique::Moment::Died).await;
                }
                return Ok(());
            }
            tracing::warn!(job_id = %job.jid, class = crate::retry::for_log(&job.class), recovered, "recovered job of a dead worker process");
            rewritten = job.to_json()?;
            rewritten.as_bytes()
        }
    };
    if why == HandBack::Orphaned {
        tracing::warn!(job_id = %job.jid, "job taken but not running here; handing it back");
    }
    let request = Requeue {
        identity: &ident.name,
        raw,
        pushed,
        queue: &job.queue,
        jid: job.jid.as_str(),
        tracked: shared.registry.tracks(&job),
    };
    let requeued = retry_transient("handing a job back", || {
        scripts::requeue(&shared.client, &request)
    })
    .await?;
    match (requeued, why) {
        (Requeued::Queued, HandBack::Unfinished(when) | HandBack::Interrupted(when)) => {
            tracing::info!(job_id = %job.jid, "job handed back to its queue {when}")
        }
        (Requeued::Queued, _) => {}
        (Requeued::Cancelled, _) => {
            tracing::info!(job_id = %job.jid, "job was cancelled before it started; dropped")
        }
        (Requeued::NotOwned, _) => {
            tracing::warn!(job_id = %job.jid, "job is no longer in this process's list (recovered by another worker, or lost with Redis's data)")
        }
    }
    Ok(())
}

/// Counts one more recovery of `job`, whose process `from` (an identity) lost its lease,
/// and returns the count, which is also written into the job with the processes it names.
///
/// Only when the count would bury the job are the processes named looked up: a process
/// that is alive again only stalled past its lease (Redis froze, or the process did), and
/// the job did not kill it, so it is not counted. Counts from before processes were named
/// stay counted.
async fn count_recovery(
    shared: &Shared,
    job: &mut JobPayload,
    from: &str,
) -> queue_core::Result<u32> {
    let max = shared.config.max_recoveries;
    let before = job.recovered.unwrap_or(0);
    let mut named = job.recovered_from.take().unwrap_or_default();
    // A crafted list must not make this loop long: only the last few can matter.
    let keep = usize::try_from(max).unwrap_or(usize::MAX).saturating_add(1);
    named.drain(..named.len().saturating_sub(keep));
    let unnamed = before.saturating_sub(u32::try_from(named.len()).unwrap_or(u32::MAX));
    named.push(crate::membership::incarnation(from).to_owned());
    let mut count = before.saturating_add(1);
    if count > max {
        let mut died = Vec::with_capacity(named.len());
        for process in named {
            if !shared.client.incarnation_alive(&process).await? {
                died.push(process);
            }
        }
        count = unnamed.saturating_add(u32::try_from(died.len()).unwrap_or(u32::MAX));
        named = died;
    }
    job.recovered = Some(count);
    job.recovered_from = Some(named);
    Ok(count)
}

/// Why a job is put back for later without running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Deferral {
    /// Its class is at its global concurrency limit: back to `schedule` after
    /// 0.5 s × 2ⁿ (at most 5 s, so waiting jobs keep their turn), plus up to 50% jitter.
    OverLimit,
    /// This worker does not know its class (old and new code side by side during a deploy):
    /// to `retry`, with Sidekiq's error fields, after Sidekiq's delay for the n-th deferral
    /// (at most an hour). No retry is used up and nothing is counted as processed.
    UnknownClass,
    /// A limiter refused it (`limiter.rs`): back to `schedule` after about as long as the
    /// limiter said (`limiter::over_limit_delay`).
    Limited(Option<Duration>),
}

/// Longest wait of an over-limit job before it is looked at again.
const MAX_LIMIT_DEFERRAL: Duration = Duration::from_secs(5);
/// Deferrals of a job whose class no worker knows before it goes to the dead set: with
/// Sidekiq's delays capped at an hour, about a day, far longer than any deploy.
const MAX_UNKNOWN_DEFERRALS: u32 = 25;
/// Longest wait of a job of an unknown class before it is tried again.
const MAX_UNKNOWN_DEFERRAL: Duration = Duration::from_secs(3600);

/// Puts `job` back for later (see [`Deferral`]), then releases it from the in-flight set.
pub(crate) async fn defer(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    job: &JobPayload,
    why: Deferral,
) -> queue_core::Result<scripts::Deferred> {
    releasing(shared, raw, defer_entry(shared, ident, raw, job, why)).await
}

async fn defer_entry(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    job: &JobPayload,
    why: Deferral,
) -> queue_core::Result<scripts::Deferred> {
    let mut later = job.clone();
    later.enqueued_at = None;
    let (delay, error) = match why {
        Deferral::OverLimit => {
            let n = later.deferred.unwrap_or(0);
            later.deferred = Some(n.saturating_add(1));
            let base = Duration::from_millis(500).saturating_mul(1u32 << n.min(4));
            let delay = base.min(MAX_LIMIT_DEFERRAL);
            let jitter = Duration::from_millis(fastrand::u64(0..=delay.as_millis() as u64 / 2));
            (delay + jitter, None)
        }
        Deferral::Limited(wait) => {
            let n = later.deferred.unwrap_or(0);
            later.deferred = Some(n.saturating_add(1));
            (crate::limiter::over_limit_delay(wait), None)
        }
        Deferral::UnknownClass if later.unknown_class.unwrap_or(0) >= MAX_UNKNOWN_DEFERRALS => {
            // No deploy takes this long: the class is gone for good, not on its way.
            let failure = Failure::dead(format!(
                "no handler registered for job class {:?} after {MAX_UNKNOWN_DEFERRALS} deferrals (about a day)",
                job.class
            ));
            tracing::error!(job_id = %job.jid, class = crate::retry::for_log(&job.class), "unknown job type never came; moved to the dead set");
            let tracked = shared.registry.tracks(job);
            return match fail(shared, ident, raw, job.clone(), &failure, tracked).await? {
                Failed::NotOwned => Ok(scripts::Deferred::NotOwned),
                Failed::Cancelled => Ok(scripts::Deferred::Cancelled),
                Failed::Retrying | Failed::Dead => Ok(scripts::Deferred::Later),
            };
        }
        Deferral::UnknownClass => {
            let n = later.unknown_class.unwrap_or(0);
            later.unknown_class = Some(n.saturating_add(1));
            let message = format!(
                "no handler registered for job class {:?} in this worker",
                job.class
            );
            later.error_class = Some("UnknownJob".to_owned());
            later.error_message = Some(message.clone());
            // Sidekiq's tools show `failed_at`; `retry_count` stays as it was: no retry used.
            later
                .failed_at
                .get_or_insert_with(queue_core::Timestamp::now);
            let delay = backoff_with_jitter(n).min(MAX_UNKNOWN_DEFERRAL);
            (delay, Some(message))
        }
    };
    let json = later.to_json()?;
    let deferral = match &error {
        None => scripts::Deferral::OverLimit,
        Some(error) => scripts::Deferral::UnknownClass { error },
    };
    let deferred = retry_transient("deferring a job", || {
        scripts::defer(
            &shared.client,
            &ident.name,
            raw,
            &json,
            job.jid.as_str(),
            delay,
            deferral,
        )
    })
    .await?;
    if deferred == scripts::Deferred::Cancelled {
        tracing::info!(job_id = %job.jid, "job was cancelled before it ran; dropped");
    }
    Ok(deferred)
}
