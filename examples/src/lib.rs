//! # examples
//!
//! The deployable demo app: a `web` process that enqueues and answers `202 Accepted`, a
//! `worker` process that runs the jobs, and a `client` that follows a job's status URL with
//! a progress bar. `script/demo` runs all three against a private Redis; the `Procfile` and
//! `app.json` at the root deploy `web` and `worker` to the platform.
//!
//! A tour:
//! - [`jobs`]: the job types both processes link, so names and arguments cannot drift.
//! - [`app`]: the web routes (`POST /reports`, `POST /flaky`, the status router, health,
//!   metrics).
//! - [`server`]: the HTTP server with header-read and idle timeouts, and the graceful
//!   shutdown.
//! - [`rate_limit`]: the per-client limit on the POST routes (`429` past it).
//! - [`report`]: the report job's work (progress every page, cancellation, a stored result).
//! - [`flaky`]: a job that fails once with a short retry, then succeeds.
//! - `src/bin/{web,worker,client}.rs`: thin `main`s, each opening with how to run it.
//!
//! ```no_run
//! use examples::{FlakyJob, ReportJob};
//! use queue_worker::{JobContext, Worker};
//!
//! # async fn demo() -> Result<(), queue_worker::Error> {
//! let settings = examples::report::ReportSettings::from_env()?;
//! queue_worker::run(
//!     Worker::builder()
//!         .register(move |job: ReportJob, ctx: JobContext| examples::report::perform(job, ctx, settings))
//!         .register(|job: FlakyJob, ctx: JobContext| examples::flaky::perform(job, ctx)),
//! )
//! .await
//! # }
//! ```

pub mod app;
pub mod flaky;
pub mod jobs;
pub mod rate_limit;
pub mod report;
pub mod server;

pub use jobs::{FlakyJob, ReportJob};
