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
    let span = tracing::info_span!(
        JOB_SPAN,
        "job.id" = %job.jid,
        "job.class" = %crate::retry::for_log(&job.class),
        "job.queue" = %job.queue,
        attempt = job.attempt(),
    );
    #[cfg(feature = "otel")]
    continue_trace(&span, job);
    span
}

/// Makes `span` a child of the trace the job carries (`queue_core::otel::TRACEPARENT`), if
/// it carries a valid one.
#[cfg(feature = "otel")]
fn continue_trace(span: &tracing::Span, job: &JobPayload) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let Some(parent) = job
        .extra
        .get(queue_core::otel::TRACEPARENT)
        .and_then(|v| v.as_str())
        .and_then(queue_core::otel::parse_traceparent)
    else {
        return;
    };
    let cx = opentelemetry::Context::new().with_remote_span_context(parent);
    // Fails only when no OpenTelemetry layer is installed: then there is nothing to continue.
    let _ = span.set_parent(cx);
}
