//! Every script wrapper in `queue_core::scripts` (the calls the worker makes) against a
//! private Redis: each reply variant, the edge ones included, and then the raw Redis state
//! the call left, read through [`Keys`] on a separate connection. `ack_fetch` has its own
//! file (`ack_fetch_script.rs`).

mod common;

use common::{cmd, exists, hgetall, lpush, lrange, raw, redis_time};
use queue_core::scripts::{
    self, Beat, BeatMode, Cancelled, Deferral, Deferred, FailTo, Failed, FailedAttempt, Heartbeat,
    ProgressRecorded, PromoteFrom, Promoted, Reaped, Requeue, Requeued, Signal, Slot, StartJob,
    Started,
};
use queue_core::testing::TestRedis;
use queue_core::{Client, Keys, StatusRetention, Timestamp};
use redis::aio::MultiplexedConnection;
use std::time::Duration;

/// The identity of the pretend worker process that holds the jobs.
const IDENTITY: &str = "host:1:nonce";
/// Finished-record retention of the test client (not the default, so a hard-coded one shows).
const FINISHED_TTL: u64 = 3_600;
/// Active-record retention of the test client.
const ACTIVE_TTL: u64 = 7_200;

/// A client with the test's key prefix and the retentions above, and a separate raw
/// connection.
async fn setup(redis: &TestRedis, name: &str) -> (Client, Keys, MultiplexedConnection) {
    let config = redis.config(name).status_retention(StatusRetention {
        finished: Duration::from_secs(FINISHED_TTL),
        active: Duration::from_secs(ACTIVE_TTL),
    });
    let client = Client::connect(config).await.unwrap();
    let keys = client.keys().clone();
    (client, keys, raw(redis).await)
}

/// Minimal job JSON written jid first, as our client does.
fn job(jid: &str) -> String {
    format!(r#"{{"jid":"{jid}","class":"X","args":[],"queue":"default"}}"#)
}

async fn zrange(conn: &mut MultiplexedConnection, key: &str) -> Vec<String> {
    cmd(conn, &["ZRANGE", key, "0", "-1"]).await
}

async fn zscore(conn: &mut MultiplexedConnection, key: &str, member: &str) -> Option<f64> {
    cmd(conn, &["ZSCORE", key, member]).await
}

async fn smembers(conn: &mut MultiplexedConnection, key: &str) -> Vec<String> {
    let mut members: Vec<String> = cmd(conn, &["SMEMBERS", key]).await;
    members.sort();
    members
}

async fn hset(conn: &mut MultiplexedConnection, key: &str, fields: &[&str]) {
    let mut parts = vec!["HSET", key];
    parts.extend_from_slice(fields);
    let _: i64 = cmd(conn, &parts).await;
}

async fn ttl(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    cmd(conn, &["TTL", key]).await
}

async fn get_int(conn: &mut MultiplexedConnection, key: &str) -> Option<i64> {
    cmd(conn, &["GET", key]).await
}

/// Gives `identity` a lease of 10 minutes, far longer than any test.
async fn set_lease(conn: &mut MultiplexedConnection, keys: &Keys, identity: &str) {
    let _: () = cmd(conn, &["SET", &keys.lease(identity), "1", "PX", "600000"]).await;
}

/// A failed attempt of `raw` held by [`IDENTITY`], stored as `rewritten`.
fn failed<'a>(raw: &'a str, rewritten: &'a str, jid: &'a str, to: FailTo) -> FailedAttempt<'a> {
    FailedAttempt {
        identity: IDENTITY,
        raw: raw.as_bytes(),
        rewritten,
        jid,
        to,
        tracked: true,
        error: "RuntimeError: boom",
        clock_offset_ms: 0,
        dead_max_jobs: 10,
        dead_max_age: Duration::from_secs(3_600),
    }
}

#[tokio::test]
async fn fail_moves_a_held_job_to_retry_or_dead_and_ignores_one_not_held() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "fail_replies").await;
    let processing = keys.processing(IDENTITY);
    let (r_raw, d_raw, other) = (job("r"), job("d"), job("other"));
    lpush(&mut conn, &processing, &[&r_raw, &d_raw]).await;
    for jid in ["r", "d", "gone"] {
        hset(
            &mut conn,
            &keys.status(jid),
            &["state", "running", "rev", "2"],
        )
        .await;
    }

    // Retrying: in the retry set as rewritten, due `delay` after Redis's clock.
    let r_stored = r#"{"jid":"r","class":"X","args":[],"error_message":"boom"}"#;
    let before = redis_time(&mut conn).await;
    let delay = Duration::from_secs(60);
    let reply = scripts::fail(
        &client,
        &failed(&r_raw, r_stored, "r", FailTo::Retry { delay }),
    )
    .await
    .unwrap();
    let after = redis_time(&mut conn).await;
    assert_eq!(reply, Failed::Retrying);
    let score = zscore(&mut conn, &keys.retry(), r_stored).await.unwrap();
    assert!(
        (before + 60.0 - 0.001..=after + 60.0 + 0.001).contains(&score),
        "{before} {score} {after}"
    );
    assert_eq!(lrange(&mut conn, &processing).await, [&*d_raw]);
    let record = hgetall(&mut conn, &keys.status("r")).await;
    assert_eq!(record["state"], "retrying");
    assert_eq!(record["error"], "RuntimeError: boom");
    assert_eq!(record["rev"], "3");
    assert!((record["run_at"].parse::<f64>().unwrap() - score).abs() < 1e-5);
    let t = ttl(&mut conn, &keys.status("r")).await;
    assert!(t > FINISHED_TTL as i64 && t <= ACTIVE_TTL as i64, "ttl {t}");

    // Dead: in the dead set, the record finished.
    let d_stored = r#"{"jid":"d","class":"X","args":[],"error_message":"boom"}"#;
    let reply = scripts::fail(&client, &failed(&d_raw, d_stored, "d", FailTo::Dead))
        .await
        .unwrap();
    assert_eq!(reply, Failed::Dead);
    assert_eq!(zrange(&mut conn, &keys.dead()).await, [d_stored]);
    assert!(!exists(&mut conn, &processing).await);
    let record = hgetall(&mut conn, &keys.status("d")).await;
    assert_eq!(record["state"], "dead");
    assert_eq!(record["rev"], "3");
    assert!(record.contains_key("finished_at"));
    let t = ttl(&mut conn, &keys.status("d")).await;
    assert!((1..=FINISHED_TTL as i64).contains(&t), "ttl {t}");
    assert_eq!(get_int(&mut conn, &keys.stat_failed()).await, Some(2));
    assert_eq!(get_int(&mut conn, &keys.stat_processed()).await, Some(2));

    // NotOwned: not in the processing list (another worker holds it now): nothing written.
    lpush(&mut conn, &processing, &[&other]).await;
    let gone_before = hgetall(&mut conn, &keys.status("gone")).await;
    for to in [FailTo::Retry { delay }, FailTo::Dead] {
        let reply = scripts::fail(&client, &failed(&job("gone"), "stored", "gone", to))
            .await
            .unwrap();
        assert_eq!(reply, Failed::NotOwned);
    }
    assert_eq!(zrange(&mut conn, &keys.retry()).await, [r_stored]);
    assert_eq!(zrange(&mut conn, &keys.dead()).await, [d_stored]);
    assert_eq!(lrange(&mut conn, &processing).await, [&*other]);
    assert_eq!(hgetall(&mut conn, &keys.status("gone")).await, gone_before);
    assert_eq!(get_int(&mut conn, &keys.stat_failed()).await, Some(2));
    assert_eq!(get_int(&mut conn, &keys.stat_processed()).await, Some(2));
}

#[tokio::test]
async fn a_cancelled_job_that_fails_ends_cancelled_not_retried() {
    // At maxmemory the start of a job can go unrecorded, so a job cancelled while queued may
    // run; if it then fails, it must not come back through the retry set.
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "fail_cancelled").await;
    let processing = keys.processing(IDENTITY);
    let (r_raw, d_raw) = (job("r"), job("d"));
    lpush(&mut conn, &processing, &[&r_raw, &d_raw]).await;
    for jid in ["r", "d"] {
        hset(
            &mut conn,
            &keys.status(jid),
            &[
                "state",
                "cancelled",
                "finished_at",
                "1700000000.0",
                "rev",
                "3",
            ],
        )
        .await;
    }
    let cancelled_r = hgetall(&mut conn, &keys.status("r")).await;
    let cancelled_d = hgetall(&mut conn, &keys.status("d")).await;

    let delay = Duration::from_secs(60);
    let reply = scripts::fail(
        &client,
        &failed(&r_raw, "stored-r", "r", FailTo::Retry { delay }),
    )
    .await
    .unwrap();
    assert_eq!(reply, Failed::Cancelled);
    let reply = scripts::fail(&client, &failed(&d_raw, "stored-d", "d", FailTo::Dead))
        .await
        .unwrap();
    assert_eq!(reply, Failed::Cancelled);

    // Dropped: in no set and out of the processing list; the records still say cancelled.
    assert!(zrange(&mut conn, &keys.retry()).await.is_empty());
    assert!(zrange(&mut conn, &keys.dead()).await.is_empty());
    assert!(!exists(&mut conn, &processing).await);
    assert_eq!(hgetall(&mut conn, &keys.status("r")).await, cancelled_r);
    assert_eq!(hgetall(&mut conn, &keys.status("d")).await, cancelled_d);
}

/// [`IDENTITY`] hands `raw` back to `default`, pushing `pushed`.
async fn requeue(client: &Client, raw: &str, pushed: &str, jid: &str) -> Requeued {
    scripts::requeue(
        client,
        &Requeue {
            identity: IDENTITY,
            raw: raw.as_bytes(),
            pushed: pushed.as_bytes(),
            queue: "default",
            jid,
            tracked: true,
        },
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn requeue_hands_back_to_the_consuming_end_unless_not_held_or_cancelled() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "requeue_replies").await;
    let processing = keys.processing(IDENTITY);
    let queue = keys.queue("default");
    let (held, cancelled, waiting) = (job("held"), job("cancelled"), job("waiting"));
    lpush(&mut conn, &processing, &[&held, &cancelled]).await;
    lpush(&mut conn, &queue, &[&waiting]).await;
    hset(
        &mut conn,
        &keys.status("held"),
        &["state", "running", "rev", "4"],
    )
    .await;
    hset(
        &mut conn,
        &keys.status("cancelled"),
        &["state", "cancelled"],
    )
    .await;

    // Queued: the pushed form lands at the right end, where workers take from, so it runs
    // before the job that was already waiting.
    let pushed = r#"{"jid":"held","class":"X","args":[],"queue":"default","retry_count":0}"#;
    assert_eq!(
        requeue(&client, &held, pushed, "held").await,
        Requeued::Queued
    );
    assert_eq!(lrange(&mut conn, &queue).await, [&*waiting, pushed]);
    assert_eq!(lrange(&mut conn, &processing).await, [&*cancelled]);
    assert_eq!(smembers(&mut conn, &keys.queues()).await, ["default"]);
    let record = hgetall(&mut conn, &keys.status("held")).await;
    assert_eq!(
        (record["state"].as_str(), record["rev"].as_str()),
        ("queued", "5")
    );
    let t = ttl(&mut conn, &keys.status("held")).await;
    assert!(t > FINISHED_TTL as i64 && t <= ACTIVE_TTL as i64, "ttl {t}");

    // NotOwned: no longer held (it was just handed back): nothing written.
    assert_eq!(
        requeue(&client, &held, pushed, "held").await,
        Requeued::NotOwned
    );
    assert_eq!(lrange(&mut conn, &queue).await, [&*waiting, pushed]);
    assert_eq!(hgetall(&mut conn, &keys.status("held")).await, record);

    // Cancelled: dropped from the processing list and not queued; the record stays.
    assert_eq!(
        requeue(&client, &cancelled, &cancelled, "cancelled").await,
        Requeued::Cancelled
    );
    assert!(!exists(&mut conn, &processing).await);
    assert_eq!(lrange(&mut conn, &queue).await, [&*waiting, pushed]);
    assert_eq!(
        hgetall(&mut conn, &keys.status("cancelled")).await["state"],
        "cancelled"
    );
}

/// [`IDENTITY`] defers `raw`, stored as `stored`, by `delay`.
async fn defer(client: &Client, raw: &str, stored: &str, jid: &str, why: Deferral<'_>) -> Deferred {
    let delay = Duration::from_secs(30);
    scripts::defer(client, IDENTITY, raw.as_bytes(), stored, jid, delay, why)
        .await
        .unwrap()
}

#[tokio::test]
async fn defer_waits_in_schedule_or_retry_unless_not_held_or_cancelled() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "defer_replies").await;
    let processing = keys.processing(IDENTITY);
    let (limited, unknown, cancelled) = (job("limited"), job("unknown"), job("cancelled"));
    lpush(&mut conn, &processing, &[&limited, &unknown, &cancelled]).await;
    for jid in ["limited", "unknown"] {
        hset(
            &mut conn,
            &keys.status(jid),
            &["state", "running", "rev", "2"],
        )
        .await;
    }
    hset(
        &mut conn,
        &keys.status("cancelled"),
        &["state", "cancelled"],
    )
    .await;
    // A record about to expire while its job cycles through deferrals.
    let _: i64 = cmd(&mut conn, &["EXPIRE", &keys.status("unknown"), "5"]).await;

    // Later, over its limit: the schedule set, shown as scheduled, 30 s on Redis's clock.
    let before = redis_time(&mut conn).await;
    let reply = defer(
        &client,
        &limited,
        "limited-stored",
        "limited",
        Deferral::OverLimit,
    )
    .await;
    let after = redis_time(&mut conn).await;
    assert_eq!(reply, Deferred::Later);
    let score = zscore(&mut conn, &keys.schedule(), "limited-stored")
        .await
        .unwrap();
    assert!(
        (before + 30.0 - 0.001..=after + 30.0 + 0.001).contains(&score),
        "{before} {score} {after}"
    );
    let record = hgetall(&mut conn, &keys.status("limited")).await;
    assert_eq!(
        (record["state"].as_str(), record["rev"].as_str()),
        ("scheduled", "3")
    );
    assert!((record["run_at"].parse::<f64>().unwrap() - score).abs() < 1e-5);
    assert!(!record.contains_key("error"));

    // Later, class unknown here: the retry set, shown as retrying with the error.
    let why = Deferral::UnknownClass {
        error: "unknown class X",
    };
    assert_eq!(
        defer(&client, &unknown, "unknown-stored", "unknown", why).await,
        Deferred::Later
    );
    assert_eq!(zrange(&mut conn, &keys.retry()).await, ["unknown-stored"]);
    let record = hgetall(&mut conn, &keys.status("unknown")).await;
    assert_eq!(record["state"], "retrying");
    assert_eq!(record["error"], "unknown class X");
    assert_eq!(lrange(&mut conn, &processing).await, [&*cancelled]);
    // Its record lives on while it waits; one without an expiry is not given one.
    let t = ttl(&mut conn, &keys.status("unknown")).await;
    assert!(t > 5 && t <= ACTIVE_TTL as i64, "ttl {t}");
    assert_eq!(ttl(&mut conn, &keys.status("limited")).await, -1);

    // NotOwned: no longer held: nothing written.
    assert_eq!(
        defer(&client, &limited, "again", "limited", Deferral::OverLimit).await,
        Deferred::NotOwned
    );
    assert_eq!(
        zrange(&mut conn, &keys.schedule()).await,
        ["limited-stored"]
    );

    // Cancelled: dropped, in neither set.
    assert_eq!(
        defer(
            &client,
            &cancelled,
            "c-stored",
            "cancelled",
            Deferral::OverLimit
        )
        .await,
        Deferred::Cancelled
    );
    assert!(!exists(&mut conn, &processing).await);
    assert_eq!(
        zrange(&mut conn, &keys.schedule()).await,
        ["limited-stored"]
    );
    assert_eq!(zrange(&mut conn, &keys.retry()).await, ["unknown-stored"]);
    assert_eq!(
        hgetall(&mut conn, &keys.status("cancelled")).await["state"],
        "cancelled"
    );
}

async fn zadd(conn: &mut MultiplexedConnection, key: &str, score: f64, member: &str) {
    let _: i64 = cmd(conn, &["ZADD", key, &format!("{score:.6}"), member]).await;
}

#[tokio::test]
async fn promote_reports_what_left_the_set_and_when_the_next_is_due() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "promote_replies").await;

    // An empty set: nothing moved, nothing due.
    let reply = scripts::promote(&client, PromoteFrom::Schedule, 100, 0)
        .await
        .unwrap();
    assert_eq!(
        reply,
        Promoted {
            moved: 0,
            stuck: 0,
            next_due: None
        }
    );

    // Only a future member: stays, due in about an hour.
    let now = redis_time(&mut conn).await;
    let later = job("later");
    zadd(&mut conn, &keys.schedule(), now + 3_600.0, &later).await;
    let reply = scripts::promote(&client, PromoteFrom::Schedule, 100, 0)
        .await
        .unwrap();
    assert_eq!(reply.moved, 0);
    let wait = reply.next_due.unwrap();
    assert!(
        wait <= Duration::from_secs(3_600) && wait > Duration::from_secs(3_590),
        "{wait:?}"
    );
    assert!(!exists(&mut conn, &keys.queue("default")).await);

    // Due: a scheduled job, a cancelled one and a malformed one; all three leave the set.
    let (due, cancelled) = (job("due"), job("cancelled"));
    hset(
        &mut conn,
        &keys.status("due"),
        &["state", "scheduled", "rev", "1"],
    )
    .await;
    hset(
        &mut conn,
        &keys.status("cancelled"),
        &["state", "cancelled", "retention", "60"],
    )
    .await;
    zadd(&mut conn, &keys.schedule(), 1.0, &due).await;
    zadd(&mut conn, &keys.schedule(), 2.0, &cancelled).await;
    zadd(&mut conn, &keys.schedule(), 3.0, "not json").await;
    let reply = scripts::promote(&client, PromoteFrom::Schedule, 100, 0)
        .await
        .unwrap();
    assert_eq!(reply.moved, 3);
    assert!(reply.next_due.unwrap() > Duration::from_secs(3_590));
    assert_eq!(zrange(&mut conn, &keys.schedule()).await, [&*later]);
    // Only the live job is queued, with the enqueued_at promotion added.
    let queued = lrange(&mut conn, &keys.queue("default")).await;
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert!(queued[0].starts_with(r#"{"jid":"due","#), "{queued:?}");
    assert!(queued[0].contains(r#""enqueued_at":"#), "{queued:?}");
    assert_eq!(smembers(&mut conn, &keys.queues()).await, ["default"]);
    let record = hgetall(&mut conn, &keys.status("due")).await;
    assert_eq!(
        (record["state"].as_str(), record["rev"].as_str()),
        ("queued", "2")
    );
    assert_eq!(
        hgetall(&mut conn, &keys.status("cancelled")).await["state"],
        "cancelled"
    );
    // Dropped, the cancelled job's record takes the retention its cancel noted.
    let t = ttl(&mut conn, &keys.status("cancelled")).await;
    assert!((1..=60).contains(&t), "ttl {t}");
    // The malformed member is buried in the dead set, with its text.
    let dead = zrange(&mut conn, &keys.dead()).await;
    assert_eq!(dead.len(), 1);
    let buried: serde_json::Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(buried["class"], "queue::MalformedJob");
    assert_eq!(buried["raw"], "not json");

    // The retry set, with the clock moved two hours on: the "later" job is not in it.
    zadd(&mut conn, &keys.retry(), now + 3_600.0, &job("retry")).await;
    let reply = scripts::promote(&client, PromoteFrom::Retry, 100, 7_200_000)
        .await
        .unwrap();
    assert_eq!(
        reply,
        Promoted {
            moved: 1,
            stuck: 0,
            next_due: None
        }
    );
    assert_eq!(lrange(&mut conn, &keys.queue("default")).await.len(), 2);
    assert_eq!(zrange(&mut conn, &keys.schedule()).await, [&*later]);
}

#[tokio::test]
async fn promote_moves_past_keys_of_the_wrong_type_and_never_loses_a_job() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "promote_wrong_types").await;
    // A record of another type: the job moves, the key is left as it was.
    let planted = job("planted");
    let _: () = cmd(&mut conn, &["SET", &keys.status("planted"), "x"]).await;
    // A queue key of another type: its job stays in the set, and is reported stuck.
    let blocked = r#"{"jid":"blocked","class":"X","args":[],"queue":"jammed"}"#;
    let _: () = cmd(&mut conn, &["SET", &keys.queue("jammed"), "x"]).await;
    // The queues set of another type: jobs still reach their queues.
    let _: () = cmd(&mut conn, &["SET", &keys.queues(), "x"]).await;
    zadd(&mut conn, &keys.retry(), 1.0, &planted).await;
    zadd(&mut conn, &keys.retry(), 2.0, blocked).await;

    let reply = scripts::promote(&client, PromoteFrom::Retry, 100, 0)
        .await
        .unwrap();
    assert_eq!((reply.moved, reply.stuck), (1, 1));
    assert_eq!(reply.next_due, Some(Duration::ZERO));
    let queued = lrange(&mut conn, &keys.queue("default")).await;
    assert_eq!(queued.len(), 1);
    assert!(queued[0].starts_with(r#"{"jid":"planted","#), "{queued:?}");
    assert_eq!(zrange(&mut conn, &keys.retry()).await, [blocked]);
    let kept: String = cmd(&mut conn, &["GET", &keys.status("planted")]).await;
    assert_eq!(kept, "x");

    // Once the queue key is fixed, the stuck job moves.
    let _: i64 = cmd(&mut conn, &["DEL", &keys.queue("jammed")]).await;
    let reply = scripts::promote(&client, PromoteFrom::Retry, 100, 0)
        .await
        .unwrap();
    assert_eq!((reply.moved, reply.stuck), (1, 0));
    assert_eq!(lrange(&mut conn, &keys.queue("jammed")).await.len(), 1);
}

/// The identity whose jobs are reaped.
const REAPED: &str = "deadhost:2:nonce";

#[tokio::test]
async fn reap_claims_only_from_an_expired_process_for_a_live_caller() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "reap_replies").await;
    let theirs = keys.processing(REAPED);
    let ours = keys.processing(IDENTITY);
    let jobs = [job("a"), job("b"), job("c")];
    // LPUSH in order: "a" is the oldest, at the right end.
    lpush(&mut conn, &theirs, &[&jobs[0], &jobs[1], &jobs[2]]).await;
    let _: i64 = cmd(&mut conn, &["SADD", &keys.workers(), REAPED]).await;
    let _: i64 = cmd(&mut conn, &["SADD", &keys.processes(), REAPED]).await;
    hset(&mut conn, &keys.process(REAPED), &["busy", "3"]).await;
    hset(&mut conn, &keys.process_work(REAPED), &["x", "y"]).await;
    // Shorter than the caller's lease as set below, so that the renewal shows.
    let caller_ttl = Duration::from_secs(30);
    let reap = |batch| scripts::reap(&client, IDENTITY, REAPED, batch, caller_ttl);

    // LeaseLost: the caller has no lease; nothing moves, even though the process is dead.
    assert_eq!(reap(10).await.unwrap(), Reaped::LeaseLost);
    assert_eq!(lrange(&mut conn, &theirs).await.len(), 3);
    assert!(!exists(&mut conn, &keys.lease(IDENTITY)).await);

    // Alive: the reaped process still holds its lease.
    set_lease(&mut conn, &keys, IDENTITY).await;
    set_lease(&mut conn, &keys, REAPED).await;
    assert_eq!(reap(10).await.unwrap(), Reaped::Alive);
    assert_eq!(lrange(&mut conn, &theirs).await.len(), 3);
    assert!(!exists(&mut conn, &ours).await);

    // Alive: its lease key vanished early, but its record says the lease would still last
    // (it may still run its jobs until its next beat tells it otherwise).
    let _: i64 = cmd(&mut conn, &["DEL", &keys.lease(REAPED)]).await;
    let now_ms = (redis_time(&mut conn).await * 1000.0) as i64;
    let soon = (now_ms + 10_000).to_string();
    hset(&mut conn, &keys.process(REAPED), &["leased_until", &soon]).await;
    assert_eq!(reap(10).await.unwrap(), Reaped::Alive);
    // A value more than an hour ahead is no lease anyone took: it does not hold recovery up.
    let planted = (now_ms + 2 * 3_600_000).to_string();
    hset(
        &mut conn,
        &keys.process(REAPED),
        &["leased_until", &planted],
    )
    .await;

    // Claimed, part of the list: oldest first; the process is still known.
    let claimed = reap(2).await.unwrap();
    assert_eq!(
        claimed,
        Reaped::Claimed(vec![
            jobs[0].clone().into_bytes(),
            jobs[1].clone().into_bytes()
        ])
    );
    assert_eq!(lrange(&mut conn, &theirs).await, [&*jobs[2]]);
    assert_eq!(lrange(&mut conn, &ours).await, [&*jobs[1], &*jobs[0]]);
    assert_eq!(smembers(&mut conn, &keys.workers()).await, [REAPED]);
    assert!(exists(&mut conn, &keys.process(REAPED)).await);

    // Claimed, the rest: the list is empty, so the process is forgotten.
    let claimed = reap(2).await.unwrap();
    assert_eq!(claimed, Reaped::Claimed(vec![jobs[2].clone().into_bytes()]));
    assert!(!exists(&mut conn, &theirs).await);
    assert_eq!(
        lrange(&mut conn, &ours).await,
        [&*jobs[2], &*jobs[1], &*jobs[0]]
    );
    assert!(smembers(&mut conn, &keys.workers()).await.is_empty());
    assert!(smembers(&mut conn, &keys.processes()).await.is_empty());
    assert!(!exists(&mut conn, &keys.process(REAPED)).await);
    assert!(!exists(&mut conn, &keys.process_work(REAPED)).await);
    // Once forgotten, a further call claims nothing (and is harmless).
    assert_eq!(reap(2).await.unwrap(), Reaped::Claimed(vec![]));

    // The caller's own lease was renewed to the TTL asked for.
    let pttl: i64 = cmd(&mut conn, &["PTTL", &keys.lease(IDENTITY)]).await;
    assert!(
        (1..=caller_ttl.as_millis() as i64).contains(&pttl),
        "{pttl}"
    );
}

/// A beat of `identity` with a lease of `ttl`.
fn beat(identity: &str, mode: BeatMode, ttl: Duration) -> Heartbeat<'_> {
    Heartbeat {
        identity,
        mode,
        lease_ttl: ttl,
        info: r#"{"hostname":"host","pid":1}"#,
        busy: 2,
        quiet: false,
        rss_kib: 1_024,
        processed: 0,
        failed: 0,
    }
}

#[tokio::test]
async fn heartbeat_registers_renews_and_reports_a_lost_lease() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "heartbeat_replies").await;
    let lease = keys.lease(IDENTITY);
    let lease_ttl = Duration::from_secs(60);

    // Register a fresh identity: the lease and Sidekiq's process record appear.
    let reply = scripts::heartbeat(&client, &beat(IDENTITY, BeatMode::Register, lease_ttl))
        .await
        .unwrap();
    assert_eq!(reply, Beat::Alive(Vec::new()));
    let pttl: i64 = cmd(&mut conn, &["PTTL", &lease]).await;
    assert!((1..=60_000).contains(&pttl), "{pttl}");
    assert_eq!(smembers(&mut conn, &keys.workers()).await, [IDENTITY]);
    assert_eq!(smembers(&mut conn, &keys.processes()).await, [IDENTITY]);
    let record = hgetall(&mut conn, &keys.process(IDENTITY)).await;
    assert_eq!(record["busy"], "2");
    assert_eq!(record["quiet"], "false");
    assert_eq!(record["rss"], "1024");
    assert_eq!(record["info"], r#"{"hostname":"host","pid":1}"#);
    assert!((1..=60).contains(&ttl(&mut conn, &keys.process(IDENTITY)).await));

    // Register again while the lease lives: the identity is taken.
    let reply = scripts::heartbeat(&client, &beat(IDENTITY, BeatMode::Register, lease_ttl))
        .await
        .unwrap();
    assert_eq!(reply, Beat::LeaseLost);

    // Renew a live lease: alive.
    let reply = scripts::heartbeat(&client, &beat(IDENTITY, BeatMode::Renew, lease_ttl))
        .await
        .unwrap();
    assert_eq!(reply, Beat::Alive(Vec::new()));

    // Renew after the lease expired (deleted here): lost, and not revived.
    let _: i64 = cmd(&mut conn, &["DEL", &lease]).await;
    let reply = scripts::heartbeat(&client, &beat(IDENTITY, BeatMode::Renew, lease_ttl))
        .await
        .unwrap();
    assert_eq!(reply, Beat::LeaseLost);
    assert!(!exists(&mut conn, &lease).await);
}

#[tokio::test]
async fn signals_reach_the_process_on_its_next_beat() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "signal_replies").await;
    let lease_ttl = Duration::from_secs(60);
    // No such process: nothing is written.
    assert!(
        !scripts::signal(&client, IDENTITY, &Signal::Quiet)
            .await
            .unwrap()
    );
    assert!(!exists(&mut conn, &keys.signals(IDENTITY)).await);
    assert!(matches!(
        scripts::signal(&client, "", &Signal::Quiet).await,
        Err(queue_core::Error::InvalidIdentity)
    ));

    scripts::heartbeat(&client, &beat(IDENTITY, BeatMode::Register, lease_ttl))
        .await
        .unwrap();
    let mut wake = redis::Client::open(redis.url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    wake.subscribe(keys.wake_channel()).await.unwrap();
    assert!(
        scripts::signal(&client, IDENTITY, &Signal::Quiet)
            .await
            .unwrap()
    );
    assert!(
        scripts::signal(&client, IDENTITY, &Signal::Stop)
            .await
            .unwrap()
    );
    // Sidekiq's wire format: the list `<identity>-signals`, newest first, expiring.
    assert_eq!(
        lrange(&mut conn, &keys.signals(IDENTITY)).await,
        ["TERM", "TSTP"]
    );
    assert!((1..=60).contains(&ttl(&mut conn, &keys.signals(IDENTITY)).await));
    let notice: String = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        wake.on_message()
            .next()
            .await
            .unwrap()
            .get_payload()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(notice, format!("{}{IDENTITY}", scripts::SIGNAL_NOTICE));

    // The next beat takes them, oldest first, and leaves none behind.
    let reply = scripts::heartbeat(&client, &beat(IDENTITY, BeatMode::Renew, lease_ttl))
        .await
        .unwrap();
    assert_eq!(reply, Beat::Alive(vec![Signal::Quiet, Signal::Stop]));
    assert!(!exists(&mut conn, &keys.signals(IDENTITY)).await);
    let reply = scripts::heartbeat(&client, &beat(IDENTITY, BeatMode::Renew, lease_ttl))
        .await
        .unwrap();
    assert_eq!(reply, Beat::Alive(Vec::new()));

    // A signals key of another type: refused by signal.lua, ignored by the beat.
    let _: () = cmd(&mut conn, &["SET", &keys.signals(IDENTITY), "x"]).await;
    assert!(matches!(
        scripts::signal(&client, IDENTITY, &Signal::Quiet).await,
        Err(queue_core::Error::WrongType { .. })
    ));
    let reply = scripts::heartbeat(&client, &beat(IDENTITY, BeatMode::Renew, lease_ttl))
        .await
        .unwrap();
    assert_eq!(reply, Beat::Alive(Vec::new()));
}

// heartbeat.lua used to run PEXPIRE before `SET NX`, so a Register
// that is refused still renews the live holder's lease to the caller's TTL (longer or
// shorter). Identities carry a nonce, so a clash is rare, but "register" should not touch a
// lease it does not get.
#[tokio::test]
async fn refused_register_leaves_the_live_lease_alone() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "refused_register").await;
    set_lease(&mut conn, &keys, IDENTITY).await;
    let short = beat(IDENTITY, BeatMode::Register, Duration::from_secs(5));
    let reply = scripts::heartbeat(&client, &short).await.unwrap();
    assert_eq!(reply, Beat::LeaseLost);
    let pttl: i64 = cmd(&mut conn, &["PTTL", &keys.lease(IDENTITY)]).await;
    assert!(
        pttl > 5_000,
        "the refused register shortened the lease to {pttl} ms"
    );
}

#[tokio::test]
async fn unregister_forgets_the_process_and_counts_what_it_left() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "unregister_replies").await;
    let register = async |identity| {
        let beat = beat(identity, BeatMode::Register, Duration::from_secs(60));
        scripts::heartbeat(&client, &beat).await.unwrap()
    };
    // One process leaves two jobs behind; another leaves none.
    const CLEAN: &str = "host:3:nonce";
    assert_eq!(register(IDENTITY).await, Beat::Alive(Vec::new()));
    assert_eq!(register(CLEAN).await, Beat::Alive(Vec::new()));
    lpush(
        &mut conn,
        &keys.processing(IDENTITY),
        &[&job("a"), &job("b")],
    )
    .await;
    hset(&mut conn, &keys.process_work(IDENTITY), &["x", "y"]).await;

    assert_eq!(scripts::unregister(&client, IDENTITY).await.unwrap(), 2);
    assert!(!exists(&mut conn, &keys.lease(IDENTITY)).await);
    assert!(!exists(&mut conn, &keys.process(IDENTITY)).await);
    assert!(!exists(&mut conn, &keys.process_work(IDENTITY)).await);
    assert_eq!(smembers(&mut conn, &keys.processes()).await, [CLEAN]);
    // Its jobs stay, and it stays in the workers set, so that a reaper finds them.
    assert_eq!(lrange(&mut conn, &keys.processing(IDENTITY)).await.len(), 2);
    assert_eq!(
        smembers(&mut conn, &keys.workers()).await,
        [IDENTITY, CLEAN]
    );

    assert_eq!(scripts::unregister(&client, CLEAN).await.unwrap(), 0);
    assert!(!exists(&mut conn, &keys.lease(CLEAN)).await);
    assert_eq!(smembers(&mut conn, &keys.workers()).await, [IDENTITY]);
    assert!(smembers(&mut conn, &keys.processes()).await.is_empty());
}

#[tokio::test]
async fn start_marks_jobs_running_and_reports_cancelled_ones() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "start_replies").await;
    hset(
        &mut conn,
        &keys.status("queued"),
        &["state", "queued", "message", "old", "rev", "3"],
    )
    .await;
    hset(
        &mut conn,
        &keys.status("cancelled"),
        &["state", "cancelled"],
    )
    .await;
    let cancelled_before = hgetall(&mut conn, &keys.status("cancelled")).await;
    // A key of another type where a record belongs.
    let _: () = cmd(&mut conn, &["SET", &keys.status("planted"), "x"]).await;
    let start = |jid, attempt, tracked| StartJob {
        jid,
        attempt,
        queue: "q",
        class: "K",
        tracked,
    };

    let reply = scripts::start(
        &client,
        &[
            start("queued", 2, false),
            start("cancelled", 1, true),
            start("fresh", 1, true),
            start("untracked", 1, false),
            start("planted", 1, true),
        ],
        Timestamp::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        reply,
        [
            Started::Running,
            Started::Cancelled,
            Started::Running,
            Started::NoRecord,
            Started::NoRecord
        ]
    );
    // Nothing made for the untracked job; the planted key is left as it was.
    assert!(!exists(&mut conn, &keys.status("untracked")).await);
    let planted: String = cmd(&mut conn, &["GET", &keys.status("planted")]).await;
    assert_eq!(planted, "x");

    let record = hgetall(&mut conn, &keys.status("queued")).await;
    assert_eq!(record["state"], "running");
    assert_eq!(record["attempt"], "2");
    assert_eq!(record["progress"], "0");
    assert_eq!(record["rev"], "4");
    assert!(record.contains_key("started_at"));
    assert!(!record.contains_key("message"), "{record:?}");
    // A job pushed without a record gets one, running.
    let record = hgetall(&mut conn, &keys.status("fresh")).await;
    assert_eq!(
        (
            record["state"].as_str(),
            record["queue"].as_str(),
            record["class"].as_str(),
            record["rev"].as_str()
        ),
        ("running", "q", "K", "1")
    );
    let t = ttl(&mut conn, &keys.status("fresh")).await;
    assert!(t > FINISHED_TTL as i64 && t <= ACTIVE_TTL as i64, "ttl {t}");
    assert_eq!(
        hgetall(&mut conn, &keys.status("cancelled")).await,
        cancelled_before
    );

    // No jobs: no call, no answers.
    assert!(
        scripts::start(&client, &[], Timestamp::now())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn progress_is_recorded_only_while_running() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "progress_replies").await;
    hset(
        &mut conn,
        &keys.status("run"),
        &["state", "running", "rev", "2"],
    )
    .await;
    hset(
        &mut conn,
        &keys.status("done"),
        &["state", "succeeded", "rev", "5"],
    )
    .await;

    let reply = scripts::progress(&client, "run", 40, "halfway")
        .await
        .unwrap();
    assert_eq!(reply, ProgressRecorded::Recorded);
    let record = hgetall(&mut conn, &keys.status("run")).await;
    assert_eq!(
        (
            record["progress"].as_str(),
            record["message"].as_str(),
            record["rev"].as_str()
        ),
        ("40", "halfway", "3")
    );
    // Above 100 is clamped; an empty message keeps the last one.
    let reply = scripts::progress(&client, "run", 250, "").await.unwrap();
    assert_eq!(reply, ProgressRecorded::Recorded);
    let record = hgetall(&mut conn, &keys.status("run")).await;
    assert_eq!(
        (
            record["progress"].as_str(),
            record["message"].as_str(),
            record["rev"].as_str()
        ),
        ("100", "halfway", "4")
    );

    // Finished, and no record at all: nothing written, nothing created.
    let done_before = hgetall(&mut conn, &keys.status("done")).await;
    let reply = scripts::progress(&client, "done", 50, "late")
        .await
        .unwrap();
    assert_eq!(reply, ProgressRecorded::NotRunning);
    assert_eq!(hgetall(&mut conn, &keys.status("done")).await, done_before);
    let reply = scripts::progress(&client, "none", 50, "late")
        .await
        .unwrap();
    assert_eq!(reply, ProgressRecorded::NotRunning);
    assert!(!exists(&mut conn, &keys.status("none")).await);
}

#[tokio::test]
async fn limit_slots_fill_up_and_free_on_release() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "limit_replies").await;
    let lifetime = Duration::from_secs(60);
    let acquire = |holder| scripts::limit_acquire(&client, "K", holder, 2, lifetime);
    let slots = keys.concurrency("K");

    assert_eq!(acquire("p:a").await.unwrap(), Slot::Taken);
    assert_eq!(acquire("p:b").await.unwrap(), Slot::Taken);
    assert_eq!(acquire("p:c").await.unwrap(), Slot::Full);
    // A holder that has a slot keeps it (no second slot taken).
    assert_eq!(acquire("p:a").await.unwrap(), Slot::Taken);
    assert_eq!(zrange(&mut conn, &slots).await, ["p:a", "p:b"]);
    // Each slot expires `lifetime` after Redis's clock (epoch ms).
    let now_ms = redis_time(&mut conn).await * 1000.0;
    let expiry = zscore(&mut conn, &slots, "p:b").await.unwrap();
    assert!(
        expiry > now_ms + 59_000.0 && expiry <= now_ms + 60_000.0,
        "{expiry} {now_ms}"
    );

    scripts::limit_release(&client, "K", "p:a").await.unwrap();
    assert_eq!(zrange(&mut conn, &slots).await, ["p:b"]);
    assert_eq!(acquire("p:c").await.unwrap(), Slot::Taken);
    assert_eq!(acquire("p:d").await.unwrap(), Slot::Full);
    let mut held = zrange(&mut conn, &slots).await;
    held.sort();
    assert_eq!(held, ["p:b", "p:c"]);
}

#[tokio::test]
async fn cancel_skips_a_waiting_job_and_tells_the_holder_of_a_running_one() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "cancel_replies").await;
    hset(&mut conn, &keys.status("queued"), &["state", "queued"]).await;
    hset(
        &mut conn,
        &keys.status("running"),
        &["state", "running", "rev", "3"],
    )
    .await;
    let mut wake = redis::Client::open(redis.url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    wake.subscribe(keys.wake_channel()).await.unwrap();

    assert_eq!(
        scripts::cancel(&client, "queued").await.unwrap(),
        Cancelled::Cancelled
    );
    let record = hgetall(&mut conn, &keys.status("queued")).await;
    assert_eq!(
        (record["state"].as_str(), record["rev"].as_str()),
        ("cancelled", "2")
    );
    assert!(record.contains_key("finished_at"));
    // It lasts while the job waits; the drop of the job applies the retention noted here.
    assert_eq!(ttl(&mut conn, &keys.status("queued")).await, -1);
    assert_eq!(record["retention"], FINISHED_TTL.to_string());

    // Running: the record says cancelled at once (so the job never runs again, whichever way
    // it leaves its worker), and every worker hears which job to stop.
    assert_eq!(
        scripts::cancel(&client, "running").await.unwrap(),
        Cancelled::Stopping
    );
    let running = hgetall(&mut conn, &keys.status("running")).await;
    assert_eq!(
        (running["state"].as_str(), running["rev"].as_str()),
        ("cancelled", "4")
    );
    assert_eq!(ttl(&mut conn, &keys.status("running")).await, -1);
    let notice: String = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        use futures_util::StreamExt;
        wake.on_message()
            .next()
            .await
            .unwrap()
            .get_payload()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(notice, format!("{}running", scripts::CANCEL_NOTICE));

    // Already cancelled, or no record: too late, nothing changed or created.
    assert_eq!(
        scripts::cancel(&client, "queued").await.unwrap(),
        Cancelled::TooLate
    );
    assert_eq!(hgetall(&mut conn, &keys.status("queued")).await, record);
    assert_eq!(
        scripts::cancel(&client, "running").await.unwrap(),
        Cancelled::TooLate
    );
    assert_eq!(
        scripts::cancel(&client, "none").await.unwrap(),
        Cancelled::TooLate
    );
    assert!(!exists(&mut conn, &keys.status("none")).await);
}

// A minute-counters hash whose fields are not integers (planted, or counted to the top of
// i64) made HINCRBY raise inside heartbeat.lua: the beat failed after renewing the lease, so
// the worker counted it as not renewed (and fenced itself), never popped its signals, and
// gave the counts back to fail again on every beat for the rest of that minute.
#[tokio::test]
async fn a_damaged_minute_counter_does_not_fail_the_beat() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "damaged_minute_counter").await;
    let lease_ttl = Duration::from_secs(60);
    scripts::heartbeat(&client, &beat(IDENTITY, BeatMode::Register, lease_ttl))
        .await
        .unwrap();
    // The beat names the minute by this host's clock: plant this one and the next, so the
    // beat below lands on a damaged counter even across a minute boundary.
    let minute = Timestamp::now().as_secs_f64() as u64 / 60;
    for (m, processed, failed) in [
        (minute, "not a number", "1.5"),
        (minute + 1, "9223372036854775807", "9223372036854775807"),
    ] {
        let key = keys.stat_minute(m);
        let _: i64 = cmd(
            &mut conn,
            &["HSET", &key, "processed", processed, "failed", failed],
        )
        .await;
    }
    assert!(
        scripts::signal(&client, IDENTITY, &Signal::Quiet)
            .await
            .unwrap()
    );
    let counted = Heartbeat {
        processed: 3,
        failed: 1,
        ..beat(IDENTITY, BeatMode::Renew, lease_ttl)
    };
    let reply = scripts::heartbeat(&client, &counted).await.unwrap();
    assert_eq!(reply, Beat::Alive(vec![Signal::Quiet]));
    // The damaged counters are left as they were.
    let planted = hgetall(&mut conn, &keys.stat_minute(minute)).await;
    assert_eq!(planted["processed"], "not a number");
    let planted = hgetall(&mut conn, &keys.stat_minute(minute + 1)).await;
    assert_eq!(planted["failed"], "9223372036854775807");
}
