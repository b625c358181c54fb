//! The web side in cluster mode, on a real listener against a private loopback Redis
//! Cluster: the 202, the status route, a long poll woken by a worker script's announcement
//! (published on the app's master, heard by a subscriber on whichever node it chose), health
//! and metrics.

mod common;

use common::{App, id_from_location, until_waiting};
use queue_core::scripts::{self, StartJob};
use queue_core::testing::TestCluster;
use queue_core::{Client, Timestamp};
use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// How soon after a change a waiting long poll must answer (generous: a loaded CI machine).
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

#[tokio::test]
async fn status_long_poll_health_and_metrics_work_on_a_cluster() {
    status_long_poll_health_and_metrics(false).await;
}

/// The same with every queue in its own slot: the id names its queue, and the status route,
/// the long poll and the metrics find the queue's slot from it.
#[tokio::test]
async fn status_long_poll_health_and_metrics_work_with_queues_spread() {
    status_long_poll_health_and_metrics(true).await;
}

async fn status_long_poll_health_and_metrics(spread: bool) {
    let cluster = TestCluster::start();
    let client = Client::connect(cluster.config("web_cluster").spread_queues(spread))
        .await
        .unwrap();
    let app = App::with_client(client.clone()).await;

    let created = app.create_report(None, "s3cret").await;
    assert_eq!(created.status(), 202);
    let id = id_from_location(&created);
    assert_eq!(id.queue_slot().is_some(), spread, "{id}");
    let body: Value = app.get(&format!("/jobs/{id}")).await.json().await.unwrap();
    assert_eq!(body["state"], "queued");

    // A long poll waits; the worker's start script changes the record and announces it.
    let waiting = {
        let (app_status, id) = (app.status.clone(), id.clone());
        tokio::spawn(async move {
            until_waiting(&app_status, 1, Duration::from_secs(10)).await;
            let changed_at = Instant::now();
            let job = StartJob {
                jid: id.as_str(),
                attempt: 1,
                queue: "default",
                class: "BuildReport",
                tracked: true,
            };
            scripts::start(&client.for_queue("default"), &[job], Timestamp::now())
                .await
                .unwrap();
            changed_at
        })
    };
    let response = app.get(&format!("/jobs/{id}?wait=15")).await;
    let answered_at = Instant::now();
    let body: Value = response.json().await.unwrap();
    let changed_at = waiting.await.unwrap();
    assert_eq!(body["state"], "running");
    let after = answered_at.saturating_duration_since(changed_at);
    assert!(after < ANSWER_WITHIN, "answered {after:?} after the change");

    let health: Value = app.get("/health").await.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = app.get_with_token("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("queue_size{queue=\"default\"} 1"),
        "{metrics}"
    );
}
