//! The flaky job's work: a transient failure on the first attempt, success on the next.
//!
//! It shows what a handler does about an upstream that is briefly unavailable: return
//! [`Failure::retry_in`] with a short delay instead of Sidekiq's default backoff (15 s or more
//! for the first retry), so the job is back in its queue a second later and the status URL
//! shows `retrying` with the error, then `running` again, then `succeeded` on attempt 2.

use queue_worker::{Failure, JobContext};
use serde_json::{Value, json};
use std::time::Duration;

use crate::jobs::FlakyJob;

/// Delay before the retry of the failed first attempt.
pub const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Time one attempt spends "calling the upstream".
pub const CALL_TIME: Duration = Duration::from_millis(500);

/// Fails attempt 1 with a retry in [`RETRY_DELAY`]; succeeds from attempt 2 on. Each
/// attempt takes [`CALL_TIME`].
pub async fn perform(job: FlakyJob, ctx: JobContext) -> Result<Value, Failure> {
    let attempt = ctx.attempt();
    if let Err(e) = ctx
        .progress(
            50,
            format!("calling the flaky upstream (attempt {attempt})"),
        )
        .await
    {
        tracing::warn!(job_id = %ctx.id(), error = %e, "could not record progress; carrying on");
    }
    // Each attempt takes a moment, as a call to an upstream would; it also gives a status
    // poller time to see `running`, then `retrying`, then `running` again.
    tokio::select! {
        _ = ctx.cancelled() => return Err(Failure::retry("interrupted")),
        _ = tokio::time::sleep(CALL_TIME) => {}
    }
    if attempt < 2 {
        return Err(Failure::retry_in(
            RETRY_DELAY,
            format!("upstream not ready on attempt {attempt} (simulated transient failure)"),
        ));
    }
    Ok(json!({
        "label": job.label,
        "attempt": attempt,
        "text": format!("\"{}\" succeeded on attempt {attempt}, after a retry", job.label),
    }))
}
