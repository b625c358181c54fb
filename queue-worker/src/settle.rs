//! Ending an attempt other than by success: retry, death, burial of bad input, hand-back.
//!
//! Each call moves the job out of a processing list in one script; if the job is no longer
//! there (the reaper gave it to another worker), nothing is written and the late outcome
//! is rejected and logged.

use queue_core::timestamp::utc_day;
use queue_core::{JobId, JobPayload, Timestamp};
use serde_json::Value;
use std::time::Duration;

use crate::failure::Failure;
use crate::membership::Identity;
use crate::retry::{backoff_with_jitter, truncate_error};
use crate::shared::{Shared, retry_transient};

/// Class written for queue entries that are not job JSON.
pub const MALFORMED_CLASS: &str = "queue::MalformedJob";
/// How much of a malformed entry is kept in the dead set.
const MALFORMED_RAW_BYTES: usize = 4096;
/// Lifetime of Sidekiq's daily counters (Sidekiq keeps them five years).
const DAILY_STAT_TTL_SECS: u64 = 5 * 365 * 24 * 3600;

/// Where a failed job went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Into the retry set.
    Retry,
    /// Into the dead set.
    Dead,
    /// Nowhere: another worker owns it now; this outcome was rejected.
    Rejected,
}

/// Records a failed attempt: rewrites the job with Sidekiq's error fields and moves it to
/// the retry set (with a growing, jittered delay) or, when out of retries, the dead set.
pub(crate) async fn fail(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    mut job: JobPayload,
    failure: &Failure,
) -> queue_core::Result<Settled> {
    let now = Timestamp::now();
    let retry_count = job.retry_count.map_or(0, |c| c + 1);
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
    let tracked = shared.registry.tracks(&job);
    let jid = job.jid.clone();
    let rewritten = job.to_json()?;
    let reply = settle_failure(
        shared,
        ident,
        raw,
        &rewritten,
        &jid,
        dead,
        delay.as_secs_f64(),
        tracked,
        job.error_message.as_deref().unwrap_or_default(),
    )
    .await?;
    let settled = match (reply, dead) {
        (false, _) => Settled::Rejected,
        (true, true) => Settled::Dead,
        (true, false) => Settled::Retry,
    };
    if settled == Settled::Rejected {
        tracing::warn!(job_id = %jid, "late failure rejected: the job was recovered by another worker");
    }
    Ok(settled)
}

/// Moves a queue entry that is not valid job JSON to the dead set, wrapped in a job so
/// that Sidekiq's dead-set tools can show it, with the raw bytes (truncated) and the reason.
pub(crate) async fn bury_malformed(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    reason: &str,
) -> queue_core::Result<Settled> {
    // The entry may not even be UTF-8: keep a lossy text copy for people, while the script
    // removes the exact bytes from the processing list.
    let cut = raw.len().min(MALFORMED_RAW_BYTES);
    let text = String::from_utf8_lossy(&raw[..cut]).into_owned();
    let mut extra = serde_json::Map::new();
    extra.insert("raw".to_owned(), Value::String(text));
    let now = Timestamp::now();
    let wrapper = JobPayload {
        class: MALFORMED_CLASS.to_owned(),
        args: Vec::new(),
        jid: JobId::new(),
        queue: "dead".to_owned(),
        retry: queue_core::Retry::Disabled,
        created_at: Some(now),
        enqueued_at: None,
        retry_count: Some(0),
        error_message: Some(truncate_error(reason)),
        error_class: Some("MalformedPayload".to_owned()),
        failed_at: Some(now),
        retried_at: None,
        recovered: None,
        deferred: None,
        unknown_class: None,
        extra,
    };
    tracing::error!(reason, "malformed queue entry moved to the dead set");
    let json = wrapper.to_json()?;
    let ok = settle_failure(
        shared,
        ident,
        raw,
        &json,
        &wrapper.jid,
        true,
        0.0,
        false,
        reason,
    )
    .await?;
    Ok(if ok { Settled::Dead } else { Settled::Rejected })
}

#[allow(clippy::too_many_arguments)]
async fn settle_failure(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    rewritten: &str,
    jid: &JobId,
    dead: bool,
    delay_secs: f64,
    tracked: bool,
    error: &str,
) -> queue_core::Result<bool> {
    let k = &shared.keys;
    let day = utc_day(Timestamp::now().as_secs_f64());
    let c = &shared.config;
    let retention = shared.client.config().status_retention;
    retry_transient("recording a failure", || async {
        let mut conn = shared.client.connection();
        let mut inv = queue_core::scripts::FAIL.prepare_invoke();
        inv.key(&ident.processing)
            .key(k.retry())
            .key(k.dead())
            .key(k.status(jid.as_str()))
            .key(k.stat_processed())
            .key(k.stat_failed())
            .key(k.stat_processed_on(&day))
            .key(k.stat_failed_on(&day))
            .arg(raw)
            .arg(rewritten)
            .arg(if dead { "dead" } else { "retry" })
            .arg(format!("{delay_secs:.3}"))
            .arg(c.clock_offset_ms)
            .arg(if tracked { "1" } else { "0" })
            .arg(error)
            .arg(retention.active.as_secs())
            .arg(retention.finished.as_secs())
            .arg(c.dead_max_jobs)
            .arg(c.dead_max_age.as_secs())
            .arg(DAILY_STAT_TTL_SECS);
        let reply: redis::Value = shared.client.bounded(inv.invoke_async(&mut conn)).await?;
        Ok(!matches!(reply, redis::Value::Int(0)))
    })
    .await
}

/// Hands a job back to the front of its queue (shutdown, recovery). `pushed` is the JSON to
/// put back (the raw entry, or a rewrite of it). Returns false when it was no longer ours.
pub(crate) async fn requeue(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    pushed: &[u8],
    job: &JobPayload,
) -> queue_core::Result<bool> {
    let k = &shared.keys;
    let tracked = shared.registry.tracks(job);
    let active = shared.client.config().status_retention.active.as_secs();
    retry_transient("handing a job back", || async {
        let mut conn = shared.client.connection();
        let mut inv = queue_core::scripts::REQUEUE.prepare_invoke();
        inv.key(&ident.processing)
            .key(k.queue(&job.queue))
            .key(k.queues())
            .key(k.status(job.jid.as_str()))
            .arg(raw)
            .arg(pushed)
            .arg(&job.queue)
            .arg(if tracked { "1" } else { "0" })
            .arg(active)
            .arg(k.wake_channel());
        let done: i64 = shared.client.bounded(inv.invoke_async(&mut conn)).await?;
        if done == 2 {
            tracing::info!(job_id = %job.jid, "job was cancelled before it started; dropped");
        }
        Ok(done != 0)
    })
    .await
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
}

/// Longest wait of an over-limit job before it is looked at again.
const MAX_LIMIT_DEFERRAL: Duration = Duration::from_secs(5);
/// Longest wait of a job of an unknown class before it is tried again.
const MAX_UNKNOWN_DEFERRAL: Duration = Duration::from_secs(3600);

/// Puts `job` back for later (see [`Deferral`]). False when it was no longer ours.
pub(crate) async fn defer(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    job: &JobPayload,
    why: Deferral,
) -> queue_core::Result<bool> {
    let mut later = job.clone();
    later.enqueued_at = None;
    let (set, state, error, delay) = match why {
        Deferral::OverLimit => {
            let n = later.deferred.unwrap_or(0);
            later.deferred = Some(n.saturating_add(1));
            let base = Duration::from_millis(500).saturating_mul(1u32 << n.min(4));
            let delay = base.min(MAX_LIMIT_DEFERRAL);
            let jitter = Duration::from_millis(fastrand::u64(0..=delay.as_millis() as u64 / 2));
            (
                shared.keys.schedule(),
                "scheduled",
                String::new(),
                delay + jitter,
            )
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
            (shared.keys.retry(), "retrying", message, delay)
        }
    };
    let json = later.to_json()?;
    let status = shared.keys.status(job.jid.as_str());
    retry_transient("deferring a job", || async {
        let mut inv = queue_core::scripts::DEFER.prepare_invoke();
        inv.key(&ident.processing)
            .key(&set)
            .key(&status)
            .arg(raw)
            .arg(&json)
            .arg(delay.as_millis() as u64)
            .arg(state)
            .arg(&error);
        let mut conn = shared.client.connection();
        let done: i64 = shared.client.bounded(inv.invoke_async(&mut conn)).await?;
        if done == 2 {
            tracing::info!(job_id = %job.jid, "job was cancelled before it ran; dropped");
        }
        Ok(done != 0)
    })
    .await
}

/// The daily-counter lifetime, for the exchange's acks.
pub(crate) fn daily_stat_ttl_secs() -> u64 {
    DAILY_STAT_TTL_SECS
}
