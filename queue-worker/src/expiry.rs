//! Expiry and per-enqueue timeouts: what the job's own JSON says about its deadline
//! (`expires_at`, set from `EnqueueOptions::expires_in` or `Job::EXPIRES_IN`) and its time
//! limit (`timeout`, from `EnqueueOptions::timeout`).
//!
//! A job taken after its deadline is not run: `expire.lua` drops it from the processing list
//! and marks its record `expired` (a terminal state), and a unique job's key is given back.
//! The deadline is judged by `expire.lua` on Redis's clock when a slot is free, just before
//! the job would start (one more round trip, for jobs with a deadline only): a dyno whose
//! clock is minutes off neither drops jobs early nor runs them late. The deadline itself is
//! stamped by the enqueuing process's clock.

use queue_core::JobPayload;
use std::time::Duration;

use crate::membership::Identity;
use crate::shared::{Shared, retry_transient};

/// Field of the job JSON with its deadline (epoch s).
const EXPIRES_AT: &str = "expires_at";
/// Field of the job JSON with its per-enqueue timeout (s).
const TIMEOUT: &str = "timeout";

/// The deadline of `job` (epoch s), when it has a usable one.
pub(crate) fn deadline_of(job: &JobPayload) -> Option<f64> {
    job.extra
        .get(EXPIRES_AT)
        .and_then(|v| v.as_f64())
        .filter(|at| at.is_finite())
}

/// The per-enqueue timeout of `job`, when it has a usable one.
pub(crate) fn timeout_of(job: &JobPayload) -> Option<Duration> {
    let secs = job.extra.get(TIMEOUT)?.as_f64()?;
    // Untrusted input: a negative, NaN or absurd value is ignored rather than trusted.
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// Drops the job if `deadline` has passed on Redis's clock (`expire.lua`) and gives its unique
/// key back. Whether the job may run: false when it was dropped, is no longer this process's,
/// or Redis could not be asked (the audit hands it back).
pub(crate) async fn runs_before_deadline(
    shared: &Shared,
    ident: &Identity,
    raw: &[u8],
    job: &JobPayload,
    deadline: f64,
) -> bool {
    let outcome = retry_transient("checking a job's deadline", || {
        queue_core::scripts::expire(
            &shared.client,
            &ident.name,
            raw,
            job.jid.as_str(),
            deadline,
            shared.config.clock_offset_ms,
        )
    })
    .await;
    match outcome {
        Ok(queue_core::scripts::Expired::NotDue) => return true,
        Ok(queue_core::scripts::Expired::Expired) => {
            tracing::info!(job_id = %job.jid, class = %job.class, "job not started by its deadline; expired");
            crate::unique::release_at(shared, job, crate::unique::Moment::Died).await;
        }
        Ok(_) => {}
        Err(e) => tracing::error!(job_id = %job.jid, error = %e,
            "could not check the job's deadline; the audit hands it back"),
    }
    shared.in_flight.remove(raw);
    false
}
