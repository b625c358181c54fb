//! Every script that moves or records a job, run against each key it touches planted with a
//! wrong type, or with a value its command cannot update (a counter that is not an integer,
//! a `rev` that would overflow). Under the default empty prefix another app's key can sit at
//! any of these names, and Redis does not roll back a script that fails half way.
//!
//! Each case: the job is placed where the script expects it, one key is planted, the typed
//! wrapper is called, and then:
//! - the reply is a defined one (`Ok`), or [`Error::WrongType`] naming the planted key, as
//!   the case expects;
//! - a job that was in some structure before the call is in at least one after it;
//! - a planted key of a foreign type is left exactly as it was (value and TTL).

mod common;

use common::{all_keys, cmd, lpush, raw};
use queue_core::scripts::{
    self, Beat, BeatMode, Cancelled, Deferral, Deferred, FailTo, Failed, FailedAttempt, Heartbeat,
    ProgressRecorded, Reaped, Requeue, Requeued, Slot,
};
use queue_core::testing::TestRedis;
use queue_core::timestamp::utc_day;
use queue_core::{Client, EnqueueOptions, Error, JobId, Keys, NewJob, Timestamp};
use redis::aio::MultiplexedConnection;
use std::collections::HashMap;
use std::fmt::Debug;
use std::time::Duration;

/// The pretend worker process that holds the job (and, in `reap`, claims it).
const IDENTITY: &str = "host:1:nonce";
/// The dead process whose job `reap` recovers.
const REAPED: &str = "host:2:gone";
/// The job's id.
const JID: &str = "jid-1";
/// The concurrency-limited class.
const CLASS: &str = "Limited";

/// What a key is planted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plant {
    /// The string `x`.
    Str,
    /// A one-element list.
    List,
    /// A one-field hash.
    Hash,
    /// A one-member set.
    Set,
    /// A one-member sorted set.
    Zset,
    /// A string that `INCR` cannot add to.
    NotInteger,
    /// The largest 64-bit integer: `INCR` overflows.
    MaxInteger,
    /// A status record whose `rev` is not an integer (`HINCRBY` fails).
    BadRev,
    /// A status record whose `rev` is the largest 64-bit integer (`HINCRBY` overflows).
    MaxRev,
}

impl Plant {
    /// Whether the planted value is of a type no script writes at that key, so that the
    /// script must leave it untouched (a damaged record of ours may be repaired instead).
    fn foreign(self) -> bool {
        !matches!(
            self,
            Plant::NotInteger | Plant::MaxInteger | Plant::BadRev | Plant::MaxRev
        )
    }
}

/// Wrong plants for a list key.
const LIST: &[Plant] = &[Plant::Str, Plant::Set];
/// Wrong plants for a sorted-set key.
const ZSET: &[Plant] = &[Plant::Str, Plant::List];
/// Wrong plants for a set key.
const SET: &[Plant] = &[Plant::Str, Plant::Zset];
/// Wrong plants for a hash key other than a status record.
const HASH: &[Plant] = &[Plant::Str, Plant::List];
/// Wrong plants for a status record.
const STATUS: &[Plant] = &[Plant::Str, Plant::List, Plant::BadRev, Plant::MaxRev];
/// Wrong plants for a counter.
const COUNTER: &[Plant] = &[Plant::List, Plant::NotInteger, Plant::MaxInteger];
/// Wrong plants for a lease (a string with a TTL).
const LEASE: &[Plant] = &[Plant::List, Plant::Hash];

/// What a case expects of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// A defined reply: the planted key does not stop the script.
    Reply,
    /// `Error::WrongType` naming the planted key when it is of a foreign type (the script
    /// cannot write its destination), a defined reply for a damaged value of ours.
    WrongType,
}

/// A private Redis, a client with the test's prefix, and a raw connection.
struct Harness {
    redis: TestRedis,
    client: Client,
    keys: Keys,
    conn: MultiplexedConnection,
    /// Every failed expectation, reported together at the end so that one run shows all
    /// the cases that break.
    failures: Vec<String>,
}

impl Harness {
    async fn start(name: &str) -> Self {
        let redis = TestRedis::start();
        let client = Client::connect(redis.config(name)).await.unwrap();
        let keys = client.keys().clone();
        let conn = raw(&redis).await;
        Self {
            redis,
            client,
            keys,
            conn,
            failures: Vec::new(),
        }
    }

    /// Records a failed expectation unless `ok`.
    fn expect(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }

    /// Fails the test with every failed expectation.
    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} failed expectations:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }

    /// Deletes every key of the test between cases (the whole server's, when it is the
    /// test's own).
    async fn reset(&mut self) {
        for key in all_keys(&self.redis, &mut self.conn).await {
            let _: i64 = cmd(&mut self.conn, &["DEL", &key]).await;
        }
    }

    async fn run(&mut self, parts: &[&str]) {
        let _: redis::Value = cmd(&mut self.conn, parts).await;
    }

    /// A status record in `state`.
    async fn record(&mut self, state: &str) {
        let key = self.keys.status(JID);
        self.run(&["HSET", &key, "state", state, "rev", "2"]).await;
    }

    /// Replaces whatever is at `key` with `plant`; a damaged status record keeps `state`.
    async fn plant(&mut self, key: &str, plant: Plant, state: &str) {
        self.run(&["DEL", key]).await;
        let parts: Vec<&str> = match plant {
            Plant::Str => vec!["SET", key, "x"],
            Plant::List => vec!["RPUSH", key, "x"],
            Plant::Hash => vec!["HSET", key, "f", "x"],
            Plant::Set => vec!["SADD", key, "x"],
            Plant::Zset => vec!["ZADD", key, "1", "x"],
            Plant::NotInteger => vec!["SET", key, "abc"],
            Plant::MaxInteger => vec!["SET", key, "9223372036854775807"],
            Plant::BadRev => vec!["HSET", key, "state", state, "rev", "abc"],
            Plant::MaxRev => vec!["HSET", key, "state", state, "rev", "9223372036854775807"],
        };
        self.run(&parts).await;
    }

    /// The key's serialized value and TTL, to show it was left alone.
    async fn snapshot(&mut self, key: &str) -> (Option<Vec<u8>>, i64) {
        let dump: Option<Vec<u8>> = cmd(&mut self.conn, &["DUMP", key]).await;
        let ttl: i64 = cmd(&mut self.conn, &["PTTL", key]).await;
        (dump, ttl)
    }

    /// Every list and sorted set holding an entry of job [`JID`].
    async fn locate(&mut self) -> Vec<String> {
        let needle = format!(r#""jid":"{JID}""#);
        let all = all_keys(&self.redis, &mut self.conn).await;
        let mut places = Vec::new();
        for key in all {
            let kind: String = cmd(&mut self.conn, &["TYPE", &key]).await;
            let entries: Vec<Vec<u8>> = match kind.as_str() {
                "list" => cmd(&mut self.conn, &["LRANGE", &key, "0", "-1"]).await,
                "zset" => cmd(&mut self.conn, &["ZRANGE", &key, "0", "-1"]).await,
                _ => continue,
            };
            if entries
                .iter()
                .any(|e| String::from_utf8_lossy(e).contains(&needle))
            {
                places.push(key);
            }
        }
        places.sort();
        places
    }

    async fn is_member(&mut self, set: &str, member: &str) -> bool {
        let kind: String = cmd(&mut self.conn, &["TYPE", set]).await;
        kind == "set" && cmd::<i64>(&mut self.conn, &["SISMEMBER", set, member]).await == 1
    }

    /// Checks one case after the call: the reply against `want`, the job still somewhere if
    /// it was before, and a foreign plant untouched.
    #[allow(clippy::too_many_arguments)]
    async fn check<T: Debug>(
        &mut self,
        case: &str,
        key: &str,
        plant: Plant,
        want: Want,
        before: &[String],
        snapshot: (Option<Vec<u8>>, i64),
        reply: &queue_core::Result<T>,
    ) {
        let fine = match (reply, want, plant.foreign()) {
            (Ok(_), Want::Reply, _) | (Ok(_), Want::WrongType, false) => true,
            (Err(Error::WrongType { key: k, .. }), Want::WrongType, true) => k == key,
            _ => false,
        };
        self.expect(fine, || format!("{case}: unexpected reply {reply:?}"));
        let after = self.locate().await;
        self.expect(before.is_empty() || !after.is_empty(), || {
            format!("{case}: the job was in {before:?} and is now in no structure ({reply:?})")
        });
        if plant.foreign() {
            let now = self.snapshot(key).await;
            self.expect(now == snapshot, || {
                format!("{case}: the planted key was changed")
            });
        }
    }
}

/// Whether a status record's `rev` reads as a number of at least 2 (it changed at least once).
fn readable_rev(record: &HashMap<String, String>) -> bool {
    record
        .get("rev")
        .and_then(|r| r.parse::<u64>().ok())
        .is_some_and(|r| r >= 2)
}

/// Job JSON as our client writes it, jid first.
fn job() -> String {
    format!(r#"{{"jid":"{JID}","class":"X","args":[],"queue":"default"}}"#)
}

/// The job rewritten with error fields, as `fail` stores it.
fn rewritten() -> String {
    format!(r#"{{"jid":"{JID}","class":"X","args":[],"queue":"default","error_message":"boom"}}"#)
}

/// The counters `fail` increments (today's daily ones included).
fn counters(keys: &Keys) -> Vec<String> {
    let day = utc_day(Timestamp::now().as_secs_f64());
    vec![
        keys.stat_processed(),
        keys.stat_failed(),
        keys.stat_processed_on(&day),
        keys.stat_failed_on(&day),
    ]
}

#[tokio::test]
async fn fail_keeps_the_job_whatever_its_keys_hold() {
    let mut h = Harness::start("fail_wrong_types").await;
    let k = h.keys.clone();
    let (raw_job, stored) = (job(), rewritten());
    for to in [
        FailTo::Retry {
            delay: Duration::from_secs(60),
        },
        FailTo::Dead,
    ] {
        let dest = match to {
            FailTo::Retry { .. } => k.retry(),
            FailTo::Dead => k.dead(),
        };
        let mut targets = vec![
            (k.processing(IDENTITY), LIST, Want::Reply),
            (k.retry(), ZSET, Want::Reply),
            (k.dead(), ZSET, Want::Reply),
            (k.status(JID), STATUS, Want::Reply),
        ];
        targets.extend(counters(&k).into_iter().map(|c| (c, COUNTER, Want::Reply)));
        for (key, plants, mut want) in targets {
            if key == dest {
                want = Want::WrongType;
            }
            for &plant in plants {
                let case = format!("fail to {to:?}, {key} planted with {plant:?}");
                h.reset().await;
                lpush(&mut h.conn, &k.processing(IDENTITY), &[&raw_job]).await;
                h.record("running").await;
                h.plant(&key, plant, "running").await;
                let before = h.locate().await;
                let snap = h.snapshot(&key).await;
                let attempt = FailedAttempt {
                    identity: IDENTITY,
                    raw: raw_job.as_bytes(),
                    rewritten: &stored,
                    jid: JID,
                    to,
                    tracked: true,
                    error: "RuntimeError: boom",
                    clock_offset_ms: 0,
                    dead_max_jobs: 10,
                    dead_max_age: Duration::from_secs(3_600),
                };
                let reply = scripts::fail(&h.client, &attempt).await;
                h.check(&case, &key, plant, want, &before, snap, &reply)
                    .await;
                // A broken record or counter must not stop the job from moving.
                if key != dest && key != k.processing(IDENTITY) {
                    let moved = match to {
                        FailTo::Retry { .. } => Failed::Retrying,
                        FailTo::Dead => Failed::Dead,
                    };
                    let places = h.locate().await;
                    h.expect(matches!(reply, Ok(r) if r == moved) && places == [dest.clone()], || {
                        format!("{case}: expected {moved:?} into {dest}, got {reply:?}, job in {places:?}")
                    });
                }
            }
        }
    }
    h.finish();
}

#[tokio::test]
async fn requeue_keeps_the_job_whatever_its_keys_hold() {
    let mut h = Harness::start("requeue_wrong_types").await;
    let k = h.keys.clone();
    let raw_job = job();
    let targets = [
        (k.processing(IDENTITY), LIST, Want::Reply),
        (k.queue("default"), LIST, Want::WrongType),
        (k.queues(), SET, Want::Reply),
        (k.status(JID), STATUS, Want::Reply),
    ];
    for (key, plants, want) in targets {
        for &plant in plants {
            let case = format!("requeue, {key} planted with {plant:?}");
            h.reset().await;
            lpush(&mut h.conn, &k.processing(IDENTITY), &[&raw_job]).await;
            h.record("running").await;
            h.plant(&key, plant, "running").await;
            let before = h.locate().await;
            let snap = h.snapshot(&key).await;
            let reply = scripts::requeue(
                &h.client,
                &Requeue {
                    identity: IDENTITY,
                    raw: raw_job.as_bytes(),
                    pushed: raw_job.as_bytes(),
                    queue: "default",
                    jid: JID,
                    tracked: true,
                },
            )
            .await;
            h.check(&case, &key, plant, want, &before, snap, &reply)
                .await;
            if want == Want::Reply && key != k.processing(IDENTITY) {
                let places = h.locate().await;
                let queue = k.queue("default");
                h.expect(
                    matches!(reply, Ok(Requeued::Queued)) && places == [queue],
                    || format!("{case}: expected Queued, got {reply:?}, job in {places:?}"),
                );
            }
        }
    }
    h.finish();
}

#[tokio::test]
async fn defer_keeps_the_job_whatever_its_keys_hold() {
    let mut h = Harness::start("defer_wrong_types").await;
    let k = h.keys.clone();
    let raw_job = job();
    for (why, dest) in [
        (Deferral::OverLimit, k.schedule()),
        (
            Deferral::UnknownClass {
                error: "UnknownJob: X",
            },
            k.retry(),
        ),
    ] {
        let targets = [
            (k.processing(IDENTITY), LIST, Want::Reply),
            (dest.clone(), ZSET, Want::WrongType),
            (k.status(JID), STATUS, Want::Reply),
        ];
        for (key, plants, want) in targets {
            for &plant in plants {
                let case = format!("defer {why:?}, {key} planted with {plant:?}");
                h.reset().await;
                lpush(&mut h.conn, &k.processing(IDENTITY), &[&raw_job]).await;
                h.record("running").await;
                h.plant(&key, plant, "running").await;
                let before = h.locate().await;
                let snap = h.snapshot(&key).await;
                let reply = scripts::defer(
                    &h.client,
                    IDENTITY,
                    raw_job.as_bytes(),
                    &raw_job,
                    JID,
                    Duration::from_millis(500),
                    why,
                )
                .await;
                h.check(&case, &key, plant, want, &before, snap, &reply)
                    .await;
                if key == k.status(JID) {
                    let places = h.locate().await;
                    h.expect(matches!(reply, Ok(Deferred::Later)) && places == [dest.clone()], || {
                        format!("{case}: expected Later into {dest}, got {reply:?}, job in {places:?}")
                    });
                }
            }
        }
    }
    h.finish();
}

#[tokio::test]
async fn reap_keeps_the_job_whatever_its_keys_hold() {
    let mut h = Harness::start("reap_wrong_types").await;
    let k = h.keys.clone();
    let raw_job = job();
    let targets = [
        (k.workers(), SET, Want::Reply),
        (k.processing(IDENTITY), LIST, Want::WrongType),
        (k.lease(IDENTITY), LEASE, Want::Reply),
        (k.processes(), SET, Want::Reply),
        (k.lease(REAPED), LEASE, Want::Reply),
        (k.processing(REAPED), LIST, Want::Reply),
        (k.process(REAPED), HASH, Want::Reply),
        (k.process_work(REAPED), HASH, Want::Reply),
    ];
    for (key, plants, want) in targets {
        for &plant in plants {
            let case = format!("reap, {key} planted with {plant:?}");
            h.reset().await;
            lpush(&mut h.conn, &k.processing(REAPED), &[&raw_job]).await;
            h.run(&["SADD", &k.workers(), IDENTITY, REAPED]).await;
            h.run(&["SADD", &k.processes(), IDENTITY, REAPED]).await;
            h.run(&["HSET", &k.process(REAPED), "busy", "1"]).await;
            h.run(&["SET", &k.lease(IDENTITY), "1", "PX", "600000"])
                .await;
            h.plant(&key, plant, "running").await;
            let before = h.locate().await;
            let snap = h.snapshot(&key).await;
            let reply =
                scripts::reap(&h.client, IDENTITY, REAPED, 100, Duration::from_secs(15)).await;
            h.check(&case, &key, plant, want, &before, snap, &reply)
                .await;
            // Whatever it answered, a job the caller now holds was named in the reply, or
            // it would sit unhandled until the audit.
            let places = h.locate().await;
            let claimed = Reaped::Claimed(vec![raw_job.clone().into_bytes()]);
            h.expect(
                places != [k.processing(IDENTITY)] || matches!(&reply, Ok(r) if *r == claimed),
                || format!("{case}: the caller holds the job but was told {reply:?}"),
            );
            // A lease of a foreign type is nobody's lease: the reaped process's one does not
            // keep its job from being recovered, the caller's one means the caller has none.
            if key == k.lease(REAPED) {
                h.expect(places == [k.processing(IDENTITY)], || {
                    format!("{case}: not recovered ({reply:?}), job in {places:?}")
                });
            }
            if key == k.lease(IDENTITY) {
                h.expect(matches!(reply, Ok(Reaped::LeaseLost)), || {
                    format!("{case}: expected LeaseLost, got {reply:?}")
                });
            }
        }
    }
    h.finish();
}

#[tokio::test]
async fn cancel_answers_whatever_the_record_holds() {
    let mut h = Harness::start("cancel_wrong_types").await;
    let k = h.keys.clone();
    for &plant in STATUS {
        let key = k.status(JID);
        let case = format!("cancel, {key} planted with {plant:?}");
        h.reset().await;
        lpush(&mut h.conn, &k.queue("default"), &[&job()]).await;
        h.plant(&key, plant, "queued").await;
        let before = h.locate().await;
        let snap = h.snapshot(&key).await;
        let reply = scripts::cancel(&h.client, JID).await;
        h.check(&case, &key, plant, Want::Reply, &before, snap, &reply)
            .await;
        if plant.foreign() {
            h.expect(matches!(reply, Ok(Cancelled::TooLate)), || {
                format!("{case}: expected TooLate, got {reply:?}")
            });
            continue;
        }
        // The whole change landed: state, a readable rev, no expiry while the job waits,
        // and the retention its drop applies.
        let record: HashMap<String, String> = cmd(&mut h.conn, &["HGETALL", &key]).await;
        let ttl: i64 = cmd(&mut h.conn, &["TTL", &key]).await;
        h.expect(
            matches!(reply, Ok(Cancelled::Cancelled))
                && record.get("state").map(String::as_str) == Some("cancelled")
                && readable_rev(&record)
                && record.contains_key("retention")
                && ttl == -1,
            || format!("{case}: {reply:?}, record {record:?}, ttl {ttl}"),
        );
    }
    h.finish();
}

#[tokio::test]
async fn progress_answers_whatever_the_record_holds() {
    let mut h = Harness::start("progress_wrong_types").await;
    let k = h.keys.clone();
    for &plant in STATUS {
        let key = k.status(JID);
        let case = format!("progress, {key} planted with {plant:?}");
        h.reset().await;
        lpush(&mut h.conn, &k.processing(IDENTITY), &[&job()]).await;
        h.plant(&key, plant, "running").await;
        let before = h.locate().await;
        let snap = h.snapshot(&key).await;
        let reply = scripts::progress(&h.client, JID, 40, "page 2").await;
        h.check(&case, &key, plant, Want::Reply, &before, snap, &reply)
            .await;
        if plant.foreign() {
            h.expect(matches!(reply, Ok(ProgressRecorded::NotRunning)), || {
                format!("{case}: expected NotRunning, got {reply:?}")
            });
        } else {
            let record: HashMap<String, String> = cmd(&mut h.conn, &["HGETALL", &key]).await;
            h.expect(
                matches!(reply, Ok(ProgressRecorded::Recorded))
                    && record.get("progress").map(String::as_str) == Some("40")
                    && readable_rev(&record),
                || format!("{case}: {reply:?}, record {record:?}"),
            );
        }
    }
    h.finish();
}

#[tokio::test]
async fn heartbeat_never_leaves_a_live_process_unreapable() {
    let mut h = Harness::start("heartbeat_wrong_types").await;
    let k = h.keys.clone();
    let targets = [
        (k.lease(IDENTITY), LEASE, Want::Reply),
        (k.workers(), SET, Want::WrongType),
        (k.processes(), SET, Want::Reply),
        (k.process(IDENTITY), HASH, Want::Reply),
    ];
    for mode in [BeatMode::Register, BeatMode::Renew] {
        for (key, plants, want) in &targets {
            for &plant in *plants {
                let case = format!("heartbeat {mode:?}, {key} planted with {plant:?}");
                h.reset().await;
                lpush(&mut h.conn, &k.processing(IDENTITY), &[&job()]).await;
                if mode == BeatMode::Renew {
                    h.run(&["SET", &k.lease(IDENTITY), "1", "PX", "600000"])
                        .await;
                    h.run(&["SADD", &k.workers(), IDENTITY]).await;
                }
                h.plant(key, plant, "running").await;
                let before = h.locate().await;
                let snap = h.snapshot(key).await;
                let reply = scripts::heartbeat(
                    &h.client,
                    &Heartbeat {
                        identity: IDENTITY,
                        mode,
                        lease_ttl: Duration::from_secs(15),
                        info: "{}",
                        busy: 1,
                        quiet: false,
                        rss_kib: 1,
                        processed: 0,
                        failed: 0,
                    },
                )
                .await;
                h.check(&case, key, plant, *want, &before, snap, &reply)
                    .await;
                // A process that holds a lease must be in `workers`, where reapers look.
                let listed = h.is_member(&k.workers(), IDENTITY).await;
                h.expect(!matches!(reply, Ok(Beat::Alive(_))) || listed, || {
                    format!("{case}: alive but not in workers")
                });
                if *key == k.lease(IDENTITY) {
                    h.expect(matches!(reply, Ok(Beat::LeaseLost)), || {
                        format!("{case}: expected LeaseLost, got {reply:?}")
                    });
                }
            }
        }
    }
    h.finish();
}

#[tokio::test]
async fn unregister_leaves_what_it_cannot_forget_recoverable() {
    let mut h = Harness::start("unregister_wrong_types").await;
    let k = h.keys.clone();
    let targets = [
        (k.lease(IDENTITY), LEASE, Want::Reply),
        (k.workers(), SET, Want::Reply),
        (k.processes(), SET, Want::Reply),
        (k.process(IDENTITY), HASH, Want::Reply),
        (k.process_work(IDENTITY), HASH, Want::Reply),
        (k.processing(IDENTITY), LIST, Want::Reply),
    ];
    for (key, plants, want) in targets {
        for &plant in plants {
            let case = format!("unregister, {key} planted with {plant:?}");
            h.reset().await;
            lpush(&mut h.conn, &k.processing(IDENTITY), &[&job()]).await;
            h.run(&["SET", &k.lease(IDENTITY), "1", "PX", "600000"])
                .await;
            h.run(&["SADD", &k.workers(), IDENTITY]).await;
            h.run(&["SADD", &k.processes(), IDENTITY]).await;
            h.plant(&key, plant, "running").await;
            let before = h.locate().await;
            let snap = h.snapshot(&key).await;
            let reply = scripts::unregister(&h.client, IDENTITY).await;
            h.check(&case, &key, plant, want, &before, snap, &reply)
                .await;
            // A job left behind stays where a reaper finds it: listed in `workers`.
            let left = !h.locate().await.is_empty();
            let listed = h.is_member(&k.workers(), IDENTITY).await;
            h.expect(!left || listed || key == k.workers(), || {
                format!("{case}: a job left behind by a process missing from workers")
            });
        }
    }
    h.finish();
}

#[tokio::test]
async fn limit_acquire_answers_whatever_the_slots_hold() {
    let mut h = Harness::start("limit_wrong_types").await;
    let k = h.keys.clone();
    let key = k.concurrency(CLASS);
    for &plant in ZSET {
        let case = format!("limit_acquire, {key} planted with {plant:?}");
        h.reset().await;
        lpush(&mut h.conn, &k.processing(IDENTITY), &[&job()]).await;
        h.plant(&key, plant, "running").await;
        let before = h.locate().await;
        let snap = h.snapshot(&key).await;
        let reply: queue_core::Result<Slot> =
            scripts::limit_acquire(&h.client, CLASS, "holder", 2, Duration::from_secs(60)).await;
        h.check(&case, &key, plant, Want::WrongType, &before, snap, &reply)
            .await;
    }
    h.finish();
}

/// A tracked job of class `X` in `default` with the caller-given id [`JID`], due now or
/// after `delay`.
fn new_job(delay: Option<Duration>) -> NewJob {
    let mut options = EnqueueOptions::new().job_id(JobId::parse(JID).unwrap());
    if let Some(d) = delay {
        options = options.delay(d);
    }
    let mut job = NewJob::new("X", vec![]);
    job.options = options;
    job
}

/// After an enqueue: written whole (the job in `dest` and a record) or not at all.
async fn all_or_nothing(h: &mut Harness, case: &str, key: &str, dest: &str, written: bool) {
    let status = h.keys.status(JID);
    let places = h.locate().await;
    let kind: String = cmd(&mut h.conn, &["TYPE", &status]).await;
    if written {
        h.expect(places == [dest.to_owned()] && kind == "hash", || {
            format!("{case}: written, but the job is in {places:?} and the record a {kind}")
        });
    } else {
        // No record may claim a job that is nowhere: a retry with the same id would be
        // taken for a duplicate, and the job never run.
        h.expect(
            places.is_empty() && (kind != "hash" || key == status),
            || format!("{case}: refused, but the job is in {places:?} and the record a {kind}"),
        );
    }
}

#[tokio::test]
async fn enqueue_writes_all_or_nothing_whatever_its_keys_hold() {
    let mut h = Harness::start("enqueue_wrong_types").await;
    let k = h.keys.clone();
    let targets = [
        (k.queue("default"), LIST, Want::WrongType),
        (k.queues(), SET, Want::WrongType),
        (
            k.status(JID),
            &[Plant::Str, Plant::List][..],
            Want::WrongType,
        ),
    ];
    for bulk in [false, true] {
        for (key, plants, want) in &targets {
            for &plant in *plants {
                let case = format!("enqueue (bulk {bulk}), {key} planted with {plant:?}");
                h.reset().await;
                h.plant(key, plant, "queued").await;
                let snap = h.snapshot(key).await;
                let reply = if bulk {
                    h.client
                        .push_bulk(vec![new_job(None)])
                        .await
                        .map(|ids| ids.len())
                } else {
                    h.client.push(new_job(None)).await.map(|_| 1)
                };
                h.check(&case, key, plant, *want, &[], snap, &reply).await;
                let written = reply.is_ok();
                all_or_nothing(&mut h, &case, key, &k.queue("default"), written).await;
            }
        }
    }
    h.finish();
}

#[tokio::test]
async fn schedule_writes_all_or_nothing_whatever_its_keys_hold() {
    let mut h = Harness::start("schedule_wrong_types").await;
    let k = h.keys.clone();
    let targets = [
        (k.schedule(), ZSET, Want::WrongType),
        (
            k.status(JID),
            &[Plant::Str, Plant::List][..],
            Want::WrongType,
        ),
    ];
    for (key, plants, want) in targets {
        for &plant in plants {
            let case = format!("schedule, {key} planted with {plant:?}");
            h.reset().await;
            h.plant(&key, plant, "scheduled").await;
            let snap = h.snapshot(&key).await;
            let reply = h.client.push(new_job(Some(Duration::from_secs(60)))).await;
            h.check(&case, &key, plant, want, &[], snap, &reply).await;
            let written = reply.is_ok();
            all_or_nothing(&mut h, &case, &key, &k.schedule(), written).await;
        }
    }
    h.finish();
}

// ack_fetch.lua, start.lua and promote.lua (the lead's rewrite on main).

/// The job acked in the `ack_fetch` cases (the one fetched is [`JID`]).
const ACKED: &str = "acked-1";

#[tokio::test]
async fn ack_fetch_keeps_the_fetched_job_whatever_its_keys_hold() {
    let mut h = Harness::start("ack_fetch_wrong_types").await;
    let k = h.keys.clone();
    let day = utc_day(Timestamp::now().as_secs_f64());
    let acked_raw = format!(r#"{{"jid":"{ACKED}","class":"X","args":[],"queue":"default"}}"#);
    let targets = [
        (k.lease(IDENTITY), LEASE, Want::Reply),
        (k.processing(IDENTITY), LIST, Want::WrongType),
        (k.stat_processed(), COUNTER, Want::Reply),
        (k.stat_processed_on(&day), COUNTER, Want::Reply),
        (k.status(ACKED), STATUS, Want::Reply),
        (k.queue("default"), LIST, Want::Reply),
    ];
    for (key, plants, want) in targets {
        for &plant in plants {
            let case = format!("ack_fetch, {key} planted with {plant:?}");
            h.reset().await;
            h.run(&["SET", &k.lease(IDENTITY), "1", "PX", "600000"])
                .await;
            lpush(&mut h.conn, &k.processing(IDENTITY), &[&acked_raw]).await;
            let status = k.status(ACKED);
            h.run(&["HSET", &status, "state", "running", "rev", "2"])
                .await;
            lpush(&mut h.conn, &k.queue("default"), &[&job()]).await;
            h.plant(&key, plant, "running").await;
            let before = h.locate().await;
            let snap = h.snapshot(&key).await;
            let acks = [scripts::Ack {
                raw: acked_raw.as_bytes(),
                jid: ACKED,
                tracking: scripts::AckTracking::Tracked,
                result: Some("{}"),
                retention: std::time::Duration::from_secs(3600),
            }];
            let reply = scripts::ack_fetch(
                &h.client,
                &scripts::AckFetch {
                    identity: IDENTITY,
                    acks: &acks,
                    want: 1,
                    queues: &["default"],
                    lease_ttl: Duration::from_secs(15),
                    now: Timestamp::now(),
                },
            )
            .await;
            h.check(&case, &key, plant, want, &before, snap, &reply)
                .await;
            // A job taken into the processing list is handed to the caller.
            let places = h.locate().await;
            if places == [k.processing(IDENTITY)] {
                h.expect(
                    matches!(&reply, Ok(r) if r.taken == scripts::Taken::Jobs(vec![job().into_bytes()])),
                    || format!("{case}: the job was taken but the reply is {reply:?}"),
                );
            }
        }
    }
    h.finish();
}

#[tokio::test]
async fn start_answers_whatever_the_record_holds() {
    let mut h = Harness::start("start_wrong_types").await;
    let k = h.keys.clone();
    let key = k.status(JID);
    for &plant in STATUS {
        let case = format!("start, {key} planted with {plant:?}");
        h.reset().await;
        lpush(&mut h.conn, &k.processing(IDENTITY), &[&job()]).await;
        h.plant(&key, plant, "queued").await;
        let before = h.locate().await;
        let snap = h.snapshot(&key).await;
        let jobs = [scripts::StartJob {
            jid: JID,
            attempt: 1,
            queue: "default",
            class: "X",
            tracked: true,
        }];
        let reply = scripts::start(&h.client, &jobs, Timestamp::now()).await;
        h.check(&case, &key, plant, Want::Reply, &before, snap, &reply)
            .await;
    }
    h.finish();
}

#[tokio::test]
async fn promote_keeps_the_job_whatever_its_keys_hold() {
    let mut h = Harness::start("promote_wrong_types").await;
    let k = h.keys.clone();
    for from in [scripts::PromoteFrom::Schedule, scripts::PromoteFrom::Retry] {
        let set = match from {
            scripts::PromoteFrom::Schedule => k.schedule(),
            scripts::PromoteFrom::Retry => k.retry(),
        };
        let targets = [
            (set.clone(), ZSET, Want::WrongType),
            (k.queues(), SET, Want::Reply),
            (k.queue("default"), LIST, Want::Reply),
            (k.status(JID), STATUS, Want::Reply),
        ];
        for (key, plants, want) in targets {
            for &plant in plants {
                let case = format!("promote {from:?}, {key} planted with {plant:?}");
                h.reset().await;
                h.run(&["ZADD", &set, "1", &job()]).await;
                h.record("scheduled").await;
                h.plant(&key, plant, "scheduled").await;
                let before = h.locate().await;
                let snap = h.snapshot(&key).await;
                let reply = scripts::promote(&h.client, from, 100, 0).await;
                h.check(&case, &key, plant, want, &before, snap, &reply)
                    .await;
            }
        }
    }
    h.finish();
}
