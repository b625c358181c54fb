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

/// A cancelled job that waits in its queue longer than a finished record's retention is
/// still skipped: the record lasts while the job waits, and takes the retention only once
/// the worker has dropped the job. (It used to expire after the retention, and the job then
/// ran and ended `succeeded`.)
#[tokio::test]
async fn a_cancel_holds_however_long_the_job_waits() {
    let redis = TestRedis::start();
    let retention = Duration::from_secs(3);
    let config = redis
        .config("cancel_outlives")
        .status_retention(queue_core::StatusRetention {
            finished: retention,
            ..queue_core::StatusRetention::default()
        });
    let client = queue_core::Client::connect(config).await.unwrap();
    let id = client.enqueue(&Double(1)).await.unwrap();
    assert!(client.cancel(&id).await.unwrap());
    // The fault itself: the job waits, with no worker, longer than the retention.
    tokio::time::sleep(retention + Duration::from_millis(500)).await;

    let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = ran.clone();
    let worker = Worker::builder()
        .config(fast_config())
        .register(move |job: Double, _: JobContext| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok::<_, Failure>(job.0) }
        })
        .build(client.clone())
        .unwrap()
        .start();
    let conn = raw(&redis).await;
    wait_for_size(
        &conn,
        &client.keys().queue("default"),
        0,
        "the cancelled job to be taken",
        Duration::from_secs(10),
    )
    .await;
    let key = client.keys().status(id.as_str());
    wait_for(
        "the skipped job's record to expire again",
        Duration::from_secs(10),
        || {
            let mut conn = conn.clone();
            let key = key.clone();
            async move {
                let ttl: i64 = conn.ttl(&key).await.unwrap();
                (ttl > 0).then_some(())
            }
        },
    )
    .await;
    worker.shutdown().await.unwrap();
    assert_eq!(
        ran.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the cancelled job ran"
    );
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
}

#[derive(Serialize, Deserialize)]
struct Quiet(bool);
impl Job for Quiet {
    const NAME: &'static str = "Quiet";
    const TRACK_STATUS: bool = false;
}

/// An enqueuer that tracks a class this worker registers untracked (another app's setting,
/// or an older deploy) wrote a record: the worker keeps it true to the end instead of
/// leaving it `running` for good.
#[tokio::test]
async fn a_record_written_for_a_type_the_worker_does_not_track_is_still_finished() {
    let redis = TestRedis::start();
    let client = client(&redis, "untracked_type_record").await;
    let worker = Worker::builder()
        .config(fast_config())
        .register(|job: Quiet, _ctx: JobContext| async move {
            if job.0 {
                Ok(())
            } else {
                Err(Failure::dead("no"))
            }
        })
        .build(client.clone())
        .unwrap()
        .start();
    let push = |ok: bool| {
        let mut job = queue_core::NewJob::new("Quiet", vec![serde_json::json!(ok)]);
        job.track_status = true;
        job
    };
    let ok = client.push(push(true)).await.unwrap();
    wait_for_state(&client, &ok, JobState::Succeeded).await;
    let failed = client.push(push(false)).await.unwrap();
    wait_for_state(&client, &failed, JobState::Dead).await;
    drop(tokio::time::timeout(Duration::from_secs(10), worker.shutdown()).await);
}
