//! Expiry and per-enqueue timeouts: what the job's own JSON says about its deadline
//! (`expires_at`, set from `EnqueueOptions::expires_in` or `Job::EXPIRES_IN`) and its time
//! limit (`timeout`, from `EnqueueOptions::timeout`).
//!
//! A job taken after its deadline is not run: `expire.lua` drops it from the processing list
//! and marks its record `expired` (a terminal state), and a unique job's key is given back.
//! The deadline is compared with this process's clock when a slot is free, just before the
//! job would start: dynos' clocks agree to well under the second-level deadlines this is for.

use queue_core::{JobPayload, Timestamp};
use std::time::Duration;

use crate::membership::Identity;
use crate::shared::{Shared, retry_transient};

/// Field of the job JSON with its deadline (epoch s).
const EXPIRES_AT: &str = "expires_at";
/// Field of the job JSON with its per-enqueue timeout (s).
const TIMEOUT: &str = "timeout";

/// Whether `job` has a deadline that has passed.
pub(crate) fn is_expired(job: &JobPayload) -> bool {
    job.extra
        .get(EXPIRES_AT)
        .and_then(|v| v.as_f64())
        .is_some_and(|at| at < Timestamp::now().as_secs_f64())
}

/// The per-enqueue timeout of `job`, when it has a usable one.
pub(crate) fn timeout_of(job: &JobPayload) -> Option<Duration> {
    let secs = job.extra.get(TIMEOUT)?.as_f64()?;
    // Untrusted input: a negative, NaN or absurd value is ignored rather than trusted.
    (secs.is_finite() && secs > 0.0 && secs < 1e9).then(|| Duration::from_secs_f64(secs))
}

/// Drops an expired job (`expire.lua`) and gives its unique key back.
pub(crate) async fn drop_expired(shared: &Shared, ident: &Identity, raw: &[u8], job: &JobPayload) {
    let outcome = retry_transient("dropping an expired job", || {
        queue_core::scripts::expire(&shared.client, &ident.name, raw, job.jid.as_str())
    })
    .await;
    match outcome {
        Ok(queue_core::scripts::Expired::Expired) => {
            tracing::info!(job_id = %job.jid, class = %job.class, "job not started by its deadline; expired");
            crate::unique::release_at(shared, job, crate::unique::Moment::Died).await;
        }
        Ok(_) => {}
        Err(e) => tracing::error!(job_id = %job.jid, error = %e,
            "could not drop an expired job; the audit hands it back and it expires then"),
    }
    shared.in_flight.remove(raw);
}
