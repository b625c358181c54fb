//! `Client::status`: every field of the record, as enqueue and (simulated) workers write it.

mod common;

use common::{Greet, Tick, cmd, now_secs, raw};
use queue_core::testing::TestRedis;
use queue_core::{Client, EnqueueOptions, JobId, JobState, Progress, StatusRetention};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn status_of_a_queued_job() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("status_of_a_queued_job"))
        .await
        .unwrap();
    let before = now_secs();
    let id = client
        .enqueue_with(
            &Greet::new("s"),
            EnqueueOptions::new().queue("mail").owner("user-1"),
        )
        .await
        .unwrap();
    let after = now_secs();

    let s = client.status(&id).await.unwrap().unwrap();
    assert_eq!(s.state, JobState::Queued);
    assert_eq!(s.queue.as_deref(), Some("mail"));
    assert_eq!(s.class.as_deref(), Some("Greet"));
    assert_eq!(s.owner.as_deref(), Some("user-1"));
    assert_eq!(s.attempt, 0);
    assert_eq!(s.rev, 1);
    assert_eq!(s.progress, Progress::default());
    let created = s.created_at.unwrap();
    assert!((before..=after).contains(&created), "{created}");
    assert_eq!(s.enqueued_at, Some(created));
    assert_eq!((s.run_at, s.started_at, s.finished_at), (None, None, None));
    assert_eq!((s.result, s.error), (None, None));
}

#[tokio::test]
async fn status_of_a_scheduled_job_has_its_run_time() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("status_of_a_scheduled_job_has_its_run_time"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;
    let id = client
        .enqueue_in(&Greet::new("s"), Duration::from_secs(90))
        .await
        .unwrap();

    let s = client.status(&id).await.unwrap().unwrap();
    assert_eq!(s.state, JobState::Scheduled);
    assert_eq!(s.enqueued_at, None);
    let scheduled: Vec<(String, f64)> = cmd(
        &mut conn,
        &["ZRANGE", &client.keys().schedule(), "0", "-1", "WITHSCORES"],
    )
    .await;
    let score = scheduled[0].1;
    assert!((s.run_at.unwrap() - score).abs() < 1e-5);
    assert!(s.run_at.unwrap() > s.created_at.unwrap() + 89.0);
}

#[tokio::test]
async fn status_reads_every_field_a_worker_writes() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("status_reads_every_field_a_worker_writes"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;
    let id = client.enqueue(&Greet::new("w")).await.unwrap();
    let key = client.keys().status(id.as_str());

    // A running job that reported progress, as the worker's scripts write it.
    let _: () = cmd(
        &mut conn,
        &[
            "HSET",
            &key,
            "state",
            "running",
            "attempt",
            "2",
            "started_at",
            "1760000100.5",
            "progress",
            "40",
            "message",
            "resizing",
            "rev",
            "4",
        ],
    )
    .await;
    let s = client.status(&id).await.unwrap().unwrap();
    assert_eq!(s.state, JobState::Running);
    assert_eq!(s.attempt, 2);
    assert_eq!(s.started_at, Some(1_760_000_100.5));
    assert_eq!(
        s.progress,
        Progress {
            percent: 40,
            message: Some("resizing".to_owned())
        }
    );
    assert_eq!(s.rev, 4);

    let _: () = cmd(
        &mut conn,
        &[
            "HSET",
            &key,
            "state",
            "succeeded",
            "finished_at",
            "1760000200.25",
            "result",
            r#"{"url":"/r/1","size":3}"#,
            "rev",
            "5",
        ],
    )
    .await;
    let s = client.status(&id).await.unwrap().unwrap();
    assert_eq!(s.state, JobState::Succeeded);
    assert!(s.state.is_terminal());
    assert_eq!(s.finished_at, Some(1_760_000_200.25));
    assert_eq!(s.result, Some(json!({"url": "/r/1", "size": 3})));

    let _: () = cmd(
        &mut conn,
        &[
            "HSET",
            &key,
            "state",
            "dead",
            "error",
            "boom: no such image",
        ],
    )
    .await;
    let s = client.status(&id).await.unwrap().unwrap();
    assert_eq!(s.state, JobState::Dead);
    assert_eq!(s.error.as_deref(), Some("boom: no such image"));

    let _: () = cmd(&mut conn, &["HSET", &key, "state", "retrying"]).await;
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Retrying
    );
}

#[tokio::test]
async fn no_record_reads_as_none() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("no_record_reads_as_none"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;

    assert!(client.status(&JobId::new()).await.unwrap().is_none());
    let untracked = client.enqueue(&Tick(3)).await.unwrap();
    assert!(client.status(&untracked).await.unwrap().is_none());
    // A record with a state this version does not know is no record, not an error.
    let odd = JobId::new();
    let _: () = cmd(
        &mut conn,
        &[
            "HSET",
            &client.keys().status(odd.as_str()),
            "state",
            "paused",
        ],
    )
    .await;
    assert!(client.status(&odd).await.unwrap().is_none());
}

#[tokio::test]
async fn records_expire_after_the_configured_retention() {
    let redis = TestRedis::start();
    let retention = StatusRetention {
        finished: Duration::from_secs(60),
        active: Duration::from_secs(600),
    };
    let config = redis
        .config("records_expire_after_the_configured_retention")
        .status_retention(retention);
    let client = Client::connect(config).await.unwrap();
    let mut conn = raw(&redis).await;

    let now = client.enqueue(&Greet::new("r")).await.unwrap();
    let later = client
        .enqueue_in(&Greet::new("r"), Duration::from_secs(5))
        .await
        .unwrap();
    let bulk = client.enqueue_bulk(&[Greet::new("r")]).await.unwrap();
    for id in [&now, &bulk[0]] {
        let ttl: i64 = cmd(&mut conn, &["TTL", &client.keys().status(id.as_str())]).await;
        assert!((590..=600).contains(&ttl), "{id}: ttl {ttl}");
    }
    // A scheduled job's record also lives through its wait (5 s here).
    let ttl: i64 = cmd(&mut conn, &["TTL", &client.keys().status(later.as_str())]).await;
    assert!((595..=605).contains(&ttl), "{later}: ttl {ttl}");
    // A cancel keeps the record while the job waits, noting the shorter retention, which
    // applies once the job is dropped.
    assert!(client.cancel(&now).await.unwrap());
    let key = client.keys().status(now.as_str());
    let ttl: i64 = cmd(&mut conn, &["TTL", &key]).await;
    assert_eq!(ttl, -1);
    let retention: String = cmd(&mut conn, &["HGET", &key, "retention"]).await;
    assert_eq!(retention, "60");
}
