//! Per-enqueue options.

use serde_json::{Map, Value};
use std::time::{Duration, SystemTime};

use crate::job_id::JobId;
use crate::payload::Retry;

/// Options for one enqueue; every field falls back to the job type's defaults.
///
/// ```
/// use queue_core::{EnqueueOptions, JobId, Retry};
/// use std::time::Duration;
/// let opts = EnqueueOptions::new()
///     .queue("critical")
///     .retry(Retry::Max(3))
///     .delay(Duration::from_secs(60))
///     .job_id(JobId::new())
///     .owner("user-42");
/// assert_eq!(opts.queue.as_deref(), Some("critical"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Queue to push to instead of the job type's.
    pub queue: Option<String>,
    /// Run later: after a delay or at a time.
    pub run_at: Option<RunAt>,
    /// Retry policy instead of the job type's.
    pub retry: Option<Retry>,
    /// An explicit job id; enqueueing the same id twice creates one job.
    pub job_id: Option<JobId>,
    /// Who may read the job's status (recorded in the status record for access checks).
    pub owner: Option<String>,
    /// Extra top-level fields of the job JSON (a tenant, a W3C `traceparent`): Sidekiq
    /// ignores fields it does not know, and a worker reads them in
    /// [`JobPayload::extra`](crate::JobPayload::extra). Names of Sidekiq's own fields are
    /// refused at push ([`Error::ReservedField`](crate::Error::ReservedField)).
    pub extra: Map<String, Value>,
}

/// When a scheduled job becomes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAt {
    /// After this delay, measured from Redis's clock at enqueue.
    Delay(Duration),
    /// At this time of the caller's clock.
    At(SystemTime),
}

impl EnqueueOptions {
    /// Empty options: the job type's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pushes to `queue`.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Runs after `delay`.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.run_at = Some(RunAt::Delay(delay));
        self
    }

    /// Runs at `at`.
    pub fn at(mut self, at: SystemTime) -> Self {
        self.run_at = Some(RunAt::At(at));
        self
    }

    /// Uses retry policy `retry`.
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Uses job id `id`.
    pub fn job_id(mut self, id: JobId) -> Self {
        self.job_id = Some(id);
        self
    }

    /// Records `owner` in the status record.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Adds the extra top-level field `name` to the job JSON (see [`EnqueueOptions::extra`]).
    ///
    /// ```
    /// use queue_core::EnqueueOptions;
    /// let opts = EnqueueOptions::new().field("tenant", "acme");
    /// assert_eq!(opts.extra["tenant"], "acme");
    /// ```
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }
}
