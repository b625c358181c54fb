//! The worker: builder, start-up, and the shutdown order.
//!
//! Shutdown, in this order (the whole of it stays under the platform's 30 s kill):
//! 1. quiet: the exchange stops taking jobs at once, and prefetched jobs that have not
//!    started go back to the front of their queues;
//! 2. running jobs get until `shutdown_timeout` (default 25 s) to finish;
//! 3. the rest are cancelled and handed back to the front of their queues right away;
//! 4. the exchange flushes the last acks;
//! 5. the background loops stop (wake-ups, heartbeat, scheduler, reaper);
//! 6. the process record and lease are removed (leftovers, if any, become recoverable at once).

use queue_core::{Client, Job};
use serde::Serialize;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WorkerConfig;
use crate::context::JobContext;
use crate::error::{Error, Result};
use crate::extensions::Extensions;
use crate::failure::Failure;
use crate::fence::Fence;
use crate::heartbeat::Heartbeater;
use crate::hooks::{DeadJob, Lifecycle};
use crate::membership::{Membership, host_name};
use crate::middleware::Middleware;
use crate::queues::Queues;
use crate::reaper::Reaper;
use crate::registry::Registry;
use crate::scheduler::Scheduler;
use crate::shared::{Shared, retry_transient};
use crate::wake::WakeListener;

/// Extra time given to handed-back jobs, and then to the last acks, after the shutdown timeout.
const HAND_BACK_GRACE: Duration = Duration::from_secs(2);
/// Everything after the shutdown timeout must be over within this, so the whole shutdown
/// (at most `MAX_SHUTDOWN_TIMEOUT` + this = 29 s) ends before the platform's SIGKILL at 30 s.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(4);

/// Builds a [`Worker`]: job types, queues, concurrency, timeouts.
///
/// ```no_run
/// use queue_core::{Client, Job};
/// use queue_worker::{Failure, JobContext, Worker};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct Greet { name: String }
/// impl Job for Greet { const NAME: &'static str = "Greet"; }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::from_env().await?;
/// let worker = Worker::builder()
///     .concurrency(20)
///     .register(|job: Greet, ctx: JobContext| async move {
///         ctx.progress(50, "greeting").await.ok();
///         Ok::<_, Failure>(format!("hello {}", job.name))
///     })
///     .build(client)?;
/// worker.run_until(async { tokio::signal::ctrl_c().await.ok(); }).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct WorkerBuilder {
    pub(crate) config: WorkerConfig,
    pub(crate) registry: Registry,
    pub(crate) extensions: Extensions,
    periodic: Vec<crate::periodic::Periodic>,
    limits: Vec<(String, String, crate::limiter::Limit)>,
}

impl WorkerBuilder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// Jobs run at once.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = n;
        self
    }

    /// Queues to work on.
    pub fn queues(mut self, queues: Queues) -> Self {
        self.config.queues = queues;
        self
    }

    /// Time running jobs get after SIGTERM.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Timeout of job types that set none.
    pub fn default_job_timeout(mut self, timeout: Duration) -> Self {
        self.config.default_job_timeout = timeout;
        self
    }

    /// Adjusts the configuration in place.
    pub fn configure(mut self, f: impl FnOnce(&mut WorkerConfig)) -> Self {
        f(&mut self.config);
        self
    }

    /// Adjusts the configuration with a step that may fail.
    pub fn try_configure(
        mut self,
        f: impl FnOnce(&mut WorkerConfig) -> Result<()>,
    ) -> Result<Self> {
        f(&mut self.config)?;
        Ok(self)
    }

    /// Registers the handler of job type `J`. Its `Ok` value is stored as the job's result.
    pub fn register<J, F, Fut, R>(mut self, f: F) -> Self
    where
        J: Job,
        F: Fn(J, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::result::Result<R, Failure>> + Send + 'static,
        R: Serialize,
    {
        self.registry.register(f);
        self
    }

    /// Adds `middleware` around every job attempt, inside the middleware added before it
    /// (the first added is the outermost; see [`middleware`](crate::middleware)).
    pub fn middleware(mut self, middleware: impl Middleware) -> Self {
        self.extensions.middleware.push(Arc::new(middleware));
        self
    }

    /// Runs `hook` after the process registered, before the first fetch ([`hooks`](crate::hooks)).
    pub fn on_start<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.extensions.hooks.add(Lifecycle::Start, hook);
        self
    }

    /// Runs `hook` once when fetching stops: an operator's quiet signal, or the start of the
    /// shutdown.
    pub fn on_quiet<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.extensions.hooks.add(Lifecycle::Quiet, hook);
        self
    }

    /// Runs `hook` once running jobs finished or were handed back, before the process
    /// record is removed.
    pub fn on_shutdown<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.extensions.hooks.add(Lifecycle::Shutdown, hook);
        self
    }

    /// Runs `hook` when a job goes to the dead set because its retries ran out
    /// (Sidekiq's `sidekiq_retries_exhausted`).
    pub fn on_retries_exhausted<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Arc<DeadJob>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.extensions.hooks.add_death(true, hook);
        self
    }

    /// Runs `hook` whenever a job goes to the dead set (Sidekiq's `death_handlers`).
    pub fn on_death<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Arc<DeadJob>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.extensions.hooks.add_death(false, hook);
        self
    }

    /// Adds a periodic (cron) entry (`periodic.rs`): each of its ticks is pushed exactly once
    /// across every worker process running it.
    pub fn periodic(mut self, entry: crate::periodic::Periodic) -> Self {
        self.periodic.push(entry);
        self
    }

    /// Adds the periodic entries of the `PERIODIC_JOBS` variable (a JSON array, see
    /// [`crate::periodic_from_json`]), if it is set.
    pub fn periodic_from_env(mut self) -> Result<Self> {
        if let Ok(json) = std::env::var("PERIODIC_JOBS")
            && !json.trim().is_empty()
        {
            self.periodic
                .extend(crate::periodic::periodic_from_json(&json)?);
        }
        Ok(self)
    }

    /// Puts every job of type `J` under limiter `name` (`limiter.rs`): each passes it before
    /// its handler runs, waiting up to 5 s, else it is rescheduled without using a retry.
    /// Several limits apply in the order given. The numbers are read at run time, so they
    /// can come from configuration.
    pub fn limit<J: Job>(mut self, name: &str, limit: crate::limiter::Limit) -> Self {
        self.limits
            .push((J::NAME.to_owned(), name.to_owned(), limit));
        self
    }

    /// The worker, using `client`'s connection for everything but wake-ups.
    pub fn build(mut self, client: Client) -> Result<Worker> {
        self.config.validate()?;
        let mut by_class: Vec<(String, Vec<(String, crate::limiter::Limit)>)> = Vec::new();
        for (class, name, limit) in self.limits {
            match by_class.iter_mut().find(|(c, _)| *c == class) {
                Some((_, limits)) => limits.push((name, limit)),
                None => by_class.push((class, vec![(name, limit)])),
            }
        }
        for (class, limits) in by_class {
            let known = self
                .registry
                .wrap(&class, |perform| crate::limiter::limited(perform, limits));
            if !known {
                return Err(crate::Error::InvalidSetting {
                    name: "limit",
                    reason: format!(
                        "job type {class} has a limit but no handler registered before it"
                    ),
                });
            }
        }
        let slots = crate::queue_slots::split(&client, &self.config)?;
        // What every slot's worker shares: the process's jobs and signals are one.
        let process = ProcessWide {
            run_slots: Arc::new(Semaphore::new(self.config.concurrency)),
            room: Arc::new(crate::room::Room::new(
                self.config.concurrency + self.config.prefetch(),
                slots.len(),
            )),
            quiet: CancellationToken::new(),
            stop_requested: CancellationToken::new(),
            hand_back: CancellationToken::new(),
            paused: Arc::default(),
            extensions: Arc::new(self.extensions),
        };
        let slots = slots
            .into_iter()
            .map(|(client, config)| Arc::new(slot_shared(client, config, &self.registry, &process)))
            .collect();
        Ok(Worker {
            slots,
            periodic: self.periodic,
            client,
        })
    }
}

/// The parts of [`Shared`] that one process's slot workers share.
struct ProcessWide {
    run_slots: Arc<Semaphore>,
    room: Arc<crate::room::Room>,
    quiet: CancellationToken,
    stop_requested: CancellationToken,
    hand_back: CancellationToken,
    paused: Arc<crate::paused::Paused>,
    extensions: Arc<Extensions>,
}

/// The state of the worker of one queue slot (the only one unless queues are spread).
fn slot_shared(
    client: Client,
    config: WorkerConfig,
    registry: &Registry,
    process: &ProcessWide,
) -> Shared {
    Shared {
        membership: Membership::new(host_name()),
        client,
        // Slots last as long as the lease: renewed with it, recovered with its jobs.
        slot_leases: crate::slot_leases::SlotLeases::new(config.lease_ttl),
        config,
        registry: registry.clone(),
        busy: AtomicUsize::new(0),
        run_slots: Arc::clone(&process.run_slots),
        quiet: process.quiet.clone(),
        stop_requested: process.stop_requested.clone(),
        beat_now: Notify::new(),
        cancels: Arc::default(),
        finished_since_beat: Default::default(),
        failed_since_beat: Default::default(),
        hand_back: process.hand_back.clone(),
        wake: Arc::new(Notify::new()),
        paused: Arc::clone(&process.paused),
        room: Arc::clone(&process.room),
        in_flight: crate::in_flight::InFlight::default(),
        extensions: Arc::clone(&process.extensions),
    }
}

/// A worker process: fetches, runs and settles jobs until told to shut down.
#[derive(Debug)]
pub struct Worker {
    /// One per queue slot the process works (one, unless queues are spread over a cluster).
    slots: Vec<Arc<Shared>>,
    periodic: Vec<crate::periodic::Periodic>,
    /// The app's own client (periodic entries find their queues' slots from it).
    client: Client,
}

/// A worker started in the background with [`Worker::start`].
#[derive(Debug)]
pub struct RunningWorker {
    trigger: CancellationToken,
    task: JoinHandle<Result<()>>,
    shared: Arc<Shared>,
}

impl RunningWorker {
    /// The current process identity (`host:pid:nonce:generation`).
    pub fn identity(&self) -> String {
        self.shared.membership.current().name.clone()
    }

    /// This process's job metrics in the Prometheus text format (see `WORKER_METRICS_ADDR`
    /// in [`WorkerConfig::from_env`] to serve them).
    pub fn metrics_text(&self) -> String {
        self.shared.extensions.metrics.text()
    }

    /// Whether the worker has stopped by itself (an operator's stop signal) or failed.
    pub fn is_stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Shuts down in the documented order and waits for it.
    pub async fn shutdown(self) -> Result<()> {
        self.trigger.cancel();
        match self.task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Ok(()),
        }
    }
}

impl Worker {
    /// A builder with the defaults (`default` queue, concurrency 10, 25 s shutdown timeout).
    pub fn builder() -> WorkerBuilder {
        WorkerBuilder::default()
    }

    /// The current process identity (`host:pid:nonce:generation`).
    pub fn identity(&self) -> String {
        self.slots[0].membership.current().name.clone()
    }

    /// Starts in the background; stop it with [`RunningWorker::shutdown`].
    pub fn start(self) -> RunningWorker {
        let trigger = CancellationToken::new();
        let shared = Arc::clone(&self.slots[0]);
        let stop = trigger.clone();
        let task = tokio::spawn(self.run_until(async move { stop.cancelled().await }));
        RunningWorker {
            trigger,
            task,
            shared,
        }
    }

    /// Runs until `shutdown` completes, then shuts down in the documented order.
    ///
    /// When queues are spread over a cluster's slots, each slot the process works gets its
    /// own identity, lease, processing list, fetch loop, heartbeat, scheduler and reaper
    /// there; the process's concurrency, its signals (quiet, stop) and the shutdown order
    /// are shared by all of them.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let slots = self.slots;
        let first = Arc::clone(&slots[0]);
        let client = &self.client;
        let mut periodic = crate::periodic::PeriodicLoop::new(
            client.clone(),
            self.periodic,
            first.config.clock_offset_ms,
        );
        periodic.register().await?;
        check_server_version(client).await?;
        retry_transient("loading scripts", || {
            queue_core::scripts::load_worker_scripts(client)
        })
        .await?;
        // Before the first fetch, so a queue paused before this process started stays paused.
        let inspect = queue_core::Inspector::new(client);
        let paused = retry_transient("reading paused queues", || inspect.paused()).await?;
        first.paused.set(paused);
        let spread = slots.len() > 1;
        let mut registered = Vec::with_capacity(slots.len());
        for shared in slots {
            let ident = shared.membership.current();
            match retry_transient("registering", || {
                crate::heartbeat::register(&shared, &ident)
            })
            .await
            {
                Ok(_) => {}
                // A key of another type where one queue's slot keeps its registry stops that
                // queue only: the process's other queues are worked.
                Err(e @ queue_core::Error::WrongType { .. }) if spread => {
                    tracing::error!(error = %e, queues = ?shared.config.queues.names(),
                        "cannot register in this queue's slot; its queue is not worked here");
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            tracing::info!(identity = %ident.name, concurrency = shared.config.concurrency,
                queues = ?shared.config.queues.names(), "worker started");
            for queue in shared.config.queues.names() {
                client.note_queue(queue).await;
            }
            registered.push(shared);
        }
        if registered.is_empty() {
            return Err(Error::NoQueueSlot);
        }
        let slots = registered;
        let metrics_listener = match first.config.metrics_addr {
            Some(addr) => Some(crate::metrics_listener::bind(addr).await?),
            None => None,
        };
        first.extensions.hooks.run(Lifecycle::Start).await;

        let loops = CancellationToken::new();
        let mut background = Vec::new();
        for shared in &slots {
            background.extend([
                tokio::spawn(
                    Heartbeater::new(Arc::clone(shared), shared.config.heartbeat_interval)
                        .run(loops.clone()),
                ),
                tokio::spawn(Fence::new(Arc::clone(shared)).run(loops.clone())),
                tokio::spawn(
                    Scheduler::new(
                        shared.client.clone(),
                        shared.config.scheduler_interval,
                        shared.config.clock_offset_ms,
                    )
                    .run(loops.clone()),
                ),
                tokio::spawn(
                    Reaper::new(Arc::clone(shared), shared.config.reaper_interval)
                        .run(loops.clone()),
                ),
            ]);
        }
        background.extend([
            tokio::spawn(WakeListener::new(&slots).run(loops.clone())),
            tokio::spawn(crate::finished_log::FinishedLog::run(
                Arc::clone(&first),
                loops.clone(),
            )),
            tokio::spawn(crate::hooks::run_on_quiet(
                Arc::clone(&first),
                loops.clone(),
            )),
            tokio::spawn(periodic.run(loops.clone())),
        ]);
        if let Some(listener) = metrics_listener {
            background.push(tokio::spawn(crate::metrics_listener::run(
                listener,
                Arc::clone(&first),
                loops.clone(),
            )));
        }
        let running = TaskTracker::new();
        let exchanges: Vec<_> = slots
            .iter()
            .map(|shared| tokio::spawn(crate::exchange::run(Arc::clone(shared), running.clone())))
            .collect();

        // SIGTERM (or whatever the caller waits for), or an operator's stop signal.
        tokio::select! {
            _ = shutdown => {}
            _ = first.stop_requested.cancelled() => {}
        }
        let signalled = Instant::now();
        let jobs_deadline = signalled + first.config.shutdown_timeout;
        let hard_deadline = jobs_deadline + SHUTDOWN_SLACK;
        tracing::info!(busy = running.len(), "shutting down: quiet, no new jobs");
        first.quiet.cancel();
        running.close();
        if tokio::time::timeout_at(jobs_deadline.into(), running.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                jobs = running.len(),
                "shutdown timeout reached; handing running jobs back to their queues"
            );
            first.hand_back.cancel();
            let _ = tokio::time::timeout(HAND_BACK_GRACE, running.wait()).await;
        }
        let acks_deadline = (Instant::now() + HAND_BACK_GRACE).min(hard_deadline);
        for exchange in exchanges {
            if !stop_within(exchange, acks_deadline, "exchange").await {
                tracing::error!(
                    "last acks did not land in time; those jobs will be handed back and run again"
                );
            }
        }
        if tokio::time::timeout_at(
            hard_deadline.into(),
            first.extensions.hooks.run(Lifecycle::Shutdown),
        )
        .await
        .is_err()
        {
            tracing::warn!("shutdown hooks ran out of time");
        }
        loops.cancel();
        for task in background {
            stop_within(task, hard_deadline, "background loop").await;
        }
        let unregistered = futures_util::future::join_all(slots.iter().map(|shared| async {
            let ident = shared.membership.current();
            tokio::time::timeout_at(hard_deadline.into(), unregister(shared, &ident))
                .await
                .unwrap_or_else(|_| Err(Error::Core(queue_core::Error::Timeout(SHUTDOWN_SLACK))))
        }))
        .await;
        for unregistered in unregistered {
            match unregistered {
                Ok(0) => {}
                Ok(left) => tracing::warn!(
                    jobs = left,
                    "jobs left in the processing list; any live worker recovers them now"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "could not unregister; the lease expires on its own and the reaper recovers anything left")
                }
            }
        }
        tracing::info!(
            elapsed_ms = signalled.elapsed().as_millis() as u64,
            "worker stopped"
        );
        Ok(())
    }
}

/// Refuses a Redis older than 6.2, whose missing commands would make every fetch fail.
async fn check_server_version(client: &Client) -> Result<()> {
    let (major, minor, version) =
        retry_transient("reading the Redis version", || client.server_version()).await?;
    if (major, minor) < (6, 2) {
        return Err(Error::UnsupportedRedis { version });
    }
    Ok(())
}

/// Waits for `task` until `deadline`, then aborts it. True when it ended by itself.
async fn stop_within<T>(mut task: JoinHandle<T>, deadline: Instant, what: &str) -> bool {
    match tokio::time::timeout_at(deadline.into(), &mut task).await {
        Ok(_) => true,
        Err(_) => {
            tracing::warn!(task = what, "did not stop in time; aborted");
            task.abort();
            false
        }
    }
}

async fn unregister(shared: &Shared, ident: &crate::membership::Identity) -> Result<usize> {
    queue_core::scripts::unregister(&shared.client, &ident.name)
        .await
        .map_err(Error::from)
}
