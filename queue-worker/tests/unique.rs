//! Unique jobs in the worker: each lifetime gives its key back at its moment, and death
//! gives back every kind.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{EnqueueOptions, Job, JobState, Retry, Unique};
use queue_worker::{Failure, JobContext, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Gated(u32);
impl Job for Gated {
    const NAME: &'static str = "Gated";
}

#[derive(Serialize, Deserialize)]
struct Doomed;
impl Job for Doomed {
    const NAME: &'static str = "Doomed";
    const RETRY: Retry = Retry::Disabled;
}

#[tokio::test]
async fn each_lifetime_releases_its_key_at_its_moment() {
    let redis = TestRedis::start();
    let client = client(&redis, "unique_worker").await;
    let keys = client.keys().clone();
    let conn = raw(&redis).await;
    // The handler tells when it started and waits for the test to let it finish.
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let gate = std::sync::Arc::new(Semaphore::new(0));
    let worker = {
        let gate = gate.clone();
        Worker::builder()
            .config(fast_config())
            .concurrency(2)
            .register(move |job: Gated, _: JobContext| {
                let gate = gate.clone();
                let started_tx = started_tx.clone();
                async move {
                    let _ = started_tx.send(job.0);
                    gate.acquire().await.unwrap().forget();
                    Ok::<_, Failure>(())
                }
            })
            .register(|_: Doomed, _: JobContext| async {
                Err::<(), _>(Failure::retry("always fails"))
            })
            .build(client.clone())
            .unwrap()
            .start()
    };
    let held = |key: &'static str| {
        let mut conn = conn.clone();
        let key = keys.unique(key);
        async move { conn.exists::<_, bool>(key).await.unwrap() }
    };

    // Until started: the key is free while the job still runs.
    let ttl = Duration::from_secs(60);
    let a = client
        .enqueue_with(
            &Gated(1),
            EnqueueOptions::new().unique_by("start", Unique::until_started(ttl)),
        )
        .await
        .unwrap();
    assert_eq!(started.recv().await, Some(1));
    wait_for(
        "the key released at start",
        Duration::from_secs(5),
        || async { (!held("start").await).then_some(()) },
    )
    .await;
    assert_eq!(
        client.status(&a).await.unwrap().unwrap().state,
        JobState::Running
    );
    gate.add_permits(1);
    wait_for_state(&client, &a, JobState::Succeeded).await;

    // Until succeeded: held while it runs, free once it succeeded.
    let b = client
        .enqueue_with(
            &Gated(2),
            EnqueueOptions::new().unique_by("success", Unique::until_succeeded(ttl)),
        )
        .await
        .unwrap();
    assert_eq!(started.recv().await, Some(2));
    assert!(held("success").await, "held while running");
    gate.add_permits(1);
    wait_for_state(&client, &b, JobState::Succeeded).await;
    assert!(!held("success").await, "released on success");

    // For a TTL: held after success.
    let c = client
        .enqueue_with(
            &Gated(3),
            EnqueueOptions::new().unique_by("ttl", Unique::for_ttl(ttl)),
        )
        .await
        .unwrap();
    assert_eq!(started.recv().await, Some(3));
    gate.add_permits(1);
    wait_for_state(&client, &c, JobState::Succeeded).await;
    assert!(held("ttl").await, "a throttle outlives its job");

    // Death releases every kind.
    let d = client
        .enqueue_with(
            &Doomed,
            EnqueueOptions::new().unique_by("dies", Unique::for_ttl(ttl)),
        )
        .await
        .unwrap();
    wait_for_state(&client, &d, JobState::Dead).await;
    wait_for(
        "the key released at death",
        Duration::from_secs(5),
        || async { (!held("dies").await).then_some(()) },
    )
    .await;
    worker.shutdown().await.unwrap();
}
