//! Hooks: app code run at the worker's lifecycle events (start, quiet, shutdown) and when
//! a job dies (Sidekiq's `death_handlers` and `sidekiq_retries_exhausted`).
//!
//! # When each runs
//! - **start**: after the process registered, before the first fetch.
//! - **quiet**: once, as soon as fetching stops, by an operator's quiet signal or at the
//!   start of a shutdown (running jobs go on).
//! - **shutdown**: after running jobs finished or were handed back, before the process
//!   record is removed.
//! - **death**: after a job's failure moved it to the dead set (out of retries, or a
//!   [`Failure::Dead`](crate::Failure::Dead)); **retries exhausted**: only the first of
//!   those, as Sidekiq's hook of that name.
//!
//! Hooks run one after another, in the order they were added, each for at most
//! [`HOOK_TIMEOUT`]; one that panics or runs over is logged and the next one runs. A death
//! hook runs in the job's task after its failure is recorded, so the job is in the dead set
//! whatever the hook does.
//!
//! ```
//! use queue_worker::{DeadJob, Worker};
//! use std::sync::Arc;
//!
//! # let _ =
//! Worker::builder()
//!     .on_start(|| async { tracing::info!("warming caches") })
//!     .on_death(|dead: Arc<DeadJob>| async move {
//!         tracing::error!(job_id = %dead.job.jid, class = %dead.job.class,
//!             error = %dead.error_message, "job died; paging someone");
//!     })
//! # ;
//! ```

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use queue_core::JobPayload;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

/// Longest one hook may run before it is abandoned (the shutdown must stay inside the
/// platform's 30 s).
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(5);

type LifecycleHook = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;
type DeathHook = Arc<dyn Fn(Arc<DeadJob>) -> BoxFuture<'static, ()> + Send + Sync>;

/// A job that went to the dead set, as a death hook sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadJob {
    /// The job as it ran (before the failure was written into it).
    pub job: JobPayload,
    /// The failure's class (Sidekiq's `error_class`).
    pub error_class: String,
    /// The failure's stored message (for a panic, the fixed text; the detail is logged).
    pub error_message: String,
    /// True when it died because its retries ran out; false for a
    /// [`Failure::Dead`](crate::Failure::Dead).
    pub retries_exhausted: bool,
}

impl DeadJob {
    /// `job` (as it ran) killed by `failure`.
    pub(crate) fn new(job: JobPayload, failure: &crate::Failure) -> Self {
        let retries_exhausted = !matches!(failure, crate::Failure::Dead { .. });
        Self {
            job,
            error_class: failure.class().to_owned(),
            error_message: failure.message().to_owned(),
            retries_exhausted,
        }
    }
}

/// A worker lifecycle event with hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifecycle {
    Start,
    Quiet,
    Shutdown,
}

impl Lifecycle {
    fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Start => "start",
            Lifecycle::Quiet => "quiet",
            Lifecycle::Shutdown => "shutdown",
        }
    }
}

/// Every hook of a worker.
#[derive(Default, Clone)]
pub(crate) struct Hooks {
    start: Vec<LifecycleHook>,
    quiet: Vec<LifecycleHook>,
    shutdown: Vec<LifecycleHook>,
    retries_exhausted: Vec<DeathHook>,
    death: Vec<DeathHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("start", &self.start.len())
            .field("quiet", &self.quiet.len())
            .field("shutdown", &self.shutdown.len())
            .field("retries_exhausted", &self.retries_exhausted.len())
            .field("death", &self.death.len())
            .finish()
    }
}

fn lifecycle<F, Fut>(f: F) -> LifecycleHook
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

fn death<F, Fut>(f: F) -> DeathHook
where
    F: Fn(Arc<DeadJob>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |dead| Box::pin(f(dead)))
}

impl Hooks {
    pub(crate) fn add<F, Fut>(&mut self, event: Lifecycle, f: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let list = match event {
            Lifecycle::Start => &mut self.start,
            Lifecycle::Quiet => &mut self.quiet,
            Lifecycle::Shutdown => &mut self.shutdown,
        };
        list.push(lifecycle(f));
    }

    pub(crate) fn add_death<F, Fut>(&mut self, only_exhausted: bool, f: F)
    where
        F: Fn(Arc<DeadJob>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let list = match only_exhausted {
            true => &mut self.retries_exhausted,
            false => &mut self.death,
        };
        list.push(death(f));
    }

    /// Whether any death hook exists (the runner keeps a copy of a failing job only then).
    pub(crate) fn wants_deaths(&self) -> bool {
        !(self.death.is_empty() && self.retries_exhausted.is_empty())
    }

    /// Runs the hooks of `event`.
    pub(crate) async fn run(&self, event: Lifecycle) {
        let list = match event {
            Lifecycle::Start => &self.start,
            Lifecycle::Quiet => &self.quiet,
            Lifecycle::Shutdown => &self.shutdown,
        };
        for hook in list {
            bounded(hook(), event.as_str()).await;
        }
    }

    /// Runs the death hooks for `dead`.
    pub(crate) async fn died(&self, dead: DeadJob) {
        let dead = Arc::new(dead);
        if dead.retries_exhausted {
            for hook in &self.retries_exhausted {
                bounded(hook(Arc::clone(&dead)), "retries exhausted").await;
            }
        }
        for hook in &self.death {
            bounded(hook(Arc::clone(&dead)), "death").await;
        }
    }
}

/// Runs the quiet hooks once, when the worker goes quiet, whichever way: an operator's quiet
/// signal or the start of a shutdown. A background loop, so that the heartbeat that reads
/// signals never waits for a hook; it ends unused when `stop` comes first.
pub(crate) async fn run_on_quiet(
    shared: Arc<crate::shared::Shared>,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::select! {
        _ = shared.quiet.cancelled() => shared.extensions.hooks.run(Lifecycle::Quiet).await,
        _ = stop.cancelled() => {}
    }
}

/// Runs one hook under [`HOOK_TIMEOUT`], catching its panic: a hook never takes the worker
/// down or holds up its shutdown.
async fn bounded(hook: BoxFuture<'static, ()>, event: &str) {
    match tokio::time::timeout(HOOK_TIMEOUT, AssertUnwindSafe(hook).catch_unwind()).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => tracing::error!(event, "a hook panicked; carrying on"),
        Err(_) => tracing::warn!(
            event,
            timeout_s = HOOK_TIMEOUT.as_secs(),
            "a hook ran over its time; abandoned"
        ),
    }
}
