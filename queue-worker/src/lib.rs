//! # queue-worker
//!
//! Worker processes for the queue: they take jobs reliably, run them with timeouts and
//! panic capture, retry failures with Sidekiq's backoff, promote scheduled jobs, recover the
//! jobs of dead processes, and shut down inside the platform's 30-second window.
//!
//! Words used throughout (Sidekiq's where it has one):
//! - **exchange**: the one task that, in one `ack_fetch.lua` round trip per cycle, sends the
//!   acks of finished jobs and takes the next jobs into this process's processing list.
//! - **in flight**: the processing-list entries a task of this process is handling now (the
//!   in-flight set, `in_flight.rs`); an entry listed in Redis but not here is an orphan.
//! - **runner**: the task that runs one job attempt: slot, timeout, panic capture.
//! - **settle**: end an attempt other than by an ack: fail (retry or dead), defer, hand back.
//! - **hand back**: put a taken job back at the front of its queue, from the runner
//!   (shutdown), the reaper (its process died) or the audit (orphan): `settle::hand_back`.
//! - **reaper**: recovers the jobs of processes whose lease expired.
//! - **audit**: hands back this process's own orphaned entries (a lost fetch reply, a
//!   settle call that gave up); it runs after each reaper pass.
//!
//! Every Redis call goes through a typed wrapper of `queue_core::scripts` or a `Client`
//! method: this crate builds no Redis command.
//!
//! A tour (one file per concept):
//! - [`Worker`] / [`WorkerBuilder`] (`worker.rs`): registration, start-up, the shutdown order.
//! - `exchange.rs`: one round trip per cycle acks finished jobs and reliably fetches the next
//!   ones (with prefetch) into a per-process processing list; woken by pub/sub when idle.
//! - `dispatch.rs`: fetched entries to runners; `ack.rs`: what an ack carries.
//! - `runner.rs`: one task per job; the wait for a slot, timeout, panic, hand-back.
//! - `settle.rs`: retry, dead, burial of bad input, deferral, and the one hand-back.
//! - `scheduler.rs`: promotion of due scheduled and retry jobs by Redis's clock.
//! - `heartbeat.rs`, `membership.rs`: the lease and the Sidekiq process record.
//! - `signals.rs`: quiet and stop sent by operators; `cancels.rs`: cancelling a running job.
//! - `reaper.rs`: the reaper and the audit.
//! - `limit.rs`: global concurrency limits per job class (`Job::CONCURRENCY_LIMIT`).
//! - [`middleware`]: code around every attempt; [`hooks`]: code at start, quiet, shutdown
//!   and death; `perform.rs`: one attempt's future (handler, middleware, span).
//! - `job_span.rs`: the span of each attempt; [`finished_log`]: one line per finished job,
//!   folded into per-second summaries under load; `worker_metrics.rs` and
//!   `metrics_listener.rs`: Prometheus metrics and their optional port.
//! - [`testing`]: run handlers in tests without Redis ([`testing::TestWorker`]).
//! - [`run`] (`run.rs`): the `main` of a worker binary, configured from the environment.
//!
//! Connections: the client's shared multiplexed connection, which carries the wake-ups as
//! RESP3 pushes, whatever the concurrency (plus one pub/sub connection where the server
//! refuses RESP3, or in cluster mode).
//!
//! ```no_run
//! use queue_core::Job;
//! use queue_worker::{Failure, JobContext, Worker};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Resize { image_id: u64 }
//! impl Job for Resize { const NAME: &'static str = "Resize"; }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), queue_worker::Error> {
//!     queue_worker::run(Worker::builder().register(|job: Resize, ctx: JobContext| async move {
//!         ctx.progress(10, "downloading").await.ok();
//!         Ok::<_, Failure>(serde_json::json!({ "resized": job.image_id }))
//!     }))
//!     .await
//! }
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod ack;
mod cancels;
pub mod config;
mod context;
mod dispatch;
mod error;
mod exchange;
mod expiry;
mod extensions;
mod failure;
mod fence;
pub mod finished_log;
mod heartbeat;
pub mod hooks;
mod in_flight;
mod job_span;
mod limit;
pub mod limiter;
mod membership;
mod metrics_listener;
pub mod middleware;
mod paused;
mod perform;
pub mod periodic;
mod queue_slots;
mod queues;
mod reaper;
mod registry;
pub mod retry;
mod room;
mod run;
mod runner;
mod scheduler;
mod settle;
mod shared;
mod signals;
mod slot_leases;
pub mod testing;
mod unique;
mod wake;
mod worker;
mod worker_metrics;

pub use config::WorkerConfig;
pub use context::JobContext;
pub use error::{Error, Result};
pub use failure::{Failure, InternalFailure, PANIC_CLASS, QUEUE_ERROR_CLASS};
pub use heartbeat::rss_kib;
pub use hooks::DeadJob;
pub use job_span::JOB_SPAN;
pub use limiter::{Limit, Limiter, LimiterPermit};
pub use membership::Identity;
pub use middleware::Middleware;
pub use periodic::{Missed, Periodic, periodic_from_json};
pub use queues::Queues;
pub use registry::{Attempt, Registry};
pub use run::{run, shutdown_signal};
pub use settle::MALFORMED_CLASS;
pub use worker::{RunningWorker, Worker, WorkerBuilder};

// Moved to `queue_core::platform` (the web dyno needs it too); re-exported for worker mains.
pub use queue_core::platform::{Logfmt, init_logging};
