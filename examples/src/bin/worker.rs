//! Run with
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 REPORT_SECONDS=8 cargo run -p examples --bin worker
//! ```
//!
//! The worker process: runs the report and flaky jobs that the web process enqueues.
//! Environment: `REDIS_TLS_URL` or `REDIS_URL` (and the other `ClientConfig::from_env`
//! variables), `REPORT_SECONDS` (length of a report that asks for no number of pages:
//! one page a second, default 45), `WORKER_CONCURRENCY` (default 10), `WORKER_QUEUES`
//! (default `default`), `SHUTDOWN_TIMEOUT` (seconds a running job gets after SIGTERM
//! before it is handed back to its queue, default 25), `RUST_LOG` (default `info`).

use examples::ReportJob;
use examples::report::ReportSettings;
use queue_worker::{JobContext, Worker};

#[tokio::main]
async fn main() -> Result<(), queue_worker::Error> {
    let settings = ReportSettings::from_env()?;
    queue_worker::run(
        Worker::builder()
            .register(move |job: ReportJob, ctx: JobContext| {
                examples::report::perform(job, ctx, settings)
            })
            .register(examples::flaky::perform),
    )
    .await
}
