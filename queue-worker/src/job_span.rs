//! The span of one job attempt: `job{job.id=… job.class=… job.queue=… attempt=…}`.
//!
//! Every event inside the attempt (the handler's own, the middleware's) is recorded inside
//! it, so a log line or trace from deep in app code names its job. The logfmt format
//! (`queue_core::platform::Logfmt`) writes the span's fields on each such line.

use queue_core::JobPayload;

/// Name of the span of a job attempt.
pub const JOB_SPAN: &str = "job";

/// A new span for an attempt of `job`; a class name that is absurdly long (a crafted entry)
/// is cut as in every log line.
pub(crate) fn span(job: &JobPayload) -> tracing::Span {
    tracing::info_span!(
        JOB_SPAN,
        "job.id" = %job.jid,
        "job.class" = %crate::retry::for_log(&job.class),
        "job.queue" = %job.queue,
        attempt = job.attempt(),
    )
}
