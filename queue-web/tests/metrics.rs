//! Health, Prometheus and autoscaler endpoints against known Redis state.

mod common;

use axum::Router;
use common::{App, TOKEN};
use queue_core::testing::TestRedis;
use queue_core::{EnqueueOptions, NewJob, Timestamp};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// Reads Prometheus text into `name{labels}` → value.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

async fn redis_cmd(app: &App, args: &[&str]) {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async::<()>(&mut app.client.raw_connection())
        .await
        .unwrap();
}

#[tokio::test]
async fn health_is_ok_while_redis_answers() {
    let redis = TestRedis::start();
    let app = App::start(&redis, "health_is_ok").await;
    let response = app.get("/health").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert!(body["redis_ms"].as_f64().unwrap() >= 0.0);
}

#[tokio::test]
async fn metrics_match_the_redis_state() {
    let redis = TestRedis::start();
    let app = App::start(&redis, "metrics_match").await;
    let keys = app.client.keys().clone();

    // default: 3 jobs through the client; the oldest was enqueued after `before`.
    let before = Instant::now();
    for _ in 0..3 {
        app.create_report(None, "x").await;
    }
    // critical: 2 jobs.
    for _ in 0..2 {
        let mut job = NewJob::new("Urgent", vec![]);
        job.queue = "critical".into();
        app.client.push(job).await.unwrap();
    }
    // old: a job pushed by a Sidekiq 7 client 42.5 s ago (float seconds).
    let now = Timestamp::now().as_secs_f64();
    let old = json!({"class":"Legacy","args":[],"jid":"0123456789abcdef01234567","queue":"old",
        "created_at": now - 50.0, "enqueued_at": now - 42.5});
    redis_cmd(&app, &["SADD", &keys.queues(), "old"]).await;
    redis_cmd(&app, &["LPUSH", &keys.queue("old"), &old.to_string()]).await;
    // ms: a Sidekiq 8 job (integer milliseconds) with only created_at, 7 s old.
    let ms = json!({"class":"Eight","args":[],"jid":"abcdef0123456789abcdef01","queue":"ms",
        "created_at": ((now - 7.0) * 1000.0) as u64});
    redis_cmd(&app, &["SADD", &keys.queues(), "ms"]).await;
    redis_cmd(&app, &["LPUSH", &keys.queue("ms"), &ms.to_string()]).await;
    // A queue that is known but empty.
    redis_cmd(&app, &["SADD", &keys.queues(), "empty"]).await;
    // Counters, sets, processes.
    redis_cmd(&app, &["SET", &keys.stat_processed(), "1234"]).await;
    redis_cmd(&app, &["SET", &keys.stat_failed(), "56"]).await;
    redis_cmd(&app, &["ZADD", &keys.retry(), "1", "r1", "2", "r2"]).await;
    redis_cmd(
        &app,
        &[
            "ZADD",
            &keys.dead(),
            "1",
            "d1",
            "2",
            "d2",
            "3",
            "d3",
            "4",
            "d4",
        ],
    )
    .await;
    let mut later = NewJob::new("Later", vec![]);
    later.options = EnqueueOptions::new().delay(Duration::from_secs(3600));
    app.client.push(later).await.unwrap();
    redis_cmd(
        &app,
        &[
            "SADD",
            &keys.processes(),
            "web.1:1:a",
            "worker.1:2:b",
            "worker.2:3:c",
        ],
    )
    .await;
    redis_cmd(
        &app,
        &["HSET", &keys.process("web.1:1:a"), "busy", "0", "beat", "1"],
    )
    .await;
    redis_cmd(&app, &["HSET", &keys.process("worker.1:2:b"), "busy", "5"]).await;
    // worker.2:3:c has no hash any more (it died): it counts as 0.

    // Token required.
    assert_eq!(app.get("/metrics").await.status(), 401);
    assert_eq!(app.get("/metrics?token=wrong").await.status(), 401);
    let bearer_wrong = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(bearer_wrong.status(), 401);
    assert_eq!(bearer_wrong.headers()["www-authenticate"], "Bearer");
    assert_eq!(app.get("/autoscale").await.status(), 401);

    let response = app
        .http
        .get(format!("{}/metrics", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let default_age_bound = before.elapsed().as_secs_f64();
    let text = response.text().await.unwrap();
    let m = parse_prometheus(&text);
    assert_eq!(m["queue_size{queue=\"default\"}"], 3.0);
    assert_eq!(m["queue_size{queue=\"critical\"}"], 2.0);
    assert_eq!(m["queue_size{queue=\"old\"}"], 1.0);
    assert_eq!(m["queue_size{queue=\"ms\"}"], 1.0);
    assert_eq!(m["queue_size{queue=\"empty\"}"], 0.0);
    let default_latency = m["queue_latency_seconds{queue=\"default\"}"];
    assert!(
        (0.0..=default_age_bound).contains(&default_latency),
        "{default_latency} vs {default_age_bound}"
    );
    assert!(
        (m["queue_latency_seconds{queue=\"old\"}"] - 42.5).abs() < 1.0,
        "{text}"
    );
    assert!(
        (m["queue_latency_seconds{queue=\"ms\"}"] - 7.0).abs() < 1.0,
        "{text}"
    );
    assert_eq!(m["queue_latency_seconds{queue=\"empty\"}"], 0.0);
    assert_eq!(m["queue_jobs_processed_total"], 1234.0);
    assert_eq!(m["queue_jobs_failed_total"], 56.0);
    assert_eq!(m["queue_retry_jobs"], 2.0);
    assert_eq!(m["queue_scheduled_jobs"], 1.0);
    assert_eq!(m["queue_dead_jobs"], 4.0);
    assert_eq!(m["queue_busy_workers"], 5.0);

    // Autoscaler JSON: max latency by default, total size on request.
    let body: Value = app.get_with_token("/autoscale").await.json().await.unwrap();
    assert_eq!(body[0]["name"], "worker");
    let latency = body[0]["value"].as_f64().unwrap();
    assert!((latency - 42.5).abs() < 1.0, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 1);
    let body: Value = app
        .get_with_token("/autoscale?metric=size")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!([{ "name": "worker", "value": 7 }]));
    let bad = app.get_with_token("/autoscale?metric=nope").await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn metrics_of_an_empty_redis_are_zero() {
    let redis = TestRedis::start();
    let app = App::start(&redis, "metrics_empty").await;
    let text = app.get_with_token("/metrics").await.text().await.unwrap();
    let m = parse_prometheus(&text);
    assert_eq!(m["queue_jobs_processed_total"], 0.0);
    assert_eq!(m["queue_busy_workers"], 0.0);
    assert!(!m.keys().any(|k| k.starts_with("queue_size{")));
    let body: Value = app.get_with_token("/autoscale").await.json().await.unwrap();
    assert_eq!(body, json!([{ "name": "worker", "value": 0.0 }]));
}

#[tokio::test]
async fn metrics_take_the_token_from_the_header_only() {
    let redis = TestRedis::start();
    let app = App::start(&redis, "metrics_header_only").await;
    // A token in the query string lands in the platform router's access logs: refused.
    for path in ["/metrics", "/autoscale", "/autoscale?metric=size"] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let query = app.get(&format!("{path}{sep}token={TOKEN}")).await;
        assert_eq!(query.status(), 401, "{path}");
        assert_eq!(app.get_with_token(path).await.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn metrics_without_a_token_are_closed_unless_opened() {
    let redis = TestRedis::start();
    let client = queue_core::Client::connect(redis.config("metrics_closed"))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let get = |base: String, path: &'static str| {
        let http = http.clone();
        async move { http.get(format!("{base}{path}")).send().await.unwrap() }
    };
    // No token configured (METRICS_TOKEN unset): closed, not open.
    let closed = common::serve(Router::new().merge(queue_web::metrics_router(
        client.clone(),
        queue_web::MetricsConfig::new(),
    )))
    .await;
    let from_env = common::serve(Router::new().merge(queue_web::metrics_router(
        client.clone(),
        queue_web::MetricsConfig::from_vars(|_| None),
    )))
    .await;
    for base in [&closed, &from_env] {
        for path in ["/metrics", "/autoscale"] {
            let response = get(base.clone(), path).await;
            assert_eq!(response.status(), 401, "{base}{path}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
        }
    }
    // Opened on purpose (a private listener): no token needed.
    let open = common::serve(Router::new().merge(queue_web::metrics_router(
        client.clone(),
        queue_web::MetricsConfig::new().access(queue_web::MetricsAccess::Open),
    )))
    .await;
    for path in ["/metrics", "/autoscale"] {
        assert_eq!(get(open.clone(), path).await.status(), 200, "{path}");
    }
}
