//! Limiters on a job type and inside a handler: limits held, and an over-limit job
//! rescheduled without using a retry.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, JobState};
use queue_worker::{Failure, JobContext, Limit, Worker};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct CallApi(u32);
impl Job for CallApi {
    const NAME: &'static str = "CallApi";
}

#[derive(Serialize, Deserialize)]
struct Once(u32);
impl Job for Once {
    const NAME: &'static str = "Once";
}

#[tokio::test]
async fn a_job_type_limit_holds_both_its_concurrency_and_its_rate() {
    let redis = TestRedis::start();
    let client = client(&redis, "type_limits").await;
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let starts = Arc::new(Mutex::new(Vec::new()));
    let worker = {
        let (running, peak, starts) = (running.clone(), peak.clone(), starts.clone());
        Worker::builder()
            .config(fast_config())
            .concurrency(8)
            .register(move |_: CallApi, _: JobContext| {
                let (running, peak, starts) = (running.clone(), peak.clone(), starts.clone());
                async move {
                    starts.lock().unwrap().push(Instant::now());
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Failure>(())
                }
            })
            .limit::<CallApi>("api-rate", Limit::Bucket(20, Duration::from_secs(1)))
            .limit::<CallApi>("api", Limit::Concurrent(2))
            .build(client.clone())
            .unwrap()
            .start()
    };
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(client.enqueue(&CallApi(i)).await.unwrap());
    }
    for id in &ids {
        wait_for_state(&client, id, JobState::Succeeded).await;
    }
    worker.shutdown().await.unwrap();
    assert!(peak.load(Ordering::SeqCst) <= 2, "concurrency limit held");
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    let spread = starts[starts.len() - 1] - starts[0];
    // 10 admissions spaced by 50 ms: at least 9 gaps (a little less for timer jitter).
    assert!(
        spread >= Duration::from_millis(400),
        "bucket spaced the starts: {spread:?}"
    );
}

#[tokio::test]
async fn an_over_limit_job_is_rescheduled_without_using_a_retry() {
    let redis = TestRedis::start();
    let client = client(&redis, "over_limit").await;
    let worker = Worker::builder()
        .config(fast_config())
        .register(|_: Once, ctx: JobContext| async move {
            ctx.limiter("hourly")
                .wait(Duration::ZERO)
                .window(1, Duration::from_secs(3600))
                .await?;
            Ok::<_, Failure>(())
        })
        .build(client.clone())
        .unwrap()
        .start();
    let first = client.enqueue(&Once(1)).await.unwrap();
    wait_for_state(&client, &first, JobState::Succeeded).await;
    let second = client.enqueue(&Once(2)).await.unwrap();
    wait_for_state(&client, &second, JobState::Scheduled).await;
    worker.shutdown().await.unwrap();
    let mut conn = raw(&redis).await;
    let scheduled: Vec<String> =
        redis::AsyncCommands::zrange(&mut conn, client.keys().schedule(), 0, -1)
            .await
            .unwrap();
    assert_eq!(scheduled.len(), 1);
    let job: serde_json::Value = serde_json::from_str(&scheduled[0]).unwrap();
    assert_eq!(job["jid"], second.as_str());
    assert!(job.get("retry_count").is_none(), "no retry used: {job}");
    assert_eq!(job["deferred"], 1);
    let failed: Option<i64> = redis::AsyncCommands::get(&mut conn, client.keys().stat_failed())
        .await
        .unwrap();
    assert_eq!(failed, None, "not counted as a failure");
}
