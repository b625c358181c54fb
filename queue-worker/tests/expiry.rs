//! Expiry and per-enqueue timeouts: a job not started by its deadline is dropped as
//! `expired` (its unique key given back); a timeout set at enqueue bounds the attempt.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{EnqueueOptions, Job, JobState, Unique};
use queue_worker::{Failure, JobContext, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Nap(u64);
impl Job for Nap {
    const NAME: &'static str = "Nap";
}

#[tokio::test]
async fn a_job_past_its_deadline_is_expired_and_a_timeout_per_enqueue_applies() {
    let redis = TestRedis::start();
    let client = client(&redis, "expiry").await;
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    // Enqueued while no worker runs, with no time to spare: expired when taken.
    let late = client
        .enqueue_with(
            &Nap(0),
            EnqueueOptions::new()
                .expires_in(Duration::ZERO)
                .unique_by("late", Unique::until_succeeded(Duration::from_secs(60))),
        )
        .await
        .unwrap();
    let on_time = client
        .enqueue_with(
            &Nap(0),
            EnqueueOptions::new().expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let slow = client
        .enqueue_with(
            &Nap(5000),
            EnqueueOptions::new().timeout(Duration::from_millis(200)),
        )
        .await
        .unwrap();

    let ran = Arc::new(AtomicUsize::new(0));
    let worker = {
        let ran = ran.clone();
        Worker::builder()
            .config(fast_config())
            .register(move |nap: Nap, _: JobContext| {
                let ran = ran.clone();
                async move {
                    ran.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(nap.0)).await;
                    Ok::<_, Failure>(())
                }
            })
            .build(client.clone())
            .unwrap()
            .start()
    };
    wait_for_state(&client, &late, JobState::Expired).await;
    wait_for_state(&client, &on_time, JobState::Succeeded).await;
    wait_for_state(&client, &slow, JobState::Retrying).await;
    worker.shutdown().await.unwrap();

    let expired = client.status(&late).await.unwrap().unwrap();
    assert!(expired.state.is_terminal());
    assert!(expired.finished_at.is_some());
    let held: bool = conn.exists(keys.unique("late")).await.unwrap();
    assert!(!held, "an expired unique job gives its key back");
    let error = client.status(&slow).await.unwrap().unwrap().error.unwrap();
    assert!(error.contains("Timeout"), "{error}");
    assert_eq!(ran.load(Ordering::SeqCst), 2, "the expired job never ran");
}

/// A worker running `Nap` jobs whose view of Redis's clock is shifted by `offset_ms` (the
/// tests' stand-in for a dyno whose clock is off), counting the jobs it runs.
fn skewed_worker(
    client: &queue_core::Client,
    offset_ms: i64,
    ran: Arc<AtomicUsize>,
) -> queue_worker::RunningWorker {
    Worker::builder()
        .config(queue_worker::WorkerConfig {
            clock_offset_ms: offset_ms,
            ..fast_config()
        })
        .register(move |_: Nap, _: JobContext| {
            let ran = ran.clone();
            async move {
                ran.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Failure>(())
            }
        })
        .build(client.clone())
        .unwrap()
        .start()
}

#[tokio::test]
async fn deadlines_are_judged_by_redis_clock_not_the_worker_clock() {
    let redis = TestRedis::start();
    let client = client(&redis, "expiry_skew").await;
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    // Redis's clock is 5 minutes ahead of this worker's: a deadline 4 minutes ahead on the
    // worker's clock passed a minute ago on Redis's, so the job must not run (before the fix
    // it ran, minutes late).
    let stale = client
        .enqueue_with(
            &Nap(0),
            EnqueueOptions::new().expires_in(Duration::from_secs(240)),
        )
        .await
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let worker = skewed_worker(&client, 300_000, ran.clone());
    wait_for_state(&client, &stale, JobState::Expired).await;
    worker.shutdown().await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a job past its deadline ran");

    // Redis's clock is 5 minutes behind this worker's: a deadline 4 minutes past on the
    // worker's clock is still a minute ahead on Redis's, so the job runs (before the fix it
    // was dropped minutes early).
    let (secs, _micros): (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let job = serde_json::json!({
        "class": Nap::NAME, "args": [0], "jid": "skewfast0000000000000000", "queue": "default",
        "retry": true, "created_at": secs as f64, "enqueued_at": secs as f64,
        "expires_at": secs as f64 - 240.0,
    });
    let _: () = conn.sadd(keys.queues(), "default").await.unwrap();
    let _: () = conn
        .lpush(keys.queue("default"), job.to_string())
        .await
        .unwrap();
    let worker = skewed_worker(&client, -300_000, ran.clone());
    wait_for(
        "the job a minute before its deadline to run",
        Duration::from_secs(15),
        || {
            let ran = ran.clone();
            async move { (ran.load(Ordering::SeqCst) == 1).then_some(()) }
        },
    )
    .await;
    worker.shutdown().await.unwrap();
}
