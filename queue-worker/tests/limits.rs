//! A job class's global concurrency limit holds across worker processes.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, JobState};
use queue_worker::{Failure, JobContext, Worker};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct HeavyQuery(u32);
impl Job for HeavyQuery {
    const NAME: &'static str = "HeavyQuery";
    const CONCURRENCY_LIMIT: Option<u32> = Some(2);
}

#[tokio::test]
async fn no_more_than_the_limit_run_at_once_across_two_workers() {
    let redis = TestRedis::start();
    let client = client(&redis, "limit").await;
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let start = || {
        let running = Arc::clone(&running);
        let peak = Arc::clone(&peak);
        Worker::builder()
            .config(fast_config())
            .concurrency(5)
            .register(move |q: HeavyQuery, _: JobContext| {
                let running = Arc::clone(&running);
                let peak = Arc::clone(&peak);
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Failure>(q.0)
                }
            })
            .build(client.clone())
            .unwrap()
            .start()
    };
    let a = start();
    let b = start();
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(client.enqueue(&HeavyQuery(i)).await.unwrap());
    }
    for id in &ids {
        wait_for_state(&client, id, JobState::Succeeded).await;
    }
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(
        peak.load(Ordering::SeqCst),
        2,
        "the limit was reached but never exceeded"
    );
    let mut conn = raw(&redis).await;
    let failed: Option<i64> = redis::AsyncCommands::get(&mut conn, client.keys().stat_failed())
        .await
        .unwrap();
    assert_eq!(failed, None, "deferral is not a failure");
}
