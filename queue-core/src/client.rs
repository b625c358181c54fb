//! The client: enqueue from a request handler in one round trip, read and cancel jobs.

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::config::ClientConfig;
use crate::connection::{check_memory_policy, shared_connection};
use crate::error::{Error, Result};
use crate::job::Job;
use crate::job_id::JobId;
use crate::keys::Keys;
use crate::options::{EnqueueOptions, RunAt};
use crate::payload::{JobPayload, Retry};
use crate::queue_name::validate_queue_name;
use crate::scripts;
use crate::status::{JobState, JobStatus, field};
use crate::timestamp::Timestamp;

/// Bulk chunks sent before the first of them has answered.
const BULK_IN_FLIGHT: usize = 4;
/// Jobs per script call in bulk enqueue (Sidekiq pushes bulk in batches of 1,000 too).
const BULK_CHUNK: usize = 1000;

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
    conn: ConnectionManager,
    keys: Keys,
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.config)
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
            options,
        })
    }
}

/// What jobs must share to go out in one `enqueue_bulk.lua` call: queue, tracking, status fields.
type BulkGroup = (String, bool, Vec<(&'static str, String)>);

/// A job turned into what the scripts need; built before anything is sent.
struct Prepared {
    jid: JobId,
    queue: String,
    json: String,
    track: bool,
    status_fields: Vec<(&'static str, String)>,
    run_at: Option<RunAt>,
}

/// Formats epoch seconds the way every time in the status record is stored.
pub(crate) fn secs_str(t: Timestamp) -> String {
    format!("{:.6}", t.as_secs_f64())
}

impl Client {
    /// Connects, names the connection, loads the scripts and checks `maxmemory-policy`.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        let mut conn = shared_connection(&config).await?;
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
        };
        client.load_scripts(&scripts::client_scripts()).await?;
        Ok(client)
    }

    /// Connects with [`ClientConfig::from_env`].
    pub async fn from_env() -> Result<Self> {
        Self::connect(ClientConfig::from_env()?).await
    }

    /// Loads scripts into Redis so that their first use is a single `EVALSHA`.
    pub async fn load_scripts(&self, scripts: &[&redis::Script]) -> Result<()> {
        for script in scripts {
            let mut conn = self.conn.clone();
            self.bounded(async move { script.load_async(&mut conn).await })
                .await?;
        }
        Ok(())
    }

    /// The key builder for this client's prefix.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The configuration this client was made from.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// A clone of the shared connection, for crates that build on this one.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs a Redis call under the configured timeout, mapping errors to [`Error`].
    pub async fn bounded<T, F>(&self, call: F) -> Result<T>
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

    /// Enqueues many jobs of one type with their type's defaults, in chunked script calls.
    pub async fn enqueue_bulk<J: Job>(&self, jobs: &[J]) -> Result<Vec<JobId>> {
        let new_jobs = jobs
            .iter()
            .map(|j| NewJob::typed(j, EnqueueOptions::default()))
            .collect::<Result<Vec<_>>>()?;
        self.push_bulk(new_jobs).await
    }

    /// Pushes one untyped job: one round trip, idempotent on its id when tracked.
    ///
    /// A second push of an id that already has a status record writes nothing and returns
    /// the same id, so retrying an enqueue whose reply was lost never makes a second job.
    /// Untracked jobs keep no record and so are not deduplicated.
    pub async fn push(&self, job: NewJob) -> Result<JobId> {
        let p = self.prepare(job, Timestamp::now())?;
        self.push_prepared(&p).await?;
        Ok(p.jid)
    }

    /// Sends one prepared job: `enqueue.lua` when it is due now, `schedule.lua` otherwise.
    async fn push_prepared(&self, p: &Prepared) -> Result<()> {
        let mut conn = self.conn.clone();
        let retention = self.config.status_retention.active.as_secs();
        let created: i64 = match p.run_at {
            None => {
                let mut inv = scripts::ENQUEUE.prepare_invoke();
                inv.key(self.keys.queue(&p.queue))
                    .key(self.keys.queues())
                    .key(self.keys.status(p.jid.as_str()))
                    .arg(&p.queue)
                    .arg(&p.json)
                    .arg(if p.track { "1" } else { "0" })
                    .arg(retention)
                    .arg(self.keys.wake_channel());
                for (f, v) in &p.status_fields {
                    inv.arg(*f).arg(v);
                }
                self.bounded(inv.invoke_async(&mut conn)).await?
            }
            Some(run_at) => {
                let (at, delay_ms) = match run_at {
                    RunAt::At(t) => (secs_str(Timestamp::from_system_time(t)), 0),
                    RunAt::Delay(d) => (String::new(), d.as_millis()),
                };
                let mut inv = scripts::SCHEDULE.prepare_invoke();
                inv.key(self.keys.schedule())
                    .key(self.keys.status(p.jid.as_str()))
                    .arg(&p.json)
                    .arg(if p.track { "1" } else { "0" })
                    .arg(retention)
                    .arg(at)
                    .arg(delay_ms.to_string());
                for (f, v) in &p.status_fields {
                    inv.arg(*f).arg(v);
                }
                let reply: redis::Value = self.bounded(inv.invoke_async(&mut conn)).await?;
                i64::from(!matches!(reply, redis::Value::Int(0)))
            }
        };
        if created == 0 {
            tracing::debug!(job_id = %p.jid, "enqueue of a known job id ignored");
        }
        Ok(())
    }

    /// Pushes many untyped jobs, in chunks of 1,000 per script call.
    ///
    /// Everything is validated before anything is sent: one bad job fails the whole call
    /// with nothing written. Jobs due now are grouped by queue and status record (class,
    /// owner), since one script call writes one queue and one set of shared status fields;
    /// up to four chunks are in flight at once on the shared connection, which pipelines them. Jobs with
    /// a run time go to the schedule set, one call each.
    pub async fn push_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        let now = Timestamp::now();
        let prepared = jobs
            .into_iter()
            .map(|j| self.prepare(j, now))
            .collect::<Result<Vec<_>>>()?;
        let ids = prepared.iter().map(|p| p.jid.clone()).collect();
        let (scheduled, ready): (Vec<Prepared>, Vec<Prepared>) =
            prepared.into_iter().partition(|p| p.run_at.is_some());
        // Groups in first-seen order, so that jobs of one queue keep their relative order.
        let mut groups: Vec<Vec<Prepared>> = Vec::new();
        let mut group_of: HashMap<BulkGroup, usize> = HashMap::new();
        for p in ready {
            let key = (p.queue.clone(), p.track, p.status_fields.clone());
            let index = *group_of.entry(key).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[index].push(p);
        }
        // A few chunks in flight keep Redis busy while the next ones are sent, and each
        // chunk's timeout starts when it is sent, not when the whole call began.
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        for chunk in groups.iter().flat_map(|g| g.chunks(BULK_CHUNK)) {
            if in_flight.len() >= BULK_IN_FLIGHT
                && let Some(done) = in_flight.next().await
            {
                done?;
            }
            in_flight.push(self.push_chunk(chunk));
        }
        while let Some(done) = in_flight.next().await {
            done?;
        }
        futures_util::future::try_join_all(scheduled.iter().map(|p| self.push_prepared(p))).await?;
        Ok(ids)
    }

    /// Sends jobs of one bulk group (same queue, tracking and status fields) in one call.
    async fn push_chunk(&self, chunk: &[Prepared]) -> Result<i64> {
        let Some(first) = chunk.first() else {
            return Ok(0);
        };
        let (queue, track) = (first.queue.as_str(), first.track);
        let mut inv = scripts::ENQUEUE_BULK.prepare_invoke();
        inv.key(self.keys.queue(queue)).key(self.keys.queues());
        if track {
            for p in chunk {
                inv.key(self.keys.status(p.jid.as_str()));
            }
        }
        // Every job of a group has the same status fields: send them once.
        let shared = &first.status_fields;
        inv.arg(queue)
            .arg(if track { "1" } else { "0" })
            .arg(self.config.status_retention.active.as_secs())
            .arg(self.keys.wake_channel())
            .arg(shared.len() * 2);
        for (f, v) in shared {
            inv.arg(*f).arg(v);
        }
        for p in chunk {
            inv.arg(&p.json);
        }
        let mut conn = self.conn.clone();
        self.bounded(inv.invoke_async(&mut conn)).await
    }

    fn prepare(&self, job: NewJob, now: Timestamp) -> Result<Prepared> {
        let NewJob {
            class,
            args,
            queue,
            retry,
            track_status,
            options,
        } = job;
        let queue = options.queue.unwrap_or(queue);
        validate_queue_name(&queue)?;
        let jid = options.job_id.unwrap_or_default();
        let scheduled = options.run_at.is_some();
        let payload = JobPayload {
            class,
            args,
            jid: jid.clone(),
            queue: queue.clone(),
            retry: options.retry.unwrap_or(retry),
            created_at: Some(now),
            // Sidekiq removes `enqueued_at` while a job is scheduled; promotion sets it.
            enqueued_at: (!scheduled).then_some(now),
            retry_count: None,
            error_message: None,
            error_class: None,
            failed_at: None,
            retried_at: None,
            recovered: None,
            deferred: None,
            unknown_class: None,
            extra: serde_json::Map::new(),
        };
        let json = payload.to_json()?;
        if json.len() > self.config.max_payload_bytes {
            return Err(Error::PayloadTooLarge {
                size: json.len(),
                limit: self.config.max_payload_bytes,
            });
        }
        let now_s = secs_str(now);
        let state = if scheduled {
            JobState::Scheduled
        } else {
            JobState::Queued
        };
        let mut status_fields = vec![
            (field::STATE, state.as_str().to_owned()),
            (field::QUEUE, queue.clone()),
            (field::CLASS, payload.class),
            (field::CREATED_AT, now_s.clone()),
            (field::ATTEMPT, "0".to_owned()),
            (field::REV, "1".to_owned()),
        ];
        if !scheduled {
            status_fields.push((field::ENQUEUED_AT, now_s));
        }
        if let Some(owner) = options.owner {
            status_fields.push((field::OWNER, owner));
        }
        Ok(Prepared {
            jid,
            queue,
            json,
            track: track_status,
            status_fields,
            run_at: options.run_at,
        })
    }

    /// Reads the status record of job `id`; `None` when there is none (never tracked,
    /// expired, or pushed by a foreign client and not yet touched by a worker).
    pub async fn status(&self, id: &JobId) -> Result<Option<JobStatus>> {
        let mut conn = self.conn.clone();
        let key = self.keys.status(id.as_str());
        let hash: HashMap<String, String> = self
            .bounded(redis::cmd("HGETALL").arg(key).query_async(&mut conn))
            .await?;
        Ok(JobStatus::from_hash(hash))
    }

    /// Cancels job `id` if it has not started: the worker will skip it. Returns whether it did.
    pub async fn cancel(&self, id: &JobId) -> Result<bool> {
        let mut conn = self.conn.clone();
        let mut inv = scripts::CANCEL.prepare_invoke();
        inv.key(self.keys.status(id.as_str()))
            .arg(secs_str(Timestamp::now()))
            .arg(self.config.status_retention.finished.as_secs());
        let done: i64 = self.bounded(inv.invoke_async(&mut conn)).await?;
        Ok(done == 1)
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
}
