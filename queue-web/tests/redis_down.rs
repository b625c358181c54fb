//! With Redis gone, every endpoint answers a quick `503 {"error":"redis unavailable"}`.

mod common;

use common::{App, TOKEN, id_from_location};
use queue_core::testing::TestRedis;
use std::time::Duration;
use tokio::time::Instant;

/// How fast a 503 must come back: the client's bounded timeout is 2 s, health's 1 s.
const ANSWER_WITHIN: Duration = Duration::from_secs(3);

#[tokio::test]
async fn redis_down_is_a_quick_503() {
    let mut redis = TestRedis::start_private();
    let app = App::start(&redis, "redis_down_is_503").await;
    let id = id_from_location(&app.create_report(None, "x").await);
    assert_eq!(app.get(&format!("/jobs/{id}")).await.status(), 200);

    redis.kill();

    let requests = [
        ("status", app.http.get(format!("{}/jobs/{id}", app.base))),
        (
            "long poll",
            app.http.get(format!("{}/jobs/{id}?wait=5", app.base)),
        ),
        ("health", app.http.get(format!("{}/health", app.base))),
        (
            "metrics",
            app.http
                .get(format!("{}/metrics", app.base))
                .bearer_auth(TOKEN),
        ),
        (
            "autoscale",
            app.http
                .get(format!("{}/autoscale", app.base))
                .bearer_auth(TOKEN),
        ),
        (
            "enqueue",
            app.http
                .post(format!("{}/reports", app.base))
                .json(&serde_json::json!({ "secret": "x" })),
        ),
    ];
    for (what, request) in requests {
        let start = Instant::now();
        let response = request.send().await.unwrap();
        let elapsed = start.elapsed();
        let status = response.status();
        let retry_after = response.headers().get("retry-after").cloned();
        let body = response.text().await.unwrap();
        eprintln!("{what}: {status} in {elapsed:?}");
        assert_eq!(status, 503, "{what}: {body}");
        assert_eq!(body, r#"{"error":"redis unavailable"}"#, "{what}");
        assert_eq!(retry_after.unwrap(), "1", "{what}");
        assert!(elapsed < ANSWER_WITHIN, "{what}: {elapsed:?}");
    }
}

#[tokio::test]
async fn a_hung_redis_is_a_bounded_503() {
    let redis = TestRedis::start_private();
    let app = App::start(&redis, "hung_redis_is_503").await;
    let id = id_from_location(&app.create_report(None, "x").await);

    // Freeze the server: connections stay open, nothing answers (a stalled managed Redis).
    let pid = redis.pid().unwrap().to_string();
    let stop = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status();
    assert!(stop.unwrap().success());

    for (what, path) in [
        ("status", format!("/jobs/{id}")),
        ("health", "/health".to_owned()),
    ] {
        let start = Instant::now();
        let response = app.get(&path).await;
        let elapsed = start.elapsed();
        eprintln!(
            "{what} with Redis frozen: {} in {elapsed:?}",
            response.status()
        );
        assert_eq!(response.status(), 503, "{what}");
        assert_eq!(
            response.text().await.unwrap(),
            r#"{"error":"redis unavailable"}"#
        );
        assert!(elapsed < ANSWER_WITHIN, "{what}: {elapsed:?}");
    }
    // The drop would kill it frozen too; let it run again first, as a resumed server would.
    let _ = std::process::Command::new("kill")
        .args(["-CONT", &pid])
        .status();
}
