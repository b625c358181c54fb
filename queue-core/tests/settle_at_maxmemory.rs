//! At `maxmemory` with `noeviction`: the scripts that move a job out of a processing list
//! still run (draining is what frees memory), and put the job where it belongs; the ones
//! that only add are refused whole, writing nothing.
//!
//! Redis refuses a script whose first write may grow memory, and lets one finish once it
//! has written. The settle scripts write their destination before they remove the job from
//! the processing list, so without a first write Redis allows at maxmemory (`LTRIM 0 -1`)
//! they would be refused here.

mod common;

use common::{cmd, fill_to_out_of_memory, hgetall, lpush, lrange, raw};
use queue_core::scripts::{
    self, Cancelled, Deferral, Deferred, FailTo, Failed, FailedAttempt, ProgressRecorded, Reaped,
    Requeue, Requeued,
};
use queue_core::testing::TestRedis;
use queue_core::{Client, Error};
use std::time::Duration;

/// The pretend worker process that holds the jobs.
const IDENTITY: &str = "host:1:nonce";
/// A dead process whose job is recovered.
const REAPED: &str = "host:2:gone";

fn job(jid: &str) -> String {
    format!(r#"{{"jid":"{jid}","class":"X","args":[],"queue":"default"}}"#)
}

fn attempt<'a>(raw: &'a str, jid: &'a str, to: FailTo) -> FailedAttempt<'a> {
    FailedAttempt {
        identity: IDENTITY,
        raw: raw.as_bytes(),
        rewritten: raw,
        jid,
        to,
        tracked: true,
        error: "RuntimeError: boom",
        clock_offset_ms: 0,
        dead_max_jobs: 10,
        dead_max_age: Duration::from_secs(3_600),
    }
}

async fn zrange(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    cmd(conn, &["ZRANGE", key, "0", "-1"]).await
}

#[tokio::test]
async fn settle_scripts_drain_at_maxmemory_and_adding_ones_write_nothing() {
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("settle_at_maxmemory"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let processing = keys.processing(IDENTITY);
    let jobs = ["retry", "dead", "requeue", "defer"].map(job);
    lpush(&mut conn, &processing, &jobs).await;
    for jid in ["retry", "dead", "requeue", "defer", "progress"] {
        let _: i64 = cmd(
            &mut conn,
            &["HSET", &keys.status(jid), "state", "running", "rev", "2"],
        )
        .await;
    }
    let _: i64 = cmd(
        &mut conn,
        &["HSET", &keys.status("queued"), "state", "queued"],
    )
    .await;
    lpush(&mut conn, &keys.processing(REAPED), &[job("reaped")]).await;
    let _: i64 = cmd(&mut conn, &["SADD", &keys.workers(), REAPED]).await;
    let _: () = cmd(
        &mut conn,
        &["SET", &keys.lease(IDENTITY), "1", "PX", "600000"],
    )
    .await;

    let _: () = cmd(
        &mut conn,
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
    )
    .await;
    let _: () = cmd(&mut conn, &["CONFIG", "SET", "maxmemory", "4mb"]).await;
    fill_to_out_of_memory(&mut conn, keys.prefix()).await;

    // Adding scripts: refused whole.
    let err = scripts::cancel(&client, "queued").await.unwrap_err();
    assert!(matches!(err, Error::OutOfMemory(_)), "{err:?}");
    assert_eq!(
        hgetall(&mut conn, &keys.status("queued")).await["state"],
        "queued"
    );
    let err = scripts::progress(&client, "progress", 50, "half")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutOfMemory(_)), "{err:?}");
    assert!(
        !hgetall(&mut conn, &keys.status("progress"))
            .await
            .contains_key("progress")
    );

    // Settle scripts: each job reaches its destination and leaves the processing list.
    let delay = Duration::from_secs(60);
    let reply = scripts::fail(
        &client,
        &attempt(&jobs[0], "retry", FailTo::Retry { delay }),
    )
    .await
    .unwrap();
    assert_eq!(reply, Failed::Retrying);
    assert_eq!(zrange(&mut conn, &keys.retry()).await, [&*jobs[0]]);
    let reply = scripts::fail(&client, &attempt(&jobs[1], "dead", FailTo::Dead))
        .await
        .unwrap();
    assert_eq!(reply, Failed::Dead);
    assert_eq!(zrange(&mut conn, &keys.dead()).await, [&*jobs[1]]);
    let reply = scripts::requeue(
        &client,
        &Requeue {
            identity: IDENTITY,
            raw: jobs[2].as_bytes(),
            pushed: jobs[2].as_bytes(),
            queue: "default",
            jid: "requeue",
            tracked: true,
        },
    )
    .await
    .unwrap();
    assert_eq!(reply, Requeued::Queued);
    assert_eq!(lrange(&mut conn, &keys.queue("default")).await, [&*jobs[2]]);
    let reply = scripts::defer(
        &client,
        IDENTITY,
        jobs[3].as_bytes(),
        &jobs[3],
        "defer",
        Duration::from_millis(500),
        Deferral::OverLimit,
    )
    .await
    .unwrap();
    assert_eq!(reply, Deferred::Later);
    assert_eq!(zrange(&mut conn, &keys.schedule()).await, [&*jobs[3]]);
    assert!(lrange(&mut conn, &processing).await.is_empty());
    for (jid, state) in [
        ("retry", "retrying"),
        ("dead", "dead"),
        ("requeue", "queued"),
        ("defer", "scheduled"),
    ] {
        let record = hgetall(&mut conn, &keys.status(jid)).await;
        assert_eq!(
            (record["state"].as_str(), record["rev"].as_str()),
            (state, "3"),
            "{jid}"
        );
    }
    let reply = scripts::reap(&client, IDENTITY, REAPED, 100, Duration::from_secs(15))
        .await
        .unwrap();
    assert_eq!(reply, Reaped::Claimed(vec![job("reaped").into_bytes()]));
    assert_eq!(lrange(&mut conn, &processing).await, [job("reaped")]);

    // Released: the adding scripts work again.
    let _: () = cmd(&mut conn, &["CONFIG", "SET", "maxmemory", "0"]).await;
    assert_eq!(
        scripts::cancel(&client, "queued").await.unwrap(),
        Cancelled::Cancelled
    );
    assert_eq!(
        scripts::progress(&client, "progress", 50, "half")
            .await
            .unwrap(),
        ProgressRecorded::Recorded
    );
}
