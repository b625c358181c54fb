//! Periodic ticks under a clock that runs ahead of Redis's: the process waits for Redis's
//! clock to reach a tick instead of giving the tick up.

mod worker_in_process;

use queue_core::Job;
use queue_core::testing::TestRedis;
use queue_worker::{Periodic, Worker, WorkerConfig};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Beat;
impl Job for Beat {
    const NAME: &'static str = "Beat";
}

#[tokio::test]
async fn ticks_run_when_every_worker_clock_runs_seconds_ahead_of_redis() {
    let redis = TestRedis::start();
    let client = client(&redis, "periodic_skew").await;
    let keys = client.keys().clone();
    let conn = raw(&redis).await;
    // Redis's clock as this worker sees it is 4 s behind its own (only queue "other" is
    // worked, so the pushed ticks stay in "default" to be counted).
    let worker = Worker::builder()
        .config(WorkerConfig {
            clock_offset_ms: -4_000,
            queues: queue_worker::Queues::parse("other").unwrap(),
            ..fast_config()
        })
        .periodic(Periodic::new("beat", "* * * * * *", "UTC", &Beat).unwrap())
        .build(client.clone())
        .unwrap()
        .start();
    wait_for("a tick to be pushed", Duration::from_secs(20), || {
        let mut conn = conn.clone();
        let key = keys.queue("default");
        async move {
            let n: i64 = conn.llen(key).await.unwrap();
            (n >= 1).then_some(())
        }
    })
    .await;
    worker.shutdown().await.unwrap();
}
