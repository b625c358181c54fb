//! A paused queue: every worker stops taking from it within a second, the pause survives
//! restarts, and a resume brings its jobs back.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Client, Inspector, Job, JobId, JobState};
use queue_worker::{Failure, JobContext, Queues, RunningWorker, Worker};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use worker_in_process::*;

/// How soon after a pause no worker may take from the queue (the documented bound).
const PAUSE_BOUND: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct Mail(u32);
impl Job for Mail {
    const NAME: &'static str = "Mail";
    const QUEUE: &'static str = "mail";
}

#[derive(Serialize, Deserialize)]
struct Other;
impl Job for Other {
    const NAME: &'static str = "Other";
    const QUEUE: &'static str = "other";
}

/// A worker on `mail` before `other` (strict order): while `mail` is served, its jobs go first.
fn worker(client: &Client) -> RunningWorker {
    let mut config = fast_config();
    config.queues = Queues::strict(&["mail", "other"]).unwrap();
    Worker::builder()
        .config(config)
        .register(|_: Mail, _: JobContext| async move { Ok::<_, Failure>(()) })
        .register(|_: Other, _: JobContext| async move { Ok::<_, Failure>(()) })
        .build(client.clone())
        .unwrap()
        .start()
}

/// Enqueues `n` mail jobs and then one `other` job, waits until that one has run (so every
/// worker has fetched since), and checks that every mail job is still queued.
async fn mail_stays_queued(client: &Client, n: u32) -> Vec<JobId> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(client.enqueue(&Mail(i)).await.unwrap());
    }
    let other = client.enqueue(&Other).await.unwrap();
    wait_for_state(client, &other, JobState::Succeeded).await;
    for id in &ids {
        let state = client.status(id).await.unwrap().unwrap().state;
        assert_eq!(
            state,
            JobState::Queued,
            "job {id} of a paused queue was taken"
        );
    }
    ids
}

#[tokio::test]
async fn every_worker_stops_taking_from_a_paused_queue_and_resumes() {
    let redis = TestRedis::start();
    let client = client(&redis, "pause_live").await;
    let workers = [worker(&client), worker(&client)];
    // Both are up and fetching.
    let first = client.enqueue(&Mail(0)).await.unwrap();
    wait_for_state(&client, &first, JobState::Succeeded).await;

    let inspect = Inspector::new(&client);
    assert!(inspect.pause("mail").await.unwrap());
    // Not a synchronisation: the bound under test. After it, no worker may take from `mail`.
    tokio::time::sleep(PAUSE_BOUND).await;
    let ids = mail_stays_queued(&client, 20).await;

    assert!(inspect.resume("mail").await.unwrap());
    for id in &ids {
        wait_for_state(&client, id, JobState::Succeeded).await;
    }
    for w in workers {
        w.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn a_pause_survives_worker_restarts() {
    let redis = TestRedis::start();
    let client = client(&redis, "pause_restart").await;
    let inspect = Inspector::new(&client);
    // Paused while no worker runs: no notice is heard; the pause is read from Redis at start.
    assert!(inspect.pause("mail").await.unwrap());
    let w = worker(&client);
    let ids = mail_stays_queued(&client, 5).await;
    w.shutdown().await.unwrap();

    let w = worker(&client);
    mail_stays_queued(&client, 1).await;
    assert!(inspect.resume("mail").await.unwrap());
    for id in &ids {
        wait_for_state(&client, id, JobState::Succeeded).await;
    }
    w.shutdown().await.unwrap();
}
