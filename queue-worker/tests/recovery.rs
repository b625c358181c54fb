//! A live worker never strands a job: entries it took but does not hold go back; when Redis
//! is full it keeps draining; its shutdown stays bounded when Redis hangs.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, JobState};
use queue_worker::{Failure, JobContext, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Quick(u32);
impl Job for Quick {
    const NAME: &'static str = "Quick";
}

fn start(
    client: &queue_core::Client,
    tweak: impl FnOnce(&mut queue_worker::WorkerConfig),
) -> queue_worker::RunningWorker {
    let mut config = fast_config();
    tweak(&mut config);
    Worker::builder()
        .config(config)
        .register(|q: Quick, _: JobContext| async move { Ok::<_, Failure>(q.0) })
        .build(client.clone())
        .unwrap()
        .start()
}

#[tokio::test]
async fn a_job_taken_but_never_seen_is_handed_back_by_the_audit() {
    let redis = TestRedis::start();
    let client = client(&redis, "audit").await;
    let w = start(&client, |_| {});
    // Park the job where only a lost fetch reply would leave it: in this worker's
    // processing list, unknown to the worker.
    let id = client
        .enqueue_in(&Quick(5), Duration::from_secs(3600))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;
    let raw_job: Vec<String> = conn.zrange(client.keys().schedule(), 0, 0).await.unwrap();
    let _: () = conn
        .zrem(client.keys().schedule(), &raw_job[0])
        .await
        .unwrap();
    let _: () = conn
        .lpush(client.keys().processing(&w.identity()), &raw_job[0])
        .await
        .unwrap();
    wait_for_state(&client, &id, JobState::Succeeded).await;
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().result,
        Some(serde_json::json!(5))
    );
    w.shutdown().await.unwrap();
}

/// A dead process whose processing list is not a list (a name collision, a hand-edited key)
/// makes its own reap fail, but the reaper still recovers every other dead process's jobs
/// (it used to end the whole pass at the first failing identity, every pass).
#[tokio::test]
async fn one_broken_dead_process_does_not_stop_the_reaping_of_the_others() {
    let redis = TestRedis::start();
    let client = client(&redis, "broken_dead").await;
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let broken = "broken:1:dead";
    let _: () = conn.sadd(keys.workers(), broken).await.unwrap();
    let _: () = conn
        .hset(keys.processing(broken), "not", "a list")
        .await
        .unwrap();
    // Many dead processes, so that the broken one is not last in the set's order by chance.
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = client
            .enqueue_in(&Quick(i), Duration::from_secs(3600))
            .await
            .unwrap();
        let raw_job: Vec<String> = conn.zrange(keys.schedule(), 0, 0).await.unwrap();
        let _: () = conn.zrem(keys.schedule(), &raw_job[0]).await.unwrap();
        let dead = format!("dead:{i}:gone");
        let _: () = conn.sadd(keys.workers(), &dead).await.unwrap();
        let _: () = conn
            .lpush(keys.processing(&dead), &raw_job[0])
            .await
            .unwrap();
        ids.push(id);
    }
    let w = start(&client, |_| {});
    for id in &ids {
        wait_for_state(&client, id, JobState::Succeeded).await;
    }
    // The broken one is left as it was, for a person to look at.
    let kind: String = redis::cmd("TYPE")
        .arg(keys.processing(broken))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(kind, "hash");
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_worker_keeps_draining_when_redis_is_out_of_memory() {
    let redis =
        TestRedis::start_with_args(&["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"]);
    let client = client(&redis, "oom").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(client.enqueue(&Quick(i)).await.unwrap());
    }
    let mut conn = raw(&redis).await;
    fill_to_maxmemory(&mut conn).await;
    assert!(matches!(
        client.enqueue(&Quick(99)).await,
        Err(queue_core::Error::OutOfMemory(_))
    ));
    let w = start(&client, |_| {});
    wait_for_size(
        &conn,
        &client.keys().queue("default"),
        0,
        "the queue to drain",
        Duration::from_secs(15),
    )
    .await;
    // The queue empties at the fetch; the acks follow in later round trips.
    wait_for(
        "acks to land even at maxmemory",
        Duration::from_secs(15),
        || {
            let mut conn = conn.clone();
            let key = client.keys().stat_processed();
            async move {
                let processed: Option<i64> = conn.get(key).await.unwrap();
                (processed == Some(20)).then_some(())
            }
        },
    )
    .await;
    w.shutdown().await.unwrap();
}

/// A process that stalled past its lease and came back did not die: the jobs reaped from
/// it are not counted toward burial, while those of a process that is gone are. (Every
/// recovery used to count, so a healthy long job was buried after three Redis stalls.)
#[tokio::test]
async fn a_recovery_from_a_process_that_came_back_does_not_count_toward_burial() {
    let redis = TestRedis::start();
    let client = client(&redis, "stalled_not_dead").await;
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    // Process `stalled` lost identity 0 to a stall and lives on as identity 1; process
    // `gone` died with its identity 0.
    let _: () = conn
        .sadd(
            keys.workers(),
            &["h:1:stalled:0", "h:1:stalled:1", "h:2:gone:0"],
        )
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(keys.lease("h:1:stalled:1"))
        .arg("1")
        .arg("PX")
        .arg(600_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Each job has already been recovered three times (the default limit) from its process.
    for (jid, process, identity) in [
        ("from_stalled", "h:1:stalled", "h:1:stalled:0"),
        ("from_gone", "h:2:gone", "h:2:gone:0"),
    ] {
        let job = format!(
            r#"{{"jid":"{jid}","class":"Quick","args":[1],"queue":"default","recovered":3,"recovered_from":["{process}","{process}","{process}"]}}"#
        );
        let _: () = conn
            .hset_multiple(
                keys.status(jid),
                &[("state", "running"), ("queue", "default")],
            )
            .await
            .unwrap();
        let _: () = conn.lpush(keys.processing(identity), job).await.unwrap();
    }
    let w = start(&client, |_| {});
    let stalled = queue_core::JobId::parse("from_stalled").unwrap();
    let gone = queue_core::JobId::parse("from_gone").unwrap();
    wait_for_state(&client, &stalled, JobState::Succeeded).await;
    wait_for_state(&client, &gone, JobState::Dead).await;
    w.shutdown().await.unwrap();
}

/// At maxmemory a worker still learns which jobs were cancelled: it skips them and runs the
/// rest, including one pushed by another client without a status record. (It used to run
/// every job of the batch, cancelled ones too, when marking them running was refused.)
#[tokio::test]
async fn at_maxmemory_a_cancelled_job_is_still_skipped() {
    let redis =
        TestRedis::start_with_args(&["--maxmemory", "3mb", "--maxmemory-policy", "noeviction"]);
    let client = client(&redis, "oom_cancel").await;
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    // Another client's job, of a type that keeps status, pushed without a record; first in
    // the batch, so that creating its record is the script's first write.
    let foreign = r#"{"class":"Quick","args":[3],"jid":"foreign1","queue":"default"}"#;
    let _: () = conn.lpush(keys.queue("default"), foreign).await.unwrap();
    let cancelled = client.enqueue(&Quick(1)).await.unwrap();
    let plain = client.enqueue(&Quick(2)).await.unwrap();
    assert!(client.cancel(&cancelled).await.unwrap());
    fill_to_maxmemory(&mut conn).await;

    let ran = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = ran.clone();
    let w = Worker::builder()
        .config(fast_config())
        .register(move |q: Quick, _: JobContext| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(q.0);
                Ok::<_, Failure>(q.0)
            }
        })
        .build(client.clone())
        .unwrap()
        .start();
    wait_for_state(&client, &plain, JobState::Succeeded).await;
    let foreign_id = queue_core::JobId::parse("foreign1").unwrap();
    wait_for_state(&client, &foreign_id, JobState::Succeeded).await;
    wait_for_size(
        &conn,
        &keys.queue("default"),
        0,
        "the queue to drain",
        Duration::from_secs(15),
    )
    .await;
    w.shutdown().await.unwrap();
    let mut ran = ran.lock().unwrap().clone();
    ran.sort();
    assert_eq!(ran, [2, 3], "the cancelled job ran, or another did not");
    assert_eq!(
        client.status(&cancelled).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
}

/// Fills Redis until it refuses writes, then stays well over the limit: client buffers freed
/// after the refusal could let usage dip back under it.
async fn fill_to_maxmemory(conn: &mut redis::aio::MultiplexedConnection) {
    let blob = "x".repeat(64 * 1024);
    let mut i = 0;
    loop {
        let r: redis::RedisResult<()> = conn.set(format!("filler:{i}"), &blob).await;
        if r.is_err() {
            break;
        }
        i += 1;
        assert!(i < 10_000, "never ran out of memory");
    }
    // A script flagged allow-oom may still write.
    let _: () = redis::cmd("EVAL")
        .arg("#!lua flags=allow-oom\nredis.call('SET', KEYS[1], ARGV[1])")
        .arg(1)
        .arg("filler:top")
        .arg("y".repeat(1 << 20))
        .query_async(conn)
        .await
        .unwrap();
}

#[tokio::test]
async fn shutdown_stays_bounded_when_redis_hangs() {
    // Freezes its server (SIGSTOP).
    let redis = TestRedis::start_private();
    let client = client(&redis, "hung").await;
    let w = start(&client, |c| c.shutdown_timeout = Duration::from_secs(1));
    let id = client.enqueue(&Quick(1)).await.unwrap();
    wait_for_state(&client, &id, JobState::Succeeded).await;
    let pid = redis.pid().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(20), w.shutdown()).await;
    let took = started.elapsed();
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(outcome.is_ok(), "shutdown hung");
    // shutdown_timeout (1 s) + the documented slack (4 s), with a margin for a loaded machine.
    assert!(took < Duration::from_secs(7), "shutdown took {took:?}");
}

/// A job that keeps killing its worker is buried by the reaper; a death releases every
/// unique lifetime, so its key goes too (it used to last until its TTL, answering equal
/// enqueues with the dead job's id).
#[tokio::test]
async fn a_unique_job_buried_by_the_reaper_gives_its_key_back() {
    let redis = TestRedis::start();
    let client = client(&redis, "buried_unique").await;
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let _: () = conn.sadd(keys.workers(), "h:2:gone:0").await.unwrap();
    let job = r#"{"jid":"poison","class":"Quick","args":[1],"queue":"default","recovered":3,"recovered_from":["h:2:gone","h:2:gone","h:2:gone"],"unique_key":"poison-key","unique_until":"succeeded"}"#;
    let _: () = conn
        .hset_multiple(
            keys.status("poison"),
            &[("state", "running"), ("queue", "default")],
        )
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(keys.unique("poison-key"))
        .arg("poison")
        .arg("PX")
        .arg(3_600_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = conn
        .lpush(keys.processing("h:2:gone:0"), job)
        .await
        .unwrap();
    let w = start(&client, |_| {});
    let poison = queue_core::JobId::parse("poison").unwrap();
    wait_for_state(&client, &poison, JobState::Dead).await;
    wait_for(
        "the buried job's unique key to go",
        Duration::from_secs(10),
        || {
            let mut conn = conn.clone();
            let key = keys.unique("poison-key");
            async move {
                let held: bool = conn.exists(key).await.unwrap();
                (!held).then_some(())
            }
        },
    )
    .await;
    w.shutdown().await.unwrap();
}
