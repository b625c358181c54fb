//! Recovery and ownership: a dead process's jobs come back; a worker that lost a job cannot
//! settle it later.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, JobState};
use queue_worker::{Failure, JobContext, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Gated;
impl Job for Gated {
    const NAME: &'static str = "Gated";
}

#[tokio::test]
async fn a_late_result_is_rejected_after_another_worker_took_the_job_over() {
    let redis = TestRedis::start();
    let client = client(&redis, "late").await;
    let runs = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Notify::new());
    let handler = {
        let runs = Arc::clone(&runs);
        let gate = Arc::clone(&gate);
        move |_: Gated, _: JobContext| {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            let gate = Arc::clone(&gate);
            async move {
                if n == 1 {
                    gate.notified().await;
                    return Ok::<_, Failure>("first (late)");
                }
                Ok("second")
            }
        }
    };
    let a = Worker::builder()
        .config(fast_config())
        .register(handler.clone())
        .build(client.clone())
        .unwrap()
        .start();
    let id = client.enqueue(&Gated).await.unwrap();
    wait_for_state(&client, &id, JobState::Running).await;
    // A stalls past its lease: simulate the expiry.
    let old_identity = a.identity();
    let mut conn = raw(&redis).await;
    let _: () = conn.del(client.keys().lease(&old_identity)).await.unwrap();
    let b = Worker::builder()
        .config(fast_config())
        .register(handler)
        .build(client.clone())
        .unwrap()
        .start();
    wait_for_state(&client, &id, JobState::Succeeded).await;
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().result,
        Some(serde_json::json!("second"))
    );
    // A finishes late: its ack must be rejected.
    gate.notify_one();
    let processing = client.keys().processing(&old_identity);
    wait_for_size(
        &conn,
        &processing,
        0,
        "the old processing list to be gone",
        std::time::Duration::from_secs(5),
    )
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().result,
        Some(serde_json::json!("second")),
        "the late result did not overwrite the real one"
    );
    let processed: i64 = conn.get(client.keys().stat_processed()).await.unwrap();
    assert_eq!(processed, 1, "the late ack was not counted");
}
