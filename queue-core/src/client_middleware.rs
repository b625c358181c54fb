//! Client middleware: code that wraps every push, to add fields, refuse it, or observe it.
//!
//! A chain runs in the order it was added: the first middleware added is the outermost, and
//! sees the push first and its result last (as tower's `ServiceBuilder` layers do). The
//! push itself (validation, encoding, the one script call) runs after the last one.
//!
//! A [`Client`](crate::Client) without middleware never builds a chain: its push is the
//! same call as before, which the enqueue benchmark measures.
//!
//! Bulk pushes ([`Client::push_bulk`](crate::Client::push_bulk)) do not pass through the
//! chain: it wraps one push and its one result, which a chunked bulk call does not have.
//!
//! ```
//! use queue_core::client_middleware::{ClientMiddleware, Next, PushFuture};
//! use queue_core::{Error, NewJob};
//!
//! /// Stamps every job with the tenant of the request that enqueued it.
//! struct Tenant(String);
//!
//! impl ClientMiddleware for Tenant {
//!     fn push<'a>(&'a self, mut job: NewJob, next: Next<'a>) -> PushFuture<'a> {
//!         if job.class == "Forbidden" {
//!             return Box::pin(async { Err(Error::Rejected("not for this tenant".into())) });
//!         }
//!         job.options.extra.insert("tenant".into(), self.0.clone().into());
//!         next.run(job)
//!     }
//! }
//! ```

use futures_util::future::BoxFuture;
use std::sync::Arc;

use crate::client::NewJob;
use crate::error::Result;
use crate::job_id::JobId;

/// What a push returns: the job's id, or why it was not pushed.
pub type PushFuture<'a> = BoxFuture<'a, Result<JobId>>;

/// Wraps a push: change the job, refuse it, or look at it and at the result.
///
/// Call `next.run(job)` to continue, or return without calling it to refuse the push
/// (with [`Error::Rejected`](crate::Error::Rejected), say).
pub trait ClientMiddleware: Send + Sync + 'static {
    /// Handles one push; `next` is the rest of the chain, then the push itself.
    fn push<'a>(&'a self, job: NewJob, next: Next<'a>) -> PushFuture<'a>;
}

/// The push at the end of a chain (the real one or the fake's).
pub(crate) type Push<'a> = dyn Fn(NewJob) -> PushFuture<'a> + Send + Sync + 'a;

/// The rest of a client middleware chain.
pub struct Next<'a> {
    rest: &'a [Arc<dyn ClientMiddleware>],
    push: &'a Push<'a>,
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("middleware_left", &self.rest.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Next<'a> {
    /// Runs the rest of the chain, then the push, with `job`.
    pub fn run(self, job: NewJob) -> PushFuture<'a> {
        match self.rest.split_first() {
            Some((first, rest)) => first.push(
                job,
                Next {
                    rest,
                    push: self.push,
                },
            ),
            None => (self.push)(job),
        }
    }
}

/// An ordered chain of client middleware; empty costs nothing to clone or run.
#[derive(Clone, Default)]
pub(crate) struct ClientChain(Option<Arc<Vec<Arc<dyn ClientMiddleware>>>>);

impl std::fmt::Debug for ClientChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} middleware", self.0.as_ref().map_or(0, |c| c.len()))
    }
}

impl ClientChain {
    /// This chain with `m` added innermost.
    pub(crate) fn with(&self, m: Arc<dyn ClientMiddleware>) -> Self {
        let mut chain = self.0.as_deref().cloned().unwrap_or_default();
        chain.push(m);
        Self(Some(Arc::new(chain)))
    }

    /// The middleware, or `None` when there is none (the caller pushes directly).
    pub(crate) fn get(&self) -> Option<&[Arc<dyn ClientMiddleware>]> {
        self.0.as_deref().map(Vec::as_slice)
    }

    /// Runs `job` through `chain`, then `push`.
    pub(crate) async fn run<'a>(
        chain: &'a [Arc<dyn ClientMiddleware>],
        job: NewJob,
        push: &'a Push<'a>,
    ) -> Result<JobId> {
        Next { rest: chain, push }.run(job).await
    }
}
