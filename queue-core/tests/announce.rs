//! The scripts announce a change of a status record on the status channel exactly while a
//! long poll watches it (`scripts::watch`), and never otherwise: each wrapper is called, then
//! the message read from a real subscription.
//!
//! "Nothing was announced" is checked without waiting for silence: pub/sub keeps the order of
//! one connection's messages, so after the change that must stay silent a watched record is
//! changed, and its message must be the next one.

mod common;

use common::{cmd, lpush, raw};
use futures_util::{Stream, StreamExt};
use queue_core::scripts::{
    self, Ack, AckFetch, AckTracking, Deferral, FailTo, FailedAttempt, Requeue, StartJob,
};
use queue_core::status_changes::StatusChange;
use queue_core::testing::TestRedis;
use queue_core::{Client, JobId, NewJob, Timestamp};
use std::pin::pin;
use std::time::Duration;

const IDENTITY: &str = "host:1:nonce";
/// How long a long poll in these tests waits.
const WAIT: Duration = Duration::from_secs(20);

/// The next announcement, within a bound.
async fn next(changes: &mut (impl Stream<Item = StatusChange> + Unpin)) -> StatusChange {
    tokio::time::timeout(Duration::from_secs(5), changes.next())
        .await
        .expect("no announcement")
        .expect("subscription ended")
}

/// Minimal job JSON for `jid`, as fetched.
fn job(jid: &JobId) -> String {
    format!(r#"{{"jid":"{jid}","class":"X","args":[],"queue":"default"}}"#)
}

#[tokio::test]
async fn every_change_of_a_watched_record_is_announced_with_its_rev() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("announce_watched"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let mut changes = pin!(client.status_changes().await.unwrap());
    let id = client.push(NewJob::new("X", Vec::new())).await.unwrap();
    let jid = id.as_str();
    let raw_job = job(&id);
    let processing = keys.processing(IDENTITY);

    let watched = scripts::watch(&client, jid, WAIT).await.unwrap().unwrap();
    assert!(watched.announced);
    assert_eq!(watched.status.rev, 1);

    let start = StartJob {
        jid,
        attempt: 1,
        queue: "default",
        class: "X",
        tracked: true,
    };
    scripts::start(&client, &[start], Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        next(&mut changes).await,
        StatusChange {
            job: id.clone(),
            rev: 2
        }
    );

    scripts::progress(&client, jid, 50, "half").await.unwrap();
    assert_eq!(next(&mut changes).await.rev, 3);

    lpush(&mut conn, &processing, &[&raw_job]).await;
    let attempt = FailedAttempt {
        identity: IDENTITY,
        raw: raw_job.as_bytes(),
        rewritten: &raw_job,
        jid,
        to: FailTo::Retry {
            delay: Duration::from_secs(60),
        },
        tracked: true,
        error: "E: boom",
        clock_offset_ms: 0,
        dead_max_jobs: 10,
        dead_max_age: Duration::from_secs(3600),
    };
    scripts::fail(&client, &attempt).await.unwrap();
    assert_eq!(next(&mut changes).await.rev, 4);

    lpush(&mut conn, &processing, &[&raw_job]).await;
    let requeue = Requeue {
        identity: IDENTITY,
        raw: raw_job.as_bytes(),
        pushed: raw_job.as_bytes(),
        queue: "default",
        jid,
        tracked: true,
    };
    scripts::requeue(&client, &requeue).await.unwrap();
    assert_eq!(next(&mut changes).await.rev, 5);

    lpush(&mut conn, &processing, &[&raw_job]).await;
    scripts::defer(
        &client,
        IDENTITY,
        raw_job.as_bytes(),
        &raw_job,
        jid,
        Duration::from_millis(500),
        Deferral::OverLimit,
    )
    .await
    .unwrap();
    assert_eq!(next(&mut changes).await.rev, 6);

    lpush(&mut conn, &processing, &[&raw_job]).await;
    let _: () = cmd(
        &mut conn,
        &["SET", &keys.lease(IDENTITY), "1", "PX", "600000"],
    )
    .await;
    let ack = Ack {
        raw: raw_job.as_bytes(),
        jid,
        tracking: AckTracking::Tracked,
        result: Some("42"),
        retention: Duration::from_secs(3600),
    };
    let call = AckFetch {
        identity: IDENTITY,
        acks: &[ack],
        want: 0,
        queues: &[],
        lease_ttl: Duration::from_secs(10),
        now: Timestamp::now(),
    };
    scripts::ack_fetch(&client, &call).await.unwrap();
    assert_eq!(next(&mut changes).await, StatusChange { job: id, rev: 7 });

    // Cancel, on a second job.
    let other = client.push(NewJob::new("X", Vec::new())).await.unwrap();
    scripts::watch(&client, other.as_str(), WAIT).await.unwrap();
    assert!(client.cancel(&other).await.unwrap());
    assert_eq!(
        next(&mut changes).await,
        StatusChange { job: other, rev: 2 }
    );
}

#[tokio::test]
async fn records_nobody_watches_announce_nothing() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("announce_unwatched"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let mut changes = pin!(client.status_changes().await.unwrap());
    let start = |jid| StartJob {
        jid,
        attempt: 1,
        queue: "default",
        class: "X",
        tracked: true,
    };

    // Never watched.
    let quiet = client.push(NewJob::new("X", Vec::new())).await.unwrap();
    scripts::start(&client, &[start(quiet.as_str())], Timestamp::now())
        .await
        .unwrap();
    // Watched once, but the mark has passed.
    let lapsed = client.push(NewJob::new("X", Vec::new())).await.unwrap();
    scripts::watch(&client, lapsed.as_str(), WAIT)
        .await
        .unwrap();
    let _: i64 = cmd(
        &mut conn,
        &["HSET", &keys.status(lapsed.as_str()), "watched_until", "1"],
    )
    .await;
    scripts::start(&client, &[start(lapsed.as_str())], Timestamp::now())
        .await
        .unwrap();

    // The first message is the watched one's.
    let loud = client.push(NewJob::new("X", Vec::new())).await.unwrap();
    scripts::watch(&client, loud.as_str(), WAIT).await.unwrap();
    assert!(client.cancel(&loud).await.unwrap());
    assert_eq!(next(&mut changes).await.job, loud);
    let cancelled = scripts::watch(&client, loud.as_str(), WAIT)
        .await
        .unwrap()
        .unwrap();
    assert!(!cancelled.announced, "a terminal record is not marked");
    // The mark is not a change: no rev moved.
    assert_eq!(cancelled.status.rev, 2);
}
