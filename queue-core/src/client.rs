//! The client: enqueue from a request handler in one round trip, read and cancel jobs.

use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashSet;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use crate::client_middleware::{ClientChain, ClientMiddleware};
use crate::cluster::SharedConnection;
use crate::config::ClientConfig;
use crate::connection::{check_memory_policy, open_shared};
use crate::error::{Error, Result};
use crate::finished_store;
use crate::job::Job;
use crate::job_id::JobId;
use crate::keys::Keys;
use crate::options::{EnqueueOptions, RunAt};
use crate::payload::Retry;
use crate::pushes::Pushes;
use crate::queue_name::validate_queue_name;
use crate::scripts;
use crate::status::{JobState, JobStatus, field};
use crate::timestamp::Timestamp;
use crate::unique::{Unique, UniqueUntil, default_key};

/// A handle on the queue: cheap to clone, shares one multiplexed connection.
///
/// ```no_run
/// # use queue_core::{Client, ClientConfig, Job};
/// # use serde::{Deserialize, Serialize};
/// #[derive(Serialize, Deserialize)]
/// struct Resize { image_id: u64 }
/// impl Job for Resize { const NAME: &'static str = "Resize"; }
///
/// # async fn demo() -> queue_core::Result<()> {
/// let client = Client::connect(ClientConfig::from_env()?).await?;
/// let id = client.enqueue(&Resize { image_id: 7 }).await?;
/// let status = client.status(&id).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    conn: SharedConnection,
    /// The router of pub/sub messages on `conn`, where it speaks RESP3 (`pushes.rs`).
    pushes: Option<Arc<Pushes>>,
    keys: Keys,
    config: Arc<ClientConfig>,
    middleware: ClientChain,
    /// Queues this process added to the app's own `queues` set (spread queues only).
    noted_queues: Arc<std::sync::Mutex<HashSet<String>>>,
    /// This process's copy of each slot's finished-record retention periods.
    finished_keeps: finished_store::KeepsCache,
}

/// The retention periods a read looks in ([`Client::finished_keeps`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownKeeps {
    pub(crate) keeps: Vec<u64>,
    /// Whether they came from this process's copy rather than from Redis just now.
    pub(crate) cached: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
            .field("middleware", &self.middleware)
            .finish_non_exhaustive()
    }
}

/// An untyped job to push, for classes this program has no Rust type for.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Sidekiq class name.
    pub class: String,
    /// Positional arguments.
    pub args: Vec<Value>,
    /// Queue (validated at push).
    pub queue: String,
    /// Retry policy.
    pub retry: Retry,
    /// Whether to keep a status record.
    pub track_status: bool,
    /// Run-later, id and owner options (`queue` and `retry` there override the fields above).
    pub options: EnqueueOptions,
}

impl NewJob {
    /// An untyped job for `class` with `args`, in queue `default`, tracked.
    pub fn new(class: impl Into<String>, args: Vec<Value>) -> Self {
        Self {
            class: class.into(),
            args,
            queue: "default".to_owned(),
            retry: Retry::Default,
            track_status: true,
            options: EnqueueOptions::default(),
        }
    }

    /// The push of typed job `job` with `options`.
    pub fn typed<J: Job>(job: &J, options: EnqueueOptions) -> Result<Self> {
        Ok(Self {
            class: J::NAME.to_owned(),
            args: job.to_args()?,
            queue: J::QUEUE.to_owned(),
            retry: J::RETRY,
            track_status: J::TRACK_STATUS,
            options: EnqueueOptions {
                unique: options.unique.or(J::UNIQUE),
                expires_in: options.expires_in.or(J::EXPIRES_IN),
                ..options
            },
        })
    }
}

/// The job JSON of a new job, borrowed from its push: the fields of [`crate::JobPayload`] that a
/// new job has, in the same order, so the bytes are those `JobPayload::to_json` writes (a
/// unit test compares them) without building a `JobPayload` (and cloning its strings) first.
#[derive(Serialize)]
struct NewPayload<'a> {
    // `jid` first, as in `JobPayload` (a new job has no `retry_count`, which comes next
    // there): the same fields in the same order give the same bytes.
    jid: &'a JobId,
    class: &'a str,
    args: &'a [Value],
    queue: &'a str,
    retry: Retry,
    created_at: Timestamp,
    // Sidekiq removes `enqueued_at` while a job is scheduled; promotion sets it.
    #[serde(skip_serializing_if = "Option::is_none")]
    enqueued_at: Option<Timestamp>,
    // A unique job's key and lifetime, read by the worker to release the key (`unique.rs`);
    // other clients keep unknown fields, as Sidekiq does.
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unique_until: Option<&'static str>,
    // The deadline to start by (epoch s) and a per-enqueue timeout (s), read by the worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<f64>,
    // Last, as `JobPayload::extra` is: the same bytes again.
    #[serde(flatten)]
    extra: &'a serde_json::Map<String, Value>,
}

/// Fields of the job JSON that [`EnqueueOptions::extra`] may not set: the ones
/// [`crate::JobPayload`] reads, and Sidekiq's `at` (a scheduled job's time).
const RESERVED_FIELDS: [&str; 22] = [
    "jid",
    "retry_count",
    "class",
    "args",
    "queue",
    "retry",
    "created_at",
    "enqueued_at",
    "error_message",
    "error_class",
    "failed_at",
    "retried_at",
    "recovered",
    "deferred",
    "unknown_class",
    "handed_back",
    "recovered_from",
    "at",
    "unique_key",
    "unique_until",
    "expires_at",
    "timeout",
];

/// Appends the JSON of `job` (due now unless it has a run time) to `buf` and checks the
/// payload cap; returns where it sits in `buf`. Shared by the client and the test fake, so
/// that a fake push refuses what a real one refuses.
pub(crate) fn encode_job(
    buf: &mut Vec<u8>,
    job: &NewJob,
    queue: &str,
    jid: &JobId,
    now: Timestamp,
    max_payload_bytes: usize,
    unique: Option<(&str, Unique)>,
) -> Result<Range<usize>> {
    if let Some(name) = job
        .options
        .extra
        .keys()
        .find(|k| RESERVED_FIELDS.contains(&k.as_str()))
    {
        return Err(Error::ReservedField(name.clone()));
    }
    let start = buf.len();
    let payload = NewPayload {
        class: &job.class,
        args: &job.args,
        jid,
        queue,
        retry: job.options.retry.unwrap_or(job.retry),
        created_at: now,
        enqueued_at: job.options.run_at.is_none().then_some(now),
        unique_key: unique.map(|(key, _)| key),
        unique_until: unique.map(|(_, u)| u.until.as_str()),
        expires_at: job.options.expires_in.map(|after| {
            // Counted from the run time: a job scheduled for tomorrow is not late today.
            let due = match job.options.run_at {
                None => now.as_secs_f64(),
                Some(RunAt::Delay(d)) => now.as_secs_f64() + d.as_secs_f64(),
                Some(RunAt::At(t)) => Timestamp::from_system_time(t).as_secs_f64(),
            };
            Timestamp::from_secs_f64(due + after.as_secs_f64())
        }),
        timeout: job.options.timeout.map(|t| t.as_secs_f64()),
        extra: &job.options.extra,
    };
    if let Err(e) = serde_json::to_writer(&mut *buf, &payload) {
        buf.truncate(start);
        return Err(Error::Serialize(e));
    }
    let size = buf.len() - start;
    if size > max_payload_bytes {
        buf.truncate(start);
        return Err(Error::PayloadTooLarge {
            size,
            limit: max_payload_bytes,
        });
    }
    Ok(start..buf.len())
}

/// A job turned into what the scripts need; built before anything is sent.
pub(crate) struct Prepared {
    pub(crate) jid: JobId,
    /// Whether the caller chose the id (so it may already exist) or the client generated it.
    given_id: bool,
    pub(crate) queue: String,
    pub(crate) class: String,
    owner: Option<String>,
    pub(crate) json: Vec<u8>,
    pub(crate) track: bool,
    run_at: Option<RunAt>,
    /// A unique job's key and lifetime.
    unique: Option<(String, Unique)>,
}

/// Formats epoch seconds the way every time in the status record is stored.
pub(crate) fn secs_str(t: Timestamp) -> String {
    format!("{:.6}", t.as_secs_f64())
}

/// The fields a new status record starts with, as (field, value) pairs.
///
/// A queued record leaves out `attempt` and `rev`: absent, they read as 0 and 1 (see
/// [`JobStatus`]), and every later writer counts a missing `rev` as 1. A scheduled record
/// keeps them, because `promote.lua` increments `rev` with `HINCRBY`, which would start a
/// missing one at 0 and so make the promotion invisible to a long poll holding `rev` 1.
pub(crate) fn new_status<'a>(
    state: JobState,
    queue: &'a str,
    class: &'a str,
    now: &'a str,
    owner: Option<&'a str>,
    given_id: bool,
) -> Vec<(&'static str, &'a str)> {
    let mut fields = Vec::with_capacity(8);
    fields.extend([
        (field::STATE, state.as_str()),
        (field::QUEUE, queue),
        (field::CLASS, class),
        (field::CREATED_AT, now),
    ]);
    if state == JobState::Scheduled {
        fields.extend([(field::ATTEMPT, "0"), (field::REV, "1")]);
    } else {
        fields.push((field::ENQUEUED_AT, now));
    }
    if let Some(owner) = owner {
        fields.push((field::OWNER, owner));
    }
    if given_id {
        fields.push((field::GIVEN_ID, "1"));
    }
    fields
}

impl Client {
    /// Connects, names the connection, loads the scripts and checks `maxmemory-policy`.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        crate::cluster::check_cluster_prefix(&config)?;
        let (mut conn, pushes) = open_shared(&config).await?;
        if config.accept_invalid_certs && config.is_tls() {
            tracing::warn!(
                "TLS certificate verification is off for Redis (self-signed certificates accepted)"
            );
        }
        check_memory_policy(&mut conn).await;
        let client = Self {
            keys: Keys::new(config.prefix.clone()),
            config: Arc::new(config),
            conn,
            pushes,
            middleware: ClientChain::default(),
            noted_queues: Arc::default(),
            finished_keeps: Default::default(),
        };
        scripts::load(&client, &scripts::client_scripts()).await?;
        Ok(client)
    }

    /// Connects with [`ClientConfig::from_env`].
    pub async fn from_env() -> Result<Self> {
        Self::connect(ClientConfig::from_env()?).await
    }

    /// This client with `middleware` added to its push chain, innermost (see
    /// [`client_middleware`](crate::client_middleware) for the order). Clones share the
    /// connection; the client it was made from keeps its own chain.
    pub fn with_middleware(&self, middleware: impl ClientMiddleware) -> Self {
        Self {
            middleware: self.middleware.with(Arc::new(middleware)),
            ..self.clone()
        }
    }

    /// The key builder for this client's prefix.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// This client aimed at queue `queue`'s slot: the same connection and configuration,
    /// with the keys of that queue's slot when queues are spread over a cluster
    /// ([`ClientConfig::spread_queues`]), else this client itself.
    pub fn for_queue(&self, queue: &str) -> Cow<'_, Client> {
        if self.config.spread_queues {
            Cow::Owned(Self {
                keys: self.keys.queue_slot(queue),
                ..self.clone()
            })
        } else {
            Cow::Borrowed(self)
        }
    }

    /// This client aimed at the slot of job `id`: the one its queue names when queues are
    /// spread ([`JobId::in_queue_slot`]); the app's own for an id that names none.
    pub fn for_job(&self, id: &JobId) -> Cow<'_, Client> {
        self.for_job_id(id.as_str())
    }

    /// [`Client::for_job`] for an id as text.
    pub(crate) fn for_job_id(&self, id: &str) -> Cow<'_, Client> {
        match crate::job_id::queue_slot_of(id) {
            Some(queue) if self.config.spread_queues => self.for_queue(queue),
            _ => Cow::Borrowed(self),
        }
    }

    /// Adds `queue` to the app's own `queues` set, once per process, when queues are spread
    /// over a cluster's slots: each queue's `queues` set is in its own slot, so this is
    /// where the dashboard finds them. A failure is logged and tried again at the next push;
    /// it never fails the push that was made.
    pub async fn note_queue(&self, queue: &str) {
        if !self.config.spread_queues {
            return;
        }
        let new = match self.noted_queues.lock() {
            Ok(mut noted) => noted.insert(queue.to_owned()),
            Err(_) => true,
        };
        if !new {
            return;
        }
        let mut conn = self.conn.clone();
        let added = self
            .bounded(
                redis::cmd("SADD")
                    .arg(self.keys.home().queues())
                    .arg(queue)
                    .query_async::<()>(&mut conn),
            )
            .await;
        if let Err(e) = added {
            tracing::warn!(queue, error = %e, "could not add the queue to the app's queues set; trying again at the next push");
            if let Ok(mut noted) = self.noted_queues.lock() {
                noted.remove(queue);
            }
        }
    }

    /// The key of job `id`'s status record, in its queue's slot when queues are spread.
    pub fn status_key(&self, id: &str) -> String {
        match crate::job_id::queue_slot_of(id) {
            Some(queue) if self.config.spread_queues => self.keys.queue_slot(queue).status(id),
            _ => self.keys.status(id),
        }
    }

    /// The id a job of `queue` gets: the caller's, or a fresh one; when queues are spread,
    /// prefixed with the queue so that the id finds its slot.
    pub(crate) fn job_id_for(&self, queue: &str, given: Option<&JobId>) -> Result<JobId> {
        let id = given.cloned().unwrap_or_default();
        if self.config.spread_queues {
            JobId::in_queue_slot(queue, &id)
        } else {
            Ok(id)
        }
    }

    /// The configuration this client was made from.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// The router of pub/sub messages on the shared connection, `None` when subscribers
    /// need a connection of their own (see [`crate::pushes`]).
    pub(crate) fn pushes(&self) -> Option<&Arc<Pushes>> {
        self.pushes.as_ref()
    }

    /// Whether wake-ups and status announcements arrive on the shared connection (RESP3),
    /// so that this process holds one connection to Redis rather than two.
    pub fn pushes_on_shared_connection(&self) -> bool {
        self.pushes.is_some()
    }

    /// A clone of the shared connection: only this crate builds Redis commands.
    pub(crate) fn connection(&self) -> SharedConnection {
        self.conn.clone()
    }

    /// A clone of the shared connection, for tests and benches that plant or read raw state.
    #[cfg(feature = "test-support")]
    pub fn raw_connection(&self) -> SharedConnection {
        self.conn.clone()
    }

    /// Runs a Redis call under the configured timeout, mapping errors to [`Error`].
    pub(crate) async fn bounded<T, F>(&self, call: F) -> Result<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.config.timeout, call).await {
            Ok(reply) => reply.map_err(|e| Error::from_bounded(e, self.config.timeout)),
            Err(_) => Err(Error::Timeout(self.config.timeout)),
        }
    }

    /// Measures one `PING` round trip.
    pub async fn ping(&self) -> Result<Duration> {
        let mut conn = self.conn.clone();
        let start = std::time::Instant::now();
        self.bounded(redis::cmd("PING").query_async::<()>(&mut conn))
            .await?;
        Ok(start.elapsed())
    }

    /// Enqueues `job` with its type's defaults; returns its id.
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<JobId> {
        self.enqueue_with(job, EnqueueOptions::default()).await
    }

    /// Enqueues `job` with `options` (queue, delay, retry, id, owner).
    pub async fn enqueue_with<J: Job>(&self, job: &J, options: EnqueueOptions) -> Result<JobId> {
        self.push(NewJob::typed(job, options)?).await
    }

    /// Enqueues `job` to run after `delay` (measured by Redis's clock).
    pub async fn enqueue_in<J: Job>(&self, job: &J, delay: Duration) -> Result<JobId> {
        self.enqueue_with(job, EnqueueOptions::new().delay(delay))
            .await
    }

    /// Enqueues `job` to run at `at`.
    pub async fn enqueue_at<J: Job>(&self, job: &J, at: std::time::SystemTime) -> Result<JobId> {
        self.enqueue_with(job, EnqueueOptions::new().at(at)).await
    }

    /// Pushes one untyped job: one round trip, idempotent on its id when tracked.
    ///
    /// A second push of an id that already has a status record writes nothing and returns
    /// the same id, so retrying an enqueue whose reply was lost never makes a second job.
    /// Untracked jobs keep no record and so are not deduplicated.
    pub async fn push(&self, job: NewJob) -> Result<JobId> {
        match self.middleware.get() {
            None => self.push_direct(job).await,
            Some(chain) => {
                let push = |job| Box::pin(self.push_direct(job)) as _;
                ClientChain::run(chain, job, &push).await
            }
        }
    }

    /// [`Client::push`] without the middleware.
    async fn push_direct(&self, job: NewJob) -> Result<JobId> {
        let now = Timestamp::now();
        let p = self.prepare(&job, now)?;
        let id = self
            .for_queue(&p.queue)
            .push_prepared(&p, &secs_str(now))
            .await?;
        self.note_queue(&p.queue).await;
        Ok(id)
    }

    /// Sends one prepared job: `enqueue_unique.lua` for a unique job, else `enqueue.lua` when
    /// it is due now, `schedule.lua` otherwise. `now` is the creation time as the status
    /// record stores it. Returns the id to report: the job's own, or for a unique job whose
    /// key another job holds, that job's.
    pub(crate) async fn push_prepared(&self, p: &Prepared, now: &str) -> Result<JobId> {
        let state = match p.run_at {
            None => JobState::Queued,
            Some(_) => JobState::Scheduled,
        };
        let mut status = p.track.then(|| {
            new_status(
                state,
                &p.queue,
                &p.class,
                now,
                p.owner.as_deref(),
                p.given_id,
            )
        });
        if let Some((key, unique)) = &p.unique {
            if let Some(fields) = status.as_mut() {
                fields.push((field::UNIQUE, key.as_str()));
            }
            let job = scripts::EnqueueUnique {
                key,
                ttl: unique.ttl,
                queue: &p.queue,
                jid: p.jid.as_str(),
                json: &p.json,
                status: status.as_deref(),
                given_id: p.given_id,
                run_at: p.run_at,
            };
            let mut took_over = false;
            loop {
                match scripts::enqueue_unique(self, &job).await? {
                    scripts::UniqueEnqueued::Duplicate(holder) => {
                        // A holder whose record shows it is past its lifetime left its key
                        // behind (its release failed): give the key back for it, once, and
                        // try again. A holder without a record (untracked, or its record
                        // expired) cannot be judged and keeps the key until its TTL.
                        if !took_over && self.left_over(&holder, unique.until).await {
                            took_over = true;
                            scripts::unique_release(self, key, holder.as_str()).await?;
                            tracing::warn!(job_id = %holder, "unique key left by a finished job taken over");
                            continue;
                        }
                        tracing::debug!(job_id = %holder, "unique job already enqueued; its id returned");
                        return Ok(holder);
                    }
                    scripts::UniqueEnqueued::Pushed | scripts::UniqueEnqueued::Known => {
                        return Ok(p.jid.clone());
                    }
                }
            }
        }
        let created = match p.run_at {
            None => {
                let job = scripts::Enqueue {
                    queue: &p.queue,
                    jid: p.jid.as_str(),
                    json: &p.json,
                    status: status.as_deref(),
                    given_id: p.given_id,
                };
                scripts::enqueue(self, &job).await?
            }
            Some(run_at) => {
                let job = scripts::Schedule {
                    jid: p.jid.as_str(),
                    json: &p.json,
                    status: status.as_deref(),
                    run_at,
                };
                scripts::schedule(self, &job).await?
            }
        };
        if !created {
            tracing::debug!(job_id = %p.jid, "enqueue of a known job id ignored");
        }
        Ok(p.jid.clone())
    }

    /// Appends the JSON of `job` (due now unless it has a run time) to `buf` and checks the
    /// payload cap; returns where it sits in `buf`.
    pub(crate) fn encode(
        &self,
        buf: &mut Vec<u8>,
        job: &NewJob,
        queue: &str,
        jid: &JobId,
        now: Timestamp,
        unique: Option<(&str, Unique)>,
    ) -> Result<Range<usize>> {
        encode_job(
            buf,
            job,
            queue,
            jid,
            now,
            self.config.max_payload_bytes,
            unique,
        )
    }

    pub(crate) fn prepare(&self, job: &NewJob, now: Timestamp) -> Result<Prepared> {
        let queue = job.options.queue.as_deref().unwrap_or(&job.queue);
        validate_queue_name(queue)?;
        let jid = self.job_id_for(queue, job.options.job_id.as_ref())?;
        let unique = job.options.unique.map(|u| {
            let key = match &job.options.unique_key {
                Some(key) => key.clone(),
                None => default_key(&job.class, queue, &job.args),
            };
            (key, u)
        });
        let mut json = Vec::with_capacity(256);
        let unique_ref = unique.as_ref().map(|(k, u)| (k.as_str(), *u));
        self.encode(&mut json, job, queue, &jid, now, unique_ref)?;
        Ok(Prepared {
            jid,
            given_id: job.options.job_id.is_some(),
            queue: queue.to_owned(),
            class: job.class.clone(),
            owner: job.options.owner.clone(),
            json,
            track: job.track_status,
            run_at: job.options.run_at,
            unique,
        })
    }

    /// Reads the status record of job `id`; `None` when there is none (never tracked,
    /// expired, or pushed by a foreign client and not yet touched by a worker). One call,
    /// wherever the record is: its own hash, or packed in the finished-record store
    /// ([`crate::finished_store`]).
    pub async fn status(&self, id: &JobId) -> Result<Option<JobStatus>> {
        scripts::status_read(self, id.as_str()).await
    }

    /// The retention periods the finished-record store of this client's slot holds records
    /// for: this process's copy when it is fresh and `refresh` is false, else read afresh.
    /// A key of another type at [`Keys::finished_keeps`] reads as an empty set: the default
    /// period is always among them.
    pub(crate) async fn finished_keeps(&self, refresh: bool) -> Result<KnownKeeps> {
        let key = self.keys.finished_keeps();
        if let Some(keeps) = self.finished_keeps.fresh(&key).filter(|_| !refresh) {
            return Ok(KnownKeeps {
                keeps,
                cached: true,
            });
        }
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        // A set of another type (the only error SMEMBERS replies with) holds no periods.
        pipe.ignore_errors().cmd("SMEMBERS").arg(&key);
        let replies: Vec<redis::RedisResult<Vec<Vec<u8>>>> =
            self.bounded(pipe.query_async(&mut conn)).await?;
        let members: Vec<String> = replies
            .into_iter()
            .next()
            .and_then(|reply| reply.ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| String::from_utf8(m).ok())
            .collect();
        let default_keep = self.config.status_retention.finished.as_secs();
        let keeps = finished_store::keeps_from(&members, default_keep);
        self.finished_keeps.store(&key, keeps.clone());
        Ok(KnownKeeps {
            keeps,
            cached: false,
        })
    }

    /// Whether unique job `holder` is past the key lifetime `until` by its status record.
    async fn left_over(&self, holder: &JobId, until: UniqueUntil) -> bool {
        match self.status(holder).await {
            Ok(Some(status)) => until.released_in(status.state),
            _ => false,
        }
    }

    /// Cancels job `id` unless it has finished. A job that has not started is skipped by the
    /// worker; a running one has its `ctx.cancelled()` fire on whichever process holds it,
    /// and is not run again. Either way its record says `cancelled` at once. Returns whether
    /// it did (false: no record, or the job had finished).
    ///
    /// A cancelled unique job gives its key back (a second call after `cancel.lua`: if this
    /// process dies in between, the key lasts until its TTL).
    pub async fn cancel(&self, id: &JobId) -> Result<bool> {
        let slot = self.for_job(id);
        let cancelled = scripts::cancel(&slot, id.as_str()).await? != scripts::Cancelled::TooLate;
        if cancelled {
            let mut conn = self.conn.clone();
            let key: Option<String> = self
                .bounded(
                    redis::cmd("HGET")
                        .arg(slot.keys.status(id.as_str()))
                        .arg(field::UNIQUE)
                        .query_async(&mut conn),
                )
                .await?;
            if let Some(key) = key {
                scripts::unique_release(&slot, &key, id.as_str()).await?;
            }
        }
        Ok(cancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handlers call these from `tokio::spawn`ed tasks: their futures must stay `Send`.
    #[allow(dead_code)]
    fn client_futures_are_send(client: &Client) {
        fn is_send<T: Send>(_: T) {}
        is_send(client.push_bulk(Vec::new()));
        is_send(client.push(NewJob::new("X", Vec::new())));
        is_send(client.status(&JobId::new()));
    }

    /// The borrowed encoding writes exactly the bytes `JobPayload::to_json` writes.
    #[test]
    fn new_payload_encodes_like_job_payload() {
        use crate::payload::JobPayload;
        let now = Timestamp::from_secs_f64(1_760_000_000.123_456);
        for (retry, enqueued_at) in [
            (Retry::Default, Some(now)),
            (Retry::Disabled, None),
            (Retry::Max(3), Some(now)),
        ] {
            let jid = JobId::new();
            let mut extra = serde_json::Map::new();
            if retry == Retry::Disabled {
                extra.insert("tenant".to_owned(), serde_json::json!({"id": 7}));
            }
            let args = vec![
                serde_json::json!({"name": "a\"b\u{e9}", "n": 1.5, "list": [1, null, true]}),
                serde_json::json!("x"),
            ];
            let ours = serde_json::to_string(&NewPayload {
                class: "Mod::Job\"quoted",
                args: &args,
                jid: &jid,
                queue: "q.1",
                retry,
                created_at: now,
                enqueued_at,
                unique_key: None,
                unique_until: None,
                expires_at: None,
                timeout: None,
                extra: &extra,
            })
            .unwrap();
            let theirs = JobPayload {
                class: "Mod::Job\"quoted".to_owned(),
                args,
                jid,
                queue: "q.1".to_owned(),
                retry,
                created_at: Some(now),
                enqueued_at,
                retry_count: None,
                error_message: None,
                error_class: None,
                failed_at: None,
                retried_at: None,
                recovered: None,
                deferred: None,
                unknown_class: None,
                handed_back: None,
                recovered_from: None,
                extra: extra.clone(),
            }
            .to_json()
            .unwrap();
            assert_eq!(ours, theirs);
        }
    }
}
