//! OpenTelemetry trace propagation through the job (feature `otel`).
//!
//! [`PropagateTrace`], a client middleware, writes the W3C `traceparent` of the span that
//! enqueues (an HTTP request's, say) into the job as the extra field [`TRACEPARENT`], which
//! Sidekiq ignores. A worker built with queue-worker's `otel` feature makes each attempt's
//! span a child of it, so one trace runs from the request through the enqueue into the job.
//! The spans must be exported through `tracing-opentelemetry`'s layer for there to be a
//! trace to continue; without it the middleware writes nothing.
//!
//! ```no_run
//! # async fn demo() -> queue_core::Result<()> {
//! # use queue_core::Client;
//! let client = Client::from_env().await?.with_middleware(queue_core::otel::PropagateTrace);
//! # Ok(()) }
//! ```
//!
//! The header is formatted and parsed here (version `00` only) rather than through an SDK
//! propagator, so that neither crate needs `opentelemetry_sdk`.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::client::NewJob;
use crate::client_middleware::{ClientMiddleware, Next, PushFuture};

/// The job field that carries the W3C trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Client middleware: adds the current span's `traceparent` to every job pushed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateTrace;

impl ClientMiddleware for PropagateTrace {
    fn push<'a>(&'a self, mut job: NewJob, next: Next<'a>) -> PushFuture<'a> {
        let cx = tracing::Span::current().context();
        let span = cx.span();
        if let Some(header) = traceparent(span.span_context()) {
            job.options
                .extra
                .insert(TRACEPARENT.to_owned(), header.into());
        }
        next.run(job)
    }
}

/// The W3C `traceparent` header of `cx`, when it is a valid context.
///
/// ```
/// use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
/// use queue_core::otel::{parse_traceparent, traceparent};
/// let cx = SpanContext::new(TraceId::from(7u128), SpanId::from(9u64), TraceFlags::SAMPLED, false, TraceState::default());
/// let header = traceparent(&cx).unwrap();
/// assert_eq!(header, "00-00000000000000000000000000000007-0000000000000009-01");
/// let back = parse_traceparent(&header).unwrap();
/// assert_eq!((back.trace_id(), back.span_id(), back.is_remote()), (cx.trace_id(), cx.span_id(), true));
/// assert!(parse_traceparent("00-zz-0000000000000009-01").is_none());
/// ```
pub fn traceparent(cx: &SpanContext) -> Option<String> {
    cx.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            cx.trace_id(),
            cx.span_id(),
            cx.trace_flags().to_u8()
        )
    })
}

/// Reads a version-`00` `traceparent` (from a job: untrusted, so anything malformed or
/// all-zero is `None`).
pub fn parse_traceparent(header: &str) -> Option<SpanContext> {
    let mut parts = header.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if version != "00"
        || parts.next().is_some()
        || trace.len() != 32
        || span.len() != 16
        || flags.len() != 2
    {
        return None;
    }
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    if !(hex(trace) && hex(span) && hex(flags)) {
        return None;
    }
    let cx = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
        true,
        TraceState::default(),
    );
    cx.is_valid().then_some(cx)
}
