//! # queue-core
//!
//! The foundation of a Sidekiq-compatible job queue on Redis: the job model, the key
//! layout, the Lua scripts, the enqueue [`Client`] and the job-status store.
//!
//! A tour:
//! - [`Job`]: a typed job; its value is the arguments ([`job`] explains the mapping to
//!   Sidekiq's `args`).
//! - [`JobPayload`]: the stored job, Sidekiq's JSON, unknown fields round-tripped.
//!   Timestamps are read in both Sidekiq units and written as float epoch seconds
//!   ([`Timestamp`]).
//! - [`Keys`]: every key name, Sidekiq's by default, under an optional prefix.
//! - [`Client`]: `enqueue` in one round trip, scheduled and bulk enqueue, `status`, `cancel`.
//! - [`JobStatus`]: the per-job status record and its retention ([`status`]).
//! - [`Enqueue`]: what app code takes to enqueue, so a test can hand it the
//!   [`testing::FakeClient`] instead of a [`Client`]; [`ClientMiddleware`] wraps every push.
//! - [`Inspector`]: read-only views of queues, sets, processes and counters ([`inspect`]).
//! - `platform` (feature `platform`, on by default): stdout logging and the shutdown signal
//!   for the mains of web and worker dynos.
//!
//! ```no_run
//! use queue_core::{Client, ClientConfig, Job};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct BuildReport { account_id: u64 }
//!
//! impl Job for BuildReport {
//!     const NAME: &'static str = "BuildReport";
//!     const QUEUE: &'static str = "reports";
//! }
//!
//! # async fn handler() -> queue_core::Result<()> {
//! let client = Client::connect(ClientConfig::from_env()?).await?;
//! let id = client.enqueue(&BuildReport { account_id: 42 }).await?;
//! println!("poll /jobs/{id}");
//! # Ok(()) }
//! ```
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

mod bulk;
pub mod client;
pub mod client_middleware;
pub mod cluster;
pub mod cluster_handle;
pub mod config;
pub mod connection;
mod enqueue;
pub mod error;
pub mod finished_store;
pub mod inspect;
pub mod job;
pub mod job_id;
pub mod keys;
#[cfg(feature = "platform")]
mod logfmt;
pub mod malformed;
pub mod options;
#[cfg(feature = "otel")]
pub mod otel;
pub mod payload;
pub mod periodic;
#[cfg(feature = "platform")]
pub mod platform;
mod process;
mod pushes;
pub mod queue_name;
pub mod redact;
pub mod scripts;
pub mod status;
pub mod status_changes;
mod subscription_check;
pub mod testing;
pub mod timestamp;
pub mod unique;

pub use client::{Client, NewJob};
pub use client_middleware::ClientMiddleware;
pub use config::ClientConfig;
pub use enqueue::Enqueue;
pub use error::{Error, Result};
pub use inspect::Inspector;
pub use job::Job;
pub use job_id::JobId;
pub use keys::Keys;
pub use options::{EnqueueOptions, RunAt};
pub use payload::{JobPayload, Retry};
pub use queue_name::validate_queue_name;
pub use status::{JobState, JobStatus, Progress, StatusRetention};
pub use timestamp::Timestamp;
pub use unique::{Unique, UniqueUntil};
