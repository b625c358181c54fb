//! Jobs run, succeed, fail, retry, die, and are cancelled, as the status record and the
//! Sidekiq sets show.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, JobState};
use queue_worker::{Failure, JobContext, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Double(i64);
impl Job for Double {
    const NAME: &'static str = "Double";
}

#[tokio::test]
async fn a_job_runs_and_its_result_is_stored() {
    let redis = TestRedis::start();
    let client = client(&redis, "runs").await;
    let worker = Worker::builder()
        .config(fast_config())
        .register(|job: Double, ctx: JobContext| async move {
            ctx.progress(50, "half way").await.unwrap();
            Ok::<_, Failure>(job.0 * 2)
        })
        .build(client.clone())
        .unwrap()
        .start();
    let id = client.enqueue(&Double(21)).await.unwrap();
    wait_for_state(&client, &id, JobState::Succeeded).await;
    let status = client.status(&id).await.unwrap().unwrap();
    assert_eq!(status.result, Some(serde_json::json!(42)));
    assert_eq!(status.attempt, 1);
    assert_eq!(status.progress.percent, 100);
    assert!(status.started_at.is_some() && status.finished_at.is_some());
    let mut conn = raw(&redis).await;
    let processed: i64 = conn.get(client.keys().stat_processed()).await.unwrap();
    assert_eq!(processed, 1);
    worker.shutdown().await.unwrap();
    let left: i64 = conn.scard(client.keys().workers()).await.unwrap();
    assert_eq!(left, 0, "a clean shutdown unregisters the process");
}

#[derive(Serialize, Deserialize)]
struct Flaky;
impl Job for Flaky {
    const NAME: &'static str = "Flaky";
}

#[tokio::test]
async fn a_failed_job_is_retried_and_succeeds_later() {
    let redis = TestRedis::start();
    let client = client(&redis, "retries").await;
    let worker = Worker::builder()
        .config(fast_config())
        .register(|_: Flaky, ctx: JobContext| async move {
            if ctx.attempt() == 1 {
                return Err(Failure::retry_in(Duration::ZERO, "first attempt fails"));
            }
            Ok(ctx.attempt())
        })
        .build(client.clone())
        .unwrap()
        .start();
    let id = client.enqueue(&Flaky).await.unwrap();
    wait_for_state(&client, &id, JobState::Succeeded).await;
    let status = client.status(&id).await.unwrap().unwrap();
    assert_eq!(status.result, Some(serde_json::json!(2)));
    assert_eq!(status.attempt, 2);
    let mut conn = raw(&redis).await;
    let failed: i64 = conn.get(client.keys().stat_failed()).await.unwrap();
    let processed: i64 = conn.get(client.keys().stat_processed()).await.unwrap();
    assert_eq!(
        (failed, processed),
        (1, 2),
        "Sidekiq counts every execution as processed"
    );
    worker.shutdown().await.unwrap();
}
