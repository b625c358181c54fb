//! Run jobs in an app's tests, without Redis or a worker process.
//!
//! [`TestWorker`] takes the app's [`WorkerBuilder`] (the same registrations and middleware
//! as production) and a [`FakeClient`] (what the app's code enqueues through):
//! - [`TestWorker::drain`] runs every recorded job, oldest first, including the jobs those
//!   jobs enqueue, until none is left (Sidekiq's `drain`);
//! - [`TestWorker::inline`] makes every later push run its job at once (Sidekiq's inline
//!   mode); the push fails with [`queue_core::Error::InlineJobFailed`] when the job does;
//! - [`JobContext::for_test`](crate::JobContext::for_test) calls one handler directly.
//!
//! Each attempt runs as in the worker: the middleware chain, the job's span, panics caught.
//! What a test run leaves out: Redis (no status record, no retry or dead set: a failure is
//! reported, not retried), timeouts, concurrency limits, and the hooks.
//!
//! ```
//! use queue_core::testing::FakeClient;
//! use queue_core::{Enqueue, Job};
//! use queue_worker::testing::TestWorker;
//! use queue_worker::{Failure, JobContext, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order { id: u64 }
//! impl Job for Order { const NAME: &'static str = "Order"; }
//!
//! #[derive(Serialize, Deserialize)]
//! struct Receipt { order: u64 }
//! impl Job for Receipt { const NAME: &'static str = "Receipt"; }
//!
//! /// The app's registrations, shared by `main` and the tests.
//! fn worker(queue: FakeClient) -> queue_worker::WorkerBuilder {
//!     Worker::builder()
//!         .register(move |order: Order, _ctx: JobContext| {
//!             let queue = queue.clone();
//!             async move {
//!                 queue.enqueue(&Receipt { order: order.id }).await?;
//!                 Ok::<_, Failure>(order.id)
//!             }
//!         })
//!         .register(|r: Receipt, ctx: JobContext| async move {
//!             ctx.progress(100, "sent").await?;
//!             Ok::<_, Failure>(format!("receipt for {}", r.order))
//!         })
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let fake = FakeClient::new();
//! let jobs = TestWorker::new(worker(fake.clone()), &fake);
//! fake.enqueue(&Order { id: 7 }).await.unwrap();
//! assert_eq!(fake.count_of::<Order>(), 1);
//!
//! let drained = jobs.drain().await;
//! assert_eq!(drained.performed.len(), 2); // the order, then the receipt it enqueued
//! assert!(drained.failures().next().is_none());
//! assert_eq!(drained.performed[1].outcome.as_ref().unwrap(), "receipt for 7");
//! assert_eq!(drained.performed[1].progress[0].percent, 100);
//! assert_eq!(fake.count(), 0);
//!
//! jobs.inline();
//! fake.enqueue(&Order { id: 8 }).await.unwrap(); // runs now, and so does its receipt
//! assert_eq!(fake.count(), 0);
//! # });
//! ```

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use queue_core::testing::{FakeClient, InlineRunner};
use queue_core::{JobPayload, Progress};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};

use crate::context::JobContext;
use crate::failure::Failure;
use crate::middleware::Middleware;
use crate::registry::{Attempt, Registry};
use crate::worker::WorkerBuilder;

/// Jobs one [`TestWorker::drain`] runs at most: past that, a job most likely enqueues
/// itself forever, and the rest stay recorded.
pub const MAX_DRAINED: usize = 100_000;

/// Runs an app's jobs in its tests (see the [module](self) docs).
#[derive(Clone)]
pub struct TestWorker {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    middleware: Vec<Arc<dyn Middleware>>,
    fake: FakeClient,
}

impl std::fmt::Debug for TestWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestWorker")
            .field("registry", &self.inner.registry)
            .field("fake", &self.inner.fake)
            .finish_non_exhaustive()
    }
}

/// One job a [`TestWorker`] ran.
#[derive(Debug)]
#[non_exhaustive]
pub struct Performed {
    /// The job as it was pushed.
    pub job: JobPayload,
    /// What the handler (or a middleware) returned: the result the worker would store, or
    /// the failure.
    pub outcome: Attempt,
    /// Progress the job reported, oldest first.
    pub progress: Vec<Progress>,
}

/// What one [`TestWorker::drain`] ran.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Drained {
    /// Every job run, in order.
    pub performed: Vec<Performed>,
    /// Jobs still recorded because [`MAX_DRAINED`] was reached (0 normally).
    pub left: usize,
}

impl Drained {
    /// The jobs that failed, with their failures.
    pub fn failures(&self) -> impl Iterator<Item = (&JobPayload, &Failure)> {
        self.performed
            .iter()
            .filter_map(|p| p.outcome.as_ref().err().map(|f| (&p.job, f)))
    }
}

impl TestWorker {
    /// A test worker with `builder`'s job types and middleware, taking jobs from `fake`.
    pub fn new(builder: WorkerBuilder, fake: &FakeClient) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry: builder.registry,
                middleware: builder.extensions.middleware,
                fake: fake.clone(),
            }),
        }
    }

    /// Runs one job now, whatever the fake holds.
    pub async fn perform(&self, job: JobPayload) -> Performed {
        self.inner.perform(job).await
    }

    /// Runs every job the fake holds, and the jobs they enqueue, until none is left.
    pub async fn drain(&self) -> Drained {
        let mut drained = Drained::default();
        while drained.performed.len() < MAX_DRAINED {
            let Some(job) = self.inner.fake.pop() else {
                return drained;
            };
            drained.performed.push(self.inner.perform(job).await);
        }
        drained.left = self.inner.fake.count();
        drained
    }

    /// Makes every later push to the fake run its job at once (see
    /// [`FakeClient::run_inline`]); [`FakeClient::record`] turns it off.
    pub fn inline(&self) {
        self.inner
            .fake
            .run_inline(Arc::new(Inline(Arc::downgrade(&self.inner))));
    }
}

impl Inner {
    async fn perform(&self, job: JobPayload) -> Performed {
        let ctx = JobContext::for_test_job(&job);
        let outcome = match self.registry.get(&job.class) {
            None => Err(Failure::dead(format!(
                "no handler registered for job class {:?}",
                job.class
            ))),
            Some(reg) => match crate::perform::attempt(&self.middleware, reg, &job, ctx.clone()) {
                // Unlike the worker, which keeps argument values out of what it stores,
                // a test shows the detail.
                Err(e) => Err(Failure::dead(format!(
                    "arguments do not fit the job type: {e}"
                ))),
                Ok(attempt) => match AssertUnwindSafe(attempt).catch_unwind().await {
                    Ok(outcome) => outcome,
                    Err(panic) => Err(Failure::panic(crate::runner::panic_message(panic))),
                },
            },
        };
        Performed {
            progress: ctx.recorded_progress(),
            job,
            outcome,
        }
    }
}

/// Inline jobs one push may nest (a job that enqueues a job that enqueues …): each runs
/// inside its pusher's poll, so an endless chain would overflow the stack and abort the
/// whole test binary; past this depth the push fails instead.
pub const MAX_INLINE_DEPTH: usize = 32;

tokio::task_local! {
    /// How deep the inline job running now is nested (1 for one pushed by the test).
    static INLINE_DEPTH: usize;
}

/// The fake's inline runner: holds the test worker weakly, since the worker holds the fake
/// (and its handlers, clones of it).
struct Inline(Weak<Inner>);

impl InlineRunner for Inline {
    fn run(&self, job: JobPayload) -> BoxFuture<'static, queue_core::Result<()>> {
        let inner = self.0.upgrade();
        // Read here, while the pushing job's scope (if any) is current.
        let depth = INLINE_DEPTH.try_with(|d| *d).unwrap_or(0) + 1;
        Box::pin(async move {
            let Some(inner) = inner else {
                return Err(queue_core::Error::InlineJobFailed {
                    class: job.class,
                    message: "the TestWorker was dropped".to_owned(),
                });
            };
            if depth > MAX_INLINE_DEPTH {
                return Err(queue_core::Error::InlineJobFailed {
                    class: job.class,
                    message: format!(
                        "inline jobs nested deeper than {MAX_INLINE_DEPTH}: does a job enqueue itself?"
                    ),
                });
            }
            let performed = INLINE_DEPTH.scope(depth, inner.perform(job)).await;
            match performed.outcome {
                Ok(_) => Ok(()),
                Err(failure) => Err(queue_core::Error::InlineJobFailed {
                    class: performed.job.class,
                    message: crate::failure::Shown(&failure).to_string(),
                }),
            }
        })
    }
}
