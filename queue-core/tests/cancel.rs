//! `Client::cancel`: only a job that has not started can be cancelled.

mod common;

use common::{Greet, Tick, all_keys, cmd, now_secs, raw};
use queue_core::testing::TestRedis;
use queue_core::{Client, JobId, JobState};
use std::collections::HashMap;
use std::time::Duration;

/// A day, the default retention of a finished job's record.
const FINISHED_TTL: i64 = 24 * 3600;

#[tokio::test]
async fn cancelling_a_queued_job() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("cancelling_a_queued_job"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let id = client.enqueue(&Greet::new("c")).await.unwrap();

    let before = now_secs();
    assert!(client.cancel(&id).await.unwrap());
    let record: HashMap<String, String> =
        cmd(&mut conn, &["HGETALL", &keys.status(id.as_str())]).await;
    assert_eq!(record["state"], "cancelled");
    assert_eq!(record["rev"], "2");
    let finished: f64 = record["finished_at"].parse().unwrap();
    assert!((before..=now_secs()).contains(&finished));
    // The record lasts as long as the job waits (a forgotten cancel would let it run), and
    // keeps the retention the job's drop applies.
    let ttl: i64 = cmd(&mut conn, &["TTL", &keys.status(id.as_str())]).await;
    assert_eq!(ttl, -1);
    assert_eq!(record["retention"], FINISHED_TTL.to_string());
    // The entry stays in the queue list: the worker acks it without running it.
    let len: usize = cmd(&mut conn, &["LLEN", &keys.queue("default")]).await;
    assert_eq!(len, 1);

    let s = client.status(&id).await.unwrap().unwrap();
    assert_eq!((s.state, s.rev), (JobState::Cancelled, 2));
    assert!(!client.cancel(&id).await.unwrap(), "already cancelled");
    // A cancelled id is still known: enqueueing it again does not revive it.
    let again = client
        .enqueue_with(
            &Greet::new("c"),
            queue_core::EnqueueOptions::new().job_id(id.clone()),
        )
        .await
        .unwrap();
    assert_eq!(again, id);
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
}

#[tokio::test]
async fn cancelling_a_scheduled_or_retrying_job() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("cancelling_a_scheduled_or_retrying_job"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;

    let scheduled = client
        .enqueue_in(&Greet::new("s"), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(client.cancel(&scheduled).await.unwrap());
    assert_eq!(
        client.status(&scheduled).await.unwrap().unwrap().state,
        JobState::Cancelled
    );

    let retrying = client.enqueue(&Greet::new("r")).await.unwrap();
    let key = client.keys().status(retrying.as_str());
    let _: () = cmd(
        &mut conn,
        &["HSET", &key, "state", "retrying", "attempt", "1"],
    )
    .await;
    assert!(client.cancel(&retrying).await.unwrap());
    assert_eq!(
        client.status(&retrying).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
}

#[tokio::test]
async fn a_finished_job_is_not_cancelled() {
    // (A running one is: its worker is told to stop it; see script_replies.rs and
    // queue-worker/tests/operators.rs.)
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("a_finished_job_is_not_cancelled"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;

    for state in ["succeeded", "dead", "cancelled", "expired"] {
        let id = client.enqueue(&Greet::new(state)).await.unwrap();
        let key = client.keys().status(id.as_str());
        let _: () = cmd(&mut conn, &["HSET", &key, "state", state]).await;
        let before: HashMap<String, String> = cmd(&mut conn, &["HGETALL", &key]).await;
        let ttl_before: i64 = cmd(&mut conn, &["TTL", &key]).await;

        assert!(!client.cancel(&id).await.unwrap(), "{state}");
        let after: HashMap<String, String> = cmd(&mut conn, &["HGETALL", &key]).await;
        assert_eq!(after, before, "{state}: record unchanged");
        let ttl_after: i64 = cmd(&mut conn, &["TTL", &key]).await;
        assert!(
            ttl_after <= ttl_before && ttl_after > FINISHED_TTL,
            "{state}: ttl {ttl_after}"
        );
    }
}

#[tokio::test]
async fn an_unknown_or_untracked_job_is_not_cancelled() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("an_unknown_or_untracked_job_is_not_cancelled"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;

    assert!(!client.cancel(&JobId::new()).await.unwrap());
    assert!(
        all_keys(&redis, &mut conn).await.is_empty(),
        "no record is created"
    );
    let untracked = client.enqueue(&Tick(1)).await.unwrap();
    assert!(!client.cancel(&untracked).await.unwrap());
    assert!(
        !all_keys(&redis, &mut conn)
            .await
            .iter()
            .any(|k| k.contains("jobstatus"))
    );
}
