//! The 202 helper, the status JSON of every state, access control and argument secrecy,
//! through a real listener against a private Redis.

mod common;

use common::{App, id_from_location};
use queue_core::status::field;
use queue_core::testing::TestRedis;
use queue_core::{EnqueueOptions, JobId, NewJob};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn enqueue_answers_202_with_location_and_body() {
    let redis = TestRedis::start();
    let app = App::start(&redis, "enqueue_answers_202").await;

    let response = app.create_report(None, "x").await;
    assert_eq!(response.status(), 202);
    let id = id_from_location(&response);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, format!("/jobs/{id}"));
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "id": id.as_str(), "status_url": location }));
    assert_eq!(id.as_str().len(), 32);

    // The Location works, and the job really is queued.
    let status = app.get(&location).await;
    assert_eq!(status.status(), 200);
    let body: Value = status.json().await.unwrap();
    assert_eq!(body["state"], "queued");
    let queued: i64 = redis::cmd("LLEN")
        .arg(app.client.keys().queue("default"))
        .query_async(&mut app.client.raw_connection())
        .await
        .unwrap();
    assert_eq!(queued, 1);
}

#[tokio::test]
async fn status_json_for_every_state() {
    let redis = TestRedis::start();
    let app = App::start(&redis, "status_json_for_every_state").await;
    let enqueue = || async {
        let response = app.create_report(None, "x").await;
        id_from_location(&response)
    };

    // queued: straight from enqueue.
    let queued = enqueue().await;
    let response = app.get(&format!("/jobs/{queued}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], queued.as_str());
    assert_eq!(body["state"], "queued");
    assert_eq!(body["attempt"], 0);
    assert_eq!(body["progress"], json!({ "percent": 0, "message": null }));
    assert!(body["created_at"].as_f64().unwrap() > 1.7e9);
    assert!(body["enqueued_at"].as_f64().unwrap() > 1.7e9);
    assert!(body.get("result").is_none() && body.get("error").is_none());

    // scheduled: enqueued with a delay; Retry-After points at the run time (capped).
    let mut job = NewJob::new("BuildReport", vec![json!(1)]);
    job.options = EnqueueOptions::new().delay(Duration::from_secs(30));
    let scheduled = app.client.push(job).await.unwrap();
    let response = app.get(&format!("/jobs/{scheduled}")).await;
    let after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((28..=31).contains(&after), "{after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "scheduled");
    assert!(body["run_at"].as_f64().unwrap() > body["created_at"].as_f64().unwrap() + 29.0);

    // running, with progress.
    let running = enqueue().await;
    app.write_status(
        &running,
        &[
            (field::STATE, "running"),
            (field::ATTEMPT, "1"),
            (field::STARTED_AT, "1760000100.5"),
            (field::PROGRESS, "40"),
            (field::MESSAGE, "resizing"),
        ],
    )
    .await;
    let response = app.get(&format!("/jobs/{running}")).await;
    assert_eq!(response.headers()["retry-after"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "running");
    assert_eq!(body["attempt"], 1);
    assert_eq!(
        body["progress"],
        json!({ "percent": 40, "message": "resizing" })
    );
    assert_eq!(body["started_at"], 1760000100.5);
    assert!(body.get("error").is_none());

    // retrying, with the error.
    let retrying = enqueue().await;
    app.write_status(
        &retrying,
        &[
            (field::STATE, "retrying"),
            (field::ATTEMPT, "1"),
            (field::ERROR, "boom"),
        ],
    )
    .await;
    let response = app.get(&format!("/jobs/{retrying}")).await;
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "retrying");
    assert_eq!(body["error"], "boom");
    assert!(body.get("result").is_none());

    // succeeded, with the result JSON; terminal: no Retry-After.
    let succeeded = enqueue().await;
    app.write_status(
        &succeeded,
        &[
            (field::STATE, "succeeded"),
            (field::ATTEMPT, "1"),
            (field::PROGRESS, "100"),
            (field::RESULT, r#"{"url":"/reports/7.pdf","pages":3}"#),
            (field::ERROR, "an earlier attempt's error"),
            (field::FINISHED_AT, "1760000200.25"),
        ],
    )
    .await;
    let response = app.get(&format!("/jobs/{succeeded}")).await;
    assert!(!response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "succeeded");
    assert_eq!(
        body["result"],
        json!({ "url": "/reports/7.pdf", "pages": 3 })
    );
    assert_eq!(body["finished_at"], 1760000200.25);
    assert!(body.get("error").is_none());

    // dead, with the last error.
    let dead = enqueue().await;
    app.write_status(
        &dead,
        &[
            (field::STATE, "dead"),
            (field::ATTEMPT, "26"),
            (field::ERROR, "gave up"),
        ],
    )
    .await;
    let response = app.get(&format!("/jobs/{dead}")).await;
    assert!(!response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "dead");
    assert_eq!(body["error"], "gave up");
    assert_eq!(body["attempt"], 26);

    // cancelled, through the client.
    let cancelled = enqueue().await;
    assert!(app.client.cancel(&cancelled).await.unwrap());
    let response = app.get(&format!("/jobs/{cancelled}")).await;
    assert!(!response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["state"], "cancelled");
    assert!(body["finished_at"].as_f64().is_some());
}

/// Status, headers that matter, and body bytes of a response.
async fn fingerprint(response: reqwest::Response) -> (u16, String, String, Vec<u8>) {
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    let body = response.bytes().await.unwrap().to_vec();
    (status, content_type, cache, body)
}

#[tokio::test]
async fn unknown_malformed_and_forbidden_ids_look_the_same() {
    let redis = TestRedis::start();
    let app = App::start(&redis, "unknown_malformed_forbidden").await;
    let response = app.create_report(Some("alice"), "x").await;
    let owned = id_from_location(&response);

    // The owner sees it.
    assert_eq!(
        app.get_as(&format!("/jobs/{owned}"), "alice")
            .await
            .status(),
        200
    );

    let unknown = app.get(&format!("/jobs/{}", JobId::new())).await;
    let expected = fingerprint(unknown).await;
    assert_eq!(expected.0, 404);
    assert_eq!(expected.3, br#"{"error":"not found"}"#);
    assert_eq!(expected.2, "no-store");

    let long = "a".repeat(65);
    let others = [
        ("malformed: punctuation", app.get("/jobs/bad.id!").await),
        (
            "malformed: too long",
            app.get(&format!("/jobs/{long}")).await,
        ),
        ("malformed: not UTF-8", app.get("/jobs/%FF%FE").await),
        ("malformed: encoded slash", app.get("/jobs/a%2Fb").await),
        ("malformed: no slash", app.get("/jobs").await),
        ("malformed: nested", app.get("/jobs/a/b").await),
        (
            "forbidden: other user",
            app.get_as(&format!("/jobs/{owned}"), "mallory").await,
        ),
        (
            "forbidden: anonymous",
            app.get(&format!("/jobs/{owned}")).await,
        ),
        (
            "forbidden: long poll",
            app.get_as(&format!("/jobs/{owned}?wait=5"), "mallory")
                .await,
        ),
    ];
    for (what, response) in others {
        assert_eq!(fingerprint(response).await, expected, "{what}");
    }
}

#[tokio::test]
async fn arguments_never_appear() {
    let redis = TestRedis::start();
    let app = App::start(&redis, "arguments_never_appear").await;
    let secret = "SECRET-ARG-7f3a9c";
    let response = app.create_report(None, secret).await;
    let id = id_from_location(&response);
    assert!(!response.text().await.unwrap().contains(secret));

    // The payload does hold it (so the checks below mean something).
    let raw: Vec<String> = redis::cmd("LRANGE")
        .arg(app.client.keys().queue("default"))
        .arg(0)
        .arg(-1)
        .query_async(&mut app.client.raw_connection())
        .await
        .unwrap();
    assert!(raw[0].contains(secret));

    let path = format!("/jobs/{id}");
    assert!(!app.get(&path).await.text().await.unwrap().contains(secret));
    app.write_status(&id, &[(field::STATE, "running"), (field::PROGRESS, "10")])
        .await;
    assert!(!app.get(&path).await.text().await.unwrap().contains(secret));
    app.write_status(&id, &[(field::STATE, "succeeded"), (field::RESULT, "42")])
        .await;
    let body = app.get(&path).await.text().await.unwrap();
    assert!(body.contains("42") && !body.contains(secret), "{body}");
    let metrics = app.get_with_token("/metrics").await.text().await.unwrap();
    assert!(!metrics.contains(secret));
}
