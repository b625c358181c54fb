//! [`FakeClient`]: records pushes in memory, or runs them inline.

use futures_util::future::BoxFuture;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::client::{NewJob, encode_job};
use crate::client_middleware::{ClientChain, ClientMiddleware};
use crate::config::DEFAULT_MAX_PAYLOAD_BYTES;
use crate::enqueue::Enqueue;
use crate::error::Result;
use crate::job::Job;
use crate::job_id::JobId;
use crate::options::RunAt;
use crate::payload::JobPayload;
use crate::queue_name::validate_queue_name;
use crate::timestamp::Timestamp;

/// Runs a pushed job at once, for [`FakeClient::run_inline`]; a worker's test harness
/// (`queue_worker::testing::TestWorker::inline`) provides one.
pub trait InlineRunner: Send + Sync + 'static {
    /// Performs `job` and says whether it succeeded
    /// ([`Error::InlineJobFailed`](crate::Error::InlineJobFailed) when not).
    fn run(&self, job: JobPayload) -> BoxFuture<'static, Result<()>>;
}

/// An [`Enqueue`] for tests: no Redis, pushes are recorded in order.
///
/// A push is validated and encoded as the real client does it (queue name, payload cap,
/// reserved extra fields), and passes through the fake's own client middleware. Clones
/// share the recorded jobs, so a handler can hold one while the test holds another.
///
/// ```
/// use queue_core::testing::FakeClient;
/// use queue_core::{Enqueue, Job};
/// use serde::{Deserialize, Serialize};
/// use std::time::Duration;
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Invoice { order: u64 }
/// impl Job for Invoice { const NAME: &'static str = "Invoice"; }
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let fake = FakeClient::new();
/// fake.enqueue(&Invoice { order: 1 }).await.unwrap();
/// let later = fake.enqueue_in(&Invoice { order: 2 }, Duration::from_secs(60)).await.unwrap();
///
/// assert_eq!(fake.count_of::<Invoice>(), 2);
/// assert!(fake.enqueued(&Invoice { order: 2 }));
/// assert_eq!(fake.jobs_of::<Invoice>().unwrap(), vec![Invoice { order: 1 }, Invoice { order: 2 }]);
/// assert!(fake.run_at(&later).is_some());
/// fake.clear();
/// assert_eq!(fake.count(), 0);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct FakeClient {
    state: Arc<State>,
    middleware: ClientChain,
}

#[derive(Default)]
struct State {
    jobs: Mutex<VecDeque<Recorded>>,
    inline: Mutex<Option<Arc<dyn InlineRunner>>>,
}

struct Recorded {
    job: JobPayload,
    run_at: Option<RunAt>,
}

impl std::fmt::Debug for FakeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeClient")
            .field("jobs", &self.count())
            .field("inline", &self.is_inline())
            .field("middleware", &self.middleware)
            .finish()
    }
}

/// A lock that a panicking test left behind still holds consistent data (every critical
/// section here is one push, pop or clone).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeClient {
    /// An empty fake in recording mode.
    pub fn new() -> Self {
        Self::default()
    }

    /// This fake with `middleware` added to its push chain (shares the recorded jobs).
    pub fn with_middleware(&self, middleware: impl ClientMiddleware) -> Self {
        Self {
            state: Arc::clone(&self.state),
            middleware: self.middleware.with(Arc::new(middleware)),
        }
    }

    /// Inline mode: every later push runs its job at once through `runner`, and the push
    /// returns when the job has finished (an error when it failed). Nothing is recorded.
    pub fn run_inline(&self, runner: Arc<dyn InlineRunner>) {
        *lock(&self.state.inline) = Some(runner);
    }

    /// Back to recording mode.
    pub fn record(&self) {
        *lock(&self.state.inline) = None;
    }

    /// Whether pushes run inline.
    pub fn is_inline(&self) -> bool {
        lock(&self.state.inline).is_some()
    }

    /// Every recorded job, oldest first.
    pub fn jobs(&self) -> Vec<JobPayload> {
        lock(&self.state.jobs)
            .iter()
            .map(|r| r.job.clone())
            .collect()
    }

    /// The recorded jobs of type `J`, read back from their arguments.
    pub fn jobs_of<J: Job>(&self) -> Result<Vec<J>> {
        lock(&self.state.jobs)
            .iter()
            .filter(|r| r.job.class == J::NAME)
            .map(|r| J::from_args(J::NAME, &r.job.args))
            .collect()
    }

    /// Number of recorded jobs.
    pub fn count(&self) -> usize {
        lock(&self.state.jobs).len()
    }

    /// Number of recorded jobs of type `J`.
    pub fn count_of<J: Job>(&self) -> usize {
        lock(&self.state.jobs)
            .iter()
            .filter(|r| r.job.class == J::NAME)
            .count()
    }

    /// Whether a job of type `J` with exactly `job`'s arguments was recorded.
    pub fn enqueued<J: Job>(&self, job: &J) -> bool {
        let Ok(args) = job.to_args() else {
            return false;
        };
        lock(&self.state.jobs)
            .iter()
            .any(|r| r.job.class == J::NAME && r.job.args == args)
    }

    /// When the recorded job `id` was asked to run (`None`: now, or no such job).
    pub fn run_at(&self, id: &JobId) -> Option<RunAt> {
        lock(&self.state.jobs)
            .iter()
            .find(|r| &r.job.jid == id)
            .and_then(|r| r.run_at)
    }

    /// Forgets every recorded job.
    pub fn clear(&self) {
        lock(&self.state.jobs).clear();
    }

    /// Removes and returns the oldest recorded job (scheduled ones too: a test drains
    /// everything, as Sidekiq's `drain` does).
    pub fn pop(&self) -> Option<JobPayload> {
        lock(&self.state.jobs).pop_front().map(|r| r.job)
    }

    async fn push_direct(&self, job: NewJob) -> Result<JobId> {
        let queue = job.options.queue.as_deref().unwrap_or(&job.queue);
        validate_queue_name(queue)?;
        let jid = job.options.job_id.clone().unwrap_or_default();
        let mut json = Vec::with_capacity(256);
        encode_job(
            &mut json,
            &job,
            queue,
            &jid,
            Timestamp::now(),
            DEFAULT_MAX_PAYLOAD_BYTES,
            // The fake keeps no uniqueness keys: every push is recorded (documented).
            None,
        )?;
        let payload = JobPayload::from_json(&json)?;
        let inline = lock(&self.state.inline).clone();
        match inline {
            Some(runner) => runner.run(payload).await?,
            None => lock(&self.state.jobs).push_back(Recorded {
                job: payload,
                run_at: job.options.run_at,
            }),
        }
        Ok(jid)
    }
}

impl Enqueue for FakeClient {
    async fn push(&self, job: NewJob) -> Result<JobId> {
        match self.middleware.get() {
            None => self.push_direct(job).await,
            Some(chain) => {
                let push = |job| Box::pin(self.push_direct(job)) as _;
                ClientChain::run(chain, job, &push).await
            }
        }
    }
}
