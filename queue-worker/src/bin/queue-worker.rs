//! A worker binary with built-in diagnostic jobs, for smoke checks and fault tests.
//!
//! Run with `REDIS_URL=redis://127.0.0.1:6379 cargo run -p queue-worker --bin queue-worker`.
//! Environment: as `queue_worker::run` (`WORKER_CONCURRENCY`, `WORKER_QUEUES`,
//! `SHUTDOWN_TIMEOUT`, `QUEUE_PREFIX`, `RUST_LOG`), and `PERIODIC_JOBS` (a JSON array of
//! periodic entries, `queue_worker::periodic_from_json`). Jobs it knows:
//! - `queue::Sleep` `{"millis": N}`: sleeps (in 100 ms steps, reporting progress, stopping
//!   when cancelled), records the execution in the diagnostics ledger, returns `{"slept_ms": N}`.
//! - `queue::Noop`: returns at once.
//! - `queue::Limited` `{"concurrent": C, "per_second": R, "millis": N}`: takes an admission of
//!   the window limiter `diag-rate` (R per second) and a slot of the concurrent limiter
//!   `diag-concurrent` (C at once), sleeps N ms, and appends `admitted start end` (ms) to the
//!   diagnostics span ledger (the limiter acceptance test).

use queue_core::{Client, Job};
use queue_worker::{Failure, JobContext, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Sleeps for a while; the diagnostics ledger counts completed executions per job id.
#[derive(Serialize, Deserialize)]
struct Sleep {
    millis: u64,
}

impl Job for Sleep {
    const NAME: &'static str = "queue::Sleep";
}

/// Does nothing.
#[derive(Serialize, Deserialize)]
struct Noop;

impl Job for Noop {
    const NAME: &'static str = "queue::Noop";
    const TRACK_STATUS: bool = false;
}

/// Runs under two limiters and records when (see the module docs).
#[derive(Serialize, Deserialize)]
struct Limited {
    concurrent: u32,
    per_second: u32,
    millis: u64,
}

impl Job for Limited {
    const NAME: &'static str = "queue::Limited";
    const TRACK_STATUS: bool = false;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn limited_job(client: Client, job: Limited, ctx: JobContext) -> Result<(), Failure> {
    // The rate first: an admission waits for a slot briefly (slots free up every few ms),
    // while a slot held waiting for the rate would keep others from running.
    let admitted = ctx
        .limiter("diag-rate")
        .window_at(job.per_second, Duration::from_secs(1))
        .await?;
    let _slot = ctx
        .limiter("diag-concurrent")
        .concurrent(job.concurrent)
        .await?;
    let start = now_ms();
    tokio::time::sleep(Duration::from_millis(job.millis)).await;
    let end = now_ms();
    client
        .record_diagnostic_span(admitted, start, end)
        .await
        .map_err(|e| Failure::retry(e.to_string()))
}

async fn sleep_job(
    client: Client,
    job: Sleep,
    ctx: JobContext,
) -> Result<serde_json::Value, Failure> {
    let step = Duration::from_millis(100);
    let total = Duration::from_millis(job.millis);
    let mut slept = Duration::ZERO;
    while slept < total {
        let nap = step.min(total - slept);
        tokio::select! {
            _ = ctx.cancelled() => return Err(Failure::retry("cancelled")),
            _ = tokio::time::sleep(nap) => {}
        }
        slept += nap;
        let percent = (slept.as_millis() * 100 / total.as_millis().max(1)) as u8;
        ctx.progress(percent, format!("slept {} ms", slept.as_millis()))
            .await
            .ok();
    }
    client
        .record_diagnostic_execution(ctx.id().as_str())
        .await
        .map_err(|e| Failure::retry(e.to_string()))?;
    Ok(serde_json::json!({ "slept_ms": job.millis }))
}

#[tokio::main]
async fn main() -> Result<(), queue_worker::Error> {
    queue_worker::init_logging();
    let config = WorkerConfig::from_env()?;
    let client = Client::from_env().await?;
    let for_sleep = client.clone();
    let for_limited = client.clone();
    let worker = Worker::builder()
        .config(config)
        .register(move |job: Sleep, ctx: JobContext| sleep_job(for_sleep.clone(), job, ctx))
        .register(|_: Noop, _ctx: JobContext| async { Ok::<_, Failure>(()) })
        .register(move |job: Limited, ctx: JobContext| limited_job(for_limited.clone(), job, ctx))
        .periodic_from_env()?
        .build(client)?;
    worker.run_until(queue_worker::shutdown_signal()?).await
}
