//! One attempt's future, the same in the worker and in `testing`: the handler, inside the
//! middleware chain, inside the job's span.

use queue_core::JobPayload;
use std::sync::Arc;
use tracing::Instrument;

use crate::context::JobContext;
use crate::middleware::{self, AttemptFuture, Middleware};
use crate::registry::Registration;

/// The attempt of `job` with `ctx`; an error when its arguments do not fit its type (the
/// attempt then never starts, and no middleware sees it).
pub(crate) fn attempt<'a>(
    chain: &'a [Arc<dyn Middleware>],
    reg: &Registration,
    job: &'a JobPayload,
    ctx: JobContext,
) -> Result<AttemptFuture<'a>, queue_core::Error> {
    let handler = (reg.perform)(&job.args, ctx)?;
    let span = crate::job_span::span(job);
    Ok(Box::pin(
        middleware::wrap(chain, job, handler).instrument(span),
    ))
}
