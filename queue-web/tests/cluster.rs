//! The web side in cluster mode, on a real listener against a private loopback Redis
//! Cluster: the 202, the status route, a long poll woken by a worker script's announcement
//! (published on the app's master, heard by a subscriber on whichever node it chose), health
//! and metrics.

mod common;
mod dashboard_support;

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

/// With queues spread over the masters, the dashboard lists every queue's jobs and sets, a
/// job page finds its record in its queue's slot, and an operator's retry acts there.
#[tokio::test]
async fn the_dashboard_shows_every_queue_slot() {
    use dashboard_support::{Dash, PASSWORD};
    use queue_core::{EnqueueOptions, NewJob};
    use queue_web::DashboardAuth;

    let cluster = TestCluster::start();
    let config = cluster.config("web_spread").spread_queues(true);
    let queues = cluster.queues_on_distinct_masters(&config, 3);
    let client = Client::connect(config).await.unwrap();
    let mut ids = Vec::new();
    for (queue, _) in &queues {
        let id = client
            .push(NewJob {
                options: EnqueueOptions::new().queue(queue),
                ..NewJob::new("Greet", vec![serde_json::json!(queue)])
            })
            .await
            .unwrap();
        ids.push(id);
    }
    let later = client
        .push(NewJob {
            options: EnqueueOptions::new()
                .queue(&queues[1].0)
                .delay(Duration::from_secs(600)),
            ..NewJob::new("Later", vec![])
        })
        .await
        .unwrap();
    let dash = Dash::start_on(client.clone(), DashboardAuth::password(PASSWORD).unwrap()).await;

    let listed = dash.get("/queues").await.text().await.unwrap();
    for (queue, _) in &queues {
        assert!(
            listed.contains(queue.as_str()),
            "{queue} missing:\n{listed}"
        );
        let page = dash
            .get(&format!("/queues/{queue}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("Greet"), "{queue}'s page:\n{page}");
    }
    let job = dash.get(&format!("/jobs/{}", ids[2])).await;
    assert_eq!(job.status(), 200);
    assert!(job.text().await.unwrap().contains(ids[2].as_str()));
    let scheduled = dash.get("/sets/scheduled").await.text().await.unwrap();
    assert!(scheduled.contains(later.as_str()), "{scheduled}");

    // Retry now, from the schedule page's form for the entry.
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let start = scheduled.find(&marker).expect("an entry form") + marker.len();
        scheduled[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let (score, jid) = (field("score"), field("jid"));
    assert_eq!(jid, later.as_str());
    let retried = dash
        .post("/sets/scheduled/retry", &[("score", &score), ("jid", &jid)])
        .await;
    assert_eq!(retried.status(), 303);
    assert_eq!(
        client.status(&later).await.unwrap().unwrap().state,
        queue_core::JobState::Queued
    );
}
