//! Shutdown in process: running jobs finish within the timeout; the rest go back to the
//! front of their queue at once; the process record is cleared.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, JobPayload, JobState};
use queue_worker::{Failure, JobContext, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Nap(u64);
impl Job for Nap {
    const NAME: &'static str = "Nap";
}

#[tokio::test]
async fn short_jobs_finish_and_long_ones_are_handed_back_to_the_front() {
    let redis = TestRedis::start();
    let client = client(&redis, "handback").await;
    let mut config = fast_config();
    config.shutdown_timeout = Duration::from_millis(600);
    let w = Worker::builder()
        .config(config)
        .register(|n: Nap, _: JobContext| async move {
            tokio::time::sleep(Duration::from_millis(n.0)).await;
            Ok::<_, Failure>(n.0)
        })
        .build(client.clone())
        .unwrap()
        .start();
    let short = client.enqueue(&Nap(300)).await.unwrap();
    let long = client.enqueue(&Nap(60_000)).await.unwrap();
    wait_for_state(&client, &short, JobState::Running).await;
    wait_for_state(&client, &long, JobState::Running).await;
    let mut conn = raw(&redis).await;
    // A job waiting behind them must stay behind the handed-back one.
    let _: () = conn
        .lpush(
            client.keys().queue("default"),
            r#"{"class":"Nap","args":[1],"jid":"waiting"}"#,
        )
        .await
        .unwrap();
    let identity = w.identity();
    let started = Instant::now();
    w.shutdown().await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert_eq!(
        client.status(&short).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
    assert_eq!(
        client.status(&long).await.unwrap().unwrap().state,
        JobState::Queued
    );
    let next: String = conn
        .lindex(client.keys().queue("default"), -1)
        .await
        .unwrap();
    let handed_back = JobPayload::from_json(next.as_bytes()).unwrap();
    assert_eq!(handed_back.jid.as_str(), long.as_str(), "front of the line");
    // Stopped while it ran: counted, so a job that never fits the shutdown window shows.
    assert_eq!(handed_back.handed_back, Some(1));
    let waiting: String = conn
        .lindex(client.keys().queue("default"), 0)
        .await
        .unwrap();
    assert_eq!(
        JobPayload::from_json(waiting.as_bytes())
            .unwrap()
            .handed_back,
        None,
        "a job that never started is not counted"
    );
    let processing: i64 = conn
        .llen(client.keys().processing(&identity))
        .await
        .unwrap();
    let procs: i64 = conn.scard(client.keys().processes()).await.unwrap();
    let lease: bool = conn.exists(client.keys().lease(&identity)).await.unwrap();
    assert_eq!((processing, procs, lease), (0, 0, false));
}
