//! Per-enqueue options.

use serde_json::{Map, Value};
use std::time::{Duration, SystemTime};

use crate::job_id::JobId;
use crate::payload::Retry;
use crate::unique::Unique;

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
///     .owner("user-42")
///     .expires_in(Duration::from_secs(30)) // start within 30 s of its run time, or `expired`
///     .timeout(Duration::from_secs(5));    // each attempt at most 5 s
/// assert_eq!(opts.queue.as_deref(), Some("critical"));
/// assert_eq!(opts.expires_in, Some(Duration::from_secs(30)));
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
    /// Unique job: at most one job with its uniqueness key at a time (`unique.rs`); overrides
    /// the job type's [`Job::UNIQUE`](crate::Job::UNIQUE).
    pub unique: Option<Unique>,
    /// The uniqueness key instead of the default (class, queue and arguments hashed).
    pub unique_key: Option<String>,
    /// Drop the job (status `expired`) if no worker starts it within this long after it is
    /// due (its run time, for a scheduled job); overrides [`Job::EXPIRES_IN`](crate::Job::EXPIRES_IN).
    pub expires_in: Option<Duration>,
    /// Longest one attempt may run, instead of the job type's `timeout()`.
    pub timeout: Option<Duration>,
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

    /// Drops the job as `expired` unless a worker starts it within `after` of its run time.
    pub fn expires_in(mut self, after: Duration) -> Self {
        self.expires_in = Some(after);
        self
    }

    /// Bounds each attempt of this job to `timeout` (instead of the job type's).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Makes the job unique by its class, queue and arguments, for `unique`'s lifetime.
    pub fn unique(mut self, unique: Unique) -> Self {
        self.unique = Some(unique);
        self
    }

    /// Makes the job unique by `key` (for example `"report:42"`), for `unique`'s lifetime.
    pub fn unique_by(mut self, key: impl Into<String>, unique: Unique) -> Self {
        self.unique = Some(unique);
        self.unique_key = Some(key.into());
        self
    }
}
