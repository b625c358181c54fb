//! Server middleware: code that wraps every job attempt, to observe it, wrap it in a
//! context (a tenant, a database transaction), or answer for it without running it.
//!
//! # Order
//! Middleware runs in the order it was added to the [`WorkerBuilder`](crate::WorkerBuilder):
//! the first added is the outermost, and sees the attempt first and its outcome last (as
//! tower's `ServiceBuilder` layers do). All of it runs inside the attempt's span
//! (`job_span.rs`) and under the job's timeout, and a panic anywhere in it is caught and
//! recorded like a handler's. Outside it, in this order, are the runner's steps that no
//! middleware can skip: the slot, the concurrency limit, the argument check (a job whose
//! arguments do not fit its type goes to the dead set before any middleware sees it), and
//! after the attempt the settle (ack, retry or dead), the finished-job log line, the
//! metrics and the death hooks.
//!
//! ```
//! use queue_core::client_middleware::{ClientMiddleware, Next as PushNext, PushFuture};
//! use queue_core::testing::FakeClient;
//! use queue_core::{Enqueue, Job, JobPayload, NewJob};
//! use queue_worker::middleware::{AttemptFuture, Middleware, Next};
//! use queue_worker::testing::TestWorker;
//! use queue_worker::{Failure, JobContext, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! tokio::task_local! {
//!     /// The tenant of the request, or of the job, being handled.
//!     static TENANT: String;
//! }
//!
//! /// Client side: every job carries the tenant of the code that enqueued it.
//! struct StampTenant;
//! impl ClientMiddleware for StampTenant {
//!     fn push<'a>(&'a self, mut job: NewJob, next: PushNext<'a>) -> PushFuture<'a> {
//!         if let Ok(tenant) = TENANT.try_with(Clone::clone) {
//!             job.options.extra.insert("tenant".into(), tenant.into());
//!         }
//!         next.run(job)
//!     }
//! }
//!
//! /// Server side: the attempt runs with that tenant set; a job without one is refused.
//! struct WithTenant;
//! impl Middleware for WithTenant {
//!     fn perform<'a>(&'a self, job: &'a JobPayload, next: Next<'a>) -> AttemptFuture<'a> {
//!         match job.extra.get("tenant").and_then(|t| t.as_str()) {
//!             Some(tenant) => Box::pin(TENANT.scope(tenant.to_owned(), next.run())),
//!             None => Box::pin(async { Err(Failure::dead("job has no tenant")) }),
//!         }
//!     }
//! }
//!
//! /// Times every attempt (added first: the outermost, so it times the tenant step too).
//! struct Timing;
//! impl Middleware for Timing {
//!     fn perform<'a>(&'a self, job: &'a JobPayload, next: Next<'a>) -> AttemptFuture<'a> {
//!         Box::pin(async move {
//!             let start = std::time::Instant::now();
//!             let outcome = next.run().await;
//!             tracing::info!(class = %job.class, ms = start.elapsed().as_millis() as u64, "timed");
//!             outcome
//!         })
//!     }
//! }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Invoice { number: u64 }
//! impl Job for Invoice { const NAME: &'static str = "Invoice"; }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! // In production: `Client::from_env().await?.with_middleware(StampTenant)` and the same builder.
//! let queue = FakeClient::new().with_middleware(StampTenant);
//! let builder = Worker::builder()
//!     .middleware(Timing)
//!     .middleware(WithTenant)
//!     .register(|invoice: Invoice, _ctx: JobContext| async move {
//!         Ok::<_, Failure>(format!("invoice {} of {}", invoice.number, TENANT.with(Clone::clone)))
//!     });
//!
//! TENANT.scope("acme".into(), queue.enqueue(&Invoice { number: 7 })).await.unwrap();
//! let drained = TestWorker::new(builder, &queue).drain().await;
//! assert_eq!(drained.performed[0].outcome.as_ref().unwrap(), "invoice 7 of acme");
//! # });
//! ```

use futures_util::future::BoxFuture;
use queue_core::JobPayload;
use std::sync::Arc;

use crate::registry::Attempt;

/// What an attempt returns: the result to store, or a [`Failure`](crate::Failure).
pub type AttemptFuture<'a> = BoxFuture<'a, Attempt>;

/// Wraps each job attempt.
///
/// Call `next.run()` to continue to the rest of the chain and the handler; return without
/// calling it to answer for the job (`Ok(value)` acks it with that result, `Err(failure)`
/// fails it as the handler would have).
pub trait Middleware: Send + Sync + 'static {
    /// Handles one attempt of `job` (read its `extra` fields for what client middleware
    /// added at the push).
    fn perform<'a>(&'a self, job: &'a JobPayload, next: Next<'a>) -> AttemptFuture<'a>;
}

/// The rest of a middleware chain, then the handler.
pub struct Next<'a> {
    rest: &'a [Arc<dyn Middleware>],
    job: &'a JobPayload,
    handler: AttemptFuture<'static>,
}

impl std::fmt::Debug for Next<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Next")
            .field("middleware_left", &self.rest.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Next<'a> {
    /// Runs the rest of the chain, then the handler.
    pub fn run(self) -> AttemptFuture<'a> {
        match self.rest.split_first() {
            Some((first, rest)) => first.perform(
                self.job,
                Next {
                    rest,
                    job: self.job,
                    handler: self.handler,
                },
            ),
            None => self.handler,
        }
    }
}

/// `handler` wrapped in `chain` (returned as it is when the chain is empty).
pub(crate) fn wrap<'a>(
    chain: &'a [Arc<dyn Middleware>],
    job: &'a JobPayload,
    handler: AttemptFuture<'static>,
) -> AttemptFuture<'a> {
    Next {
        rest: chain,
        job,
        handler,
    }
    .run()
}
