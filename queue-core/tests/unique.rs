//! Unique jobs: the lock taken with the push, duplicates answered with the holder's id, and
//! the raw Redis state for immediate, scheduled and bulk enqueues.

use queue_core::scripts::unique_release;
use queue_core::testing::TestRedis;
use queue_core::{Client, EnqueueOptions, Job, JobId, NewJob, Unique};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Serialize, Deserialize)]
struct Nightly {
    day: u32,
}
impl Job for Nightly {
    const NAME: &'static str = "Nightly";
    const UNIQUE: Option<Unique> = Some(Unique::until_succeeded(Duration::from_secs(600)));
}

async fn raw(redis: &TestRedis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn two_racing_enqueuers_get_the_same_id_across_1000_races() {
    let redis = TestRedis::start();
    let config = redis.config("unique_races");
    // Two clients, two connections: the races are decided by Redis, not by one connection's order.
    let a = Client::connect(config.clone()).await.unwrap();
    let b = Client::connect(config).await.unwrap();
    let once = Unique::until_succeeded(Duration::from_secs(60));
    for i in 0..1000 {
        let key = format!("race:{i}");
        let job = || NewJob {
            options: EnqueueOptions::new().unique_by(key.clone(), once),
            ..NewJob::new("Race", vec![serde_json::json!(i)])
        };
        let (x, y) = tokio::join!(a.push(job()), b.push(job()));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x, y, "race {i}: both enqueuers report the one job");
    }
    let mut conn = raw(&redis).await;
    let queued: usize = conn.llen(a.keys().queue("default")).await.unwrap();
    assert_eq!(queued, 1000, "exactly one job pushed per key");
}

#[tokio::test]
async fn a_duplicate_returns_the_holders_id_until_cancel_releases_the_key() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("unique_dup")).await.unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    let first = client.enqueue(&Nightly { day: 1 }).await.unwrap();
    let again = client.enqueue(&Nightly { day: 1 }).await.unwrap();
    assert_eq!(
        again, first,
        "the duplicate points at the first job's status"
    );
    let other_day = client.enqueue(&Nightly { day: 2 }).await.unwrap();
    assert_ne!(other_day, first, "other arguments, other key");
    let queued: usize = conn.llen(keys.queue("default")).await.unwrap();
    assert_eq!(queued, 2);

    // The job carries its key and lifetime; the lock names the job and has the TTL.
    let entries: Vec<String> = conn.lrange(keys.queue("default"), 0, -1).await.unwrap();
    let job: serde_json::Value = serde_json::from_str(&entries[1]).unwrap();
    let key = job["unique_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("Nightly:"), "{key}");
    assert_eq!(job["unique_until"], "success");
    let holder: String = conn.get(keys.unique(&key)).await.unwrap();
    assert_eq!(holder, first.as_str());
    let ttl: i64 = conn.pttl(keys.unique(&key)).await.unwrap();
    assert!((590_000..=600_000).contains(&ttl), "lock ttl {ttl} ms");
    let recorded: String = conn
        .hget(keys.status(first.as_str()), "unique")
        .await
        .unwrap();
    assert_eq!(recorded, key);

    assert!(client.cancel(&first).await.unwrap());
    let exists: bool = conn.exists(keys.unique(&key)).await.unwrap();
    assert!(!exists, "cancel releases the key");
    let fresh = client.enqueue(&Nightly { day: 1 }).await.unwrap();
    assert_ne!(fresh, first, "a new job once the key is free");
}

#[tokio::test]
async fn a_scheduled_unique_job_holds_its_key_for_its_delay_plus_the_ttl() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("unique_sched")).await.unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let opts = || {
        EnqueueOptions::new()
            .delay(Duration::from_secs(3600))
            .unique_by("sched:1", Unique::until_started(Duration::from_secs(60)))
    };
    let first = client
        .enqueue_with(&Nightly { day: 9 }, opts())
        .await
        .unwrap();
    let again = client
        .enqueue_with(&Nightly { day: 9 }, opts())
        .await
        .unwrap();
    assert_eq!(first, again);
    let scheduled: usize = conn.zcard(keys.schedule()).await.unwrap();
    assert_eq!(scheduled, 1);
    let ttl: i64 = conn.pttl(keys.unique("sched:1")).await.unwrap();
    assert!(
        (3_659_000..=3_660_000).contains(&ttl),
        "lock ttl {ttl} ms = delay + ttl"
    );
}

#[tokio::test]
async fn bulk_unique_jobs_report_the_holder_and_push_each_key_once() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("unique_bulk")).await.unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let held = client.enqueue(&Nightly { day: 3 }).await.unwrap();
    let ids = client
        .enqueue_bulk(&[Nightly { day: 3 }, Nightly { day: 4 }, Nightly { day: 4 }])
        .await
        .unwrap();
    assert_eq!(ids[0], held);
    assert_eq!(ids[1], ids[2], "a duplicate inside the batch too");
    assert_ne!(ids[1], held);
    let queued: usize = conn.llen(keys.queue("default")).await.unwrap();
    assert_eq!(queued, 2);
}

#[tokio::test]
async fn release_deletes_the_key_only_for_its_holder() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("unique_release"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let holder = JobId::new();
    let () = conn.set(keys.unique("k"), holder.as_str()).await.unwrap();
    assert!(!unique_release(&client, "k", "someone-else").await.unwrap());
    let still: String = conn.get(keys.unique("k")).await.unwrap();
    assert_eq!(
        still,
        holder.as_str(),
        "a late release frees nobody else's key"
    );
    assert!(unique_release(&client, "k", holder.as_str()).await.unwrap());
    let exists: bool = conn.exists(keys.unique("k")).await.unwrap();
    assert!(!exists);
    assert!(!unique_release(&client, "k", holder.as_str()).await.unwrap());
}

/// A key left behind by a holder that is past its lifetime (its release failed, say while
/// Redis stalled) is taken over by the next enqueue; a live holder, or one that cannot be
/// judged (no record), keeps it.
#[tokio::test]
async fn a_key_left_by_a_finished_holder_is_taken_over() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("unique_left_over"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let once = Unique::until_succeeded(Duration::from_secs(600));
    let job = |key: &str| NewJob {
        options: EnqueueOptions::new().unique_by(key.to_owned(), once),
        ..NewJob::new("Report", vec![serde_json::json!(1)])
    };
    for (key, holder_state, taken_over) in [
        ("dead-holder", Some("dead"), true),
        ("succeeded-holder", Some("succeeded"), true),
        ("retrying-holder", Some("retrying"), false),
        ("no-record", None, false),
    ] {
        let holder = JobId::new();
        let _: () = conn
            .set_ex(keys.unique(key), holder.as_str(), 600)
            .await
            .unwrap();
        if let Some(state) = holder_state {
            let _: () = conn
                .hset_multiple(
                    keys.status(holder.as_str()),
                    &[("state", state), ("queue", "default"), ("class", "Report")],
                )
                .await
                .unwrap();
        }
        let id = client.push(job(key)).await.unwrap();
        let now_held: String = conn.get(keys.unique(key)).await.unwrap();
        if taken_over {
            assert_ne!(id, holder, "{key}");
            assert_eq!(now_held, id.as_str(), "{key}");
        } else {
            assert_eq!(id, holder, "{key}");
            assert_eq!(now_held, holder.as_str(), "{key}");
        }
    }
}

/// At maxmemory (noeviction) a unique enqueue is refused whole: a typed out-of-memory error,
/// no lock left behind without its job; once memory is freed the same enqueue goes through.
#[tokio::test]
async fn a_unique_enqueue_refused_by_a_full_redis_leaves_no_lock() {
    let redis =
        TestRedis::start_with_args(&["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"]);
    let client = Client::connect(redis.config("unique_full")).await.unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    // Fill with keys of our own, then free them later.
    let mut filled = 0u32;
    loop {
        let reply: redis::RedisResult<i64> = redis::cmd("SETRANGE")
            .arg(format!("fill:{filled}"))
            .arg(64 * 1024 - 1)
            .arg("x")
            .query_async(&mut conn)
            .await;
        match reply {
            Ok(_) => filled += 1,
            Err(e) if e.code() == Some("OOM") => break,
            Err(e) => panic!("{e}"),
        }
        assert!(filled < 10_000, "never full");
    }
    let once = Unique::until_succeeded(Duration::from_secs(60));
    let job = || NewJob {
        options: EnqueueOptions::new().unique_by("full", once),
        ..NewJob::new("Report", vec![serde_json::json!(1)])
    };
    let err = client.push(job()).await.unwrap_err();
    assert!(matches!(err, queue_core::Error::OutOfMemory(_)), "{err:?}");
    let lock: Option<String> = conn.get(keys.unique("full")).await.unwrap();
    assert_eq!(lock, None);
    let queued: i64 = conn.llen(keys.queue("default")).await.unwrap();
    assert_eq!(queued, 0);
    for i in 0..filled {
        let _: i64 = conn.del(format!("fill:{i}")).await.unwrap();
    }
    let id = client.push(job()).await.unwrap();
    let lock: Option<String> = conn.get(keys.unique("full")).await.unwrap();
    assert_eq!(lock.as_deref(), Some(id.as_str()));
}
