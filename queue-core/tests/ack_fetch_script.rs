//! `ack_fetch.lua` called through `scripts::ack_fetch`, the wrapper the worker calls
//! (`exchange.rs`), followed as the worker does by `scripts::start` for the jobs it could
//! read, then the raw Redis state and the reply checked: fetch order and the processing
//! list, priority of queues, large batches, status marks, JSON written by others, acks, a
//! lost lease, acks only, and keys of the wrong type.

mod common;

use common::{Greet, Tick, cmd, exists, hgetall, lpush, lrange, raw};
use queue_core::scripts::{
    Ack, AckFetch, AckTracking, PromoteFrom, StartJob, Started, Taken, ack_fetch as call_ack_fetch,
};
use queue_core::testing::TestRedis;
use queue_core::timestamp::utc_day;
use queue_core::{
    Client, EnqueueOptions, JobId, JobPayload, JobState, JobStatus, Keys, NewJob, StatusRetention,
    Timestamp, finished_store, scripts,
};
use redis::aio::MultiplexedConnection;
use std::collections::HashMap;
use std::time::Duration;

/// The `now` passed to the wrapper, and the day of the daily counter: the real clock at the
/// first call, at half a second, so that it reads back exactly from a packed record (whole
/// milliseconds). A worker's clock must be close to Redis's for its records to be packed.
fn now_secs() -> f64 {
    static NOW: std::sync::LazyLock<f64> =
        std::sync::LazyLock::new(|| Timestamp::now().as_secs_f64().floor() + 0.5);
    *NOW
}

/// The script's clock, as the wrapper formats [`now_secs`].
fn now_text() -> String {
    format!("{:.6}", now_secs())
}
/// Lease TTL the script sets.
const LEASE_TTL_MS: i64 = 15_000;
/// Retention of a finished job's record: the test client's `status_retention.finished`,
/// which the wrapper sends (not the 24 h default, so that a hard-coded value would show).
const FINISHED_TTL: i64 = 3_600;
/// TTL of the daily counter: five years, as Sidekiq keeps them (the wrapper's constant).
const DAILY_TTL: i64 = 5 * 365 * 24 * 3_600;
/// The pretend worker's identity.
const IDENTITY: &str = "host:1:nonce";

/// The script's reply, split into its parts, as integers: lease 1 held / 0 lost; ack 1
/// landed / 0 not owned; mark 1 running / 0 cancelled / 2 no record / 3 not a job.
#[derive(Debug, PartialEq)]
struct Reply {
    lease: i64,
    acks: Vec<i64>,
    jobs: Vec<(String, i64)>,
}

impl Reply {
    fn raws(&self) -> Vec<&str> {
        self.jobs.iter().map(|(r, _)| r.as_str()).collect()
    }

    fn marks(&self) -> Vec<i64> {
        self.jobs.iter().map(|(_, m)| *m).collect()
    }
}

/// Calls the worker's wrappers for [`IDENTITY`] at [`now_secs`], `ack_fetch` and then
/// `start` for the jobs that parse (as untracked types: a missing record stays missing),
/// and maps their typed replies back to integers. With `want = 0` the wrapper sends no queue
/// keys, whatever `queues` names.
async fn ack_fetch(client: &Client, acks: &[Ack<'_>], want: usize, queues: &[&str]) -> Reply {
    let call = AckFetch {
        identity: IDENTITY,
        acks,
        want,
        queues,
        lease_ttl: Duration::from_millis(LEASE_TTL_MS as u64),
        now: Timestamp::from_secs_f64(now_secs()),
    };
    let reply = call_ack_fetch(client, &call).await.unwrap();
    assert_eq!(reply.acked.len(), acks.len());
    let acks = reply
        .acked
        .iter()
        .map(|&landed| i64::from(landed))
        .collect();
    let (lease, jobs) = match reply.taken {
        Taken::LeaseLost => (0, Vec::new()),
        Taken::Jobs(jobs) => (1, marked(client, jobs).await),
    };
    Reply { lease, acks, jobs }
}

/// The taken jobs as (text, mark number), after `start` marked the ones that parse.
async fn marked(client: &Client, jobs: Vec<Vec<u8>>) -> Vec<(String, i64)> {
    let parsed: Vec<Option<JobPayload>> = jobs
        .iter()
        .map(|raw| JobPayload::from_json(raw).ok())
        .collect();
    let starts: Vec<StartJob<'_>> = parsed
        .iter()
        .flatten()
        .map(|job| StartJob {
            jid: job.jid.as_str(),
            attempt: job.attempt(),
            queue: &job.queue,
            class: &job.class,
            tracked: false,
        })
        .collect();
    let started = scripts::start(client, &starts, Timestamp::from_secs_f64(now_secs()))
        .await
        .unwrap();
    let mut marks = started.into_iter().map(|s| match s {
        Started::Cancelled => 0,
        Started::Running => 1,
        Started::NoRecord => 2,
    });
    jobs.into_iter()
        .zip(parsed)
        .map(|(raw, job)| {
            let mark = match job {
                Some(_) => marks.next().unwrap(),
                None => 3,
            };
            (String::from_utf8(raw).unwrap(), mark)
        })
        .collect()
}

/// The packed record of `id`, finished at [`now_secs`] and kept [`FINISHED_TTL`].
async fn packed(conn: &mut MultiplexedConnection, keys: &Keys, id: &str) -> JobStatus {
    let spot = finished_store::spot(keys, id, FINISHED_TTL as u64, now_secs());
    let value: Option<String> = cmd(conn, &["HGET", &spot.key, id]).await;
    let value = value.unwrap_or_else(|| panic!("no packed record of {id} in {}", spot.key));
    finished_store::unpack(&value).unwrap_or_else(|| panic!("{value:?} does not unpack"))
}

/// An ack as the worker builds it; `result` `None` for a cancelled job that did not run.
fn ack<'a>(raw: &'a str, jid: &'a str, tracking: AckTracking, result: Option<&'a str>) -> Ack<'a> {
    Ack {
        raw: raw.as_bytes(),
        jid,
        tracking,
        result,
        retention: Duration::from_secs(FINISHED_TTL as u64),
    }
}

/// A client with the test's key prefix and [`FINISHED_TTL`] as its finished retention, and a
/// separate raw connection.
async fn setup(redis: &TestRedis, name: &str) -> (Client, Keys, MultiplexedConnection) {
    let config = redis.config(name).status_retention(StatusRetention {
        finished: Duration::from_secs(FINISHED_TTL as u64),
        ..StatusRetention::default()
    });
    let client = Client::connect(config).await.unwrap();
    let keys = client.keys().clone();
    (client, keys, raw(redis).await)
}

/// Creates this process's lease, with a TTL far above the one the script sets.
async fn grant_lease(conn: &mut MultiplexedConnection, keys: &Keys) {
    let _: () = cmd(conn, &["SET", &keys.lease(IDENTITY), "1", "PX", "600000"]).await;
}

/// Minimal job JSON written jid first, as our client does.
fn job(jid: &str) -> String {
    format!(r#"{{"jid":"{jid}","class":"X","args":[]}}"#)
}

// 1.
#[tokio::test]
async fn fetch_takes_a_short_queue_whole_oldest_first() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "fetch_takes_a_short_queue_whole").await;
    grant_lease(&mut conn, &keys).await;
    let jobs: Vec<String> = ["a1", "a2", "a3"].iter().map(|j| job(j)).collect();
    lpush(&mut conn, &keys.queue("default"), &jobs).await;
    let queue_before = lrange(&mut conn, &keys.queue("default")).await;

    let reply = ack_fetch(&client, &[], 5, &["default"]).await;

    assert_eq!(reply.lease, 1);
    assert!(reply.acks.is_empty());
    // Oldest first in the reply; no status records, so mark 2 each.
    assert_eq!(reply.raws(), [&jobs[0], &jobs[1], &jobs[2]]);
    assert_eq!(reply.marks(), [2, 2, 2]);
    assert!(!exists(&mut conn, &keys.queue("default")).await);
    // The processing list keeps the queue's order: newest at the head, oldest at the tail.
    let processing = lrange(&mut conn, &keys.processing(IDENTITY)).await;
    assert_eq!(processing, queue_before);
    assert_eq!(processing, [&*jobs[2], &*jobs[1], &*jobs[0]]);
    // The lease was renewed to the TTL asked for.
    let pttl: i64 = cmd(&mut conn, &["PTTL", &keys.lease(IDENTITY)]).await;
    assert!((1..=LEASE_TTL_MS).contains(&pttl), "pttl {pttl}");
    // No status records were created for untracked jobs.
    for j in ["a1", "a2", "a3"] {
        assert!(!exists(&mut conn, &keys.status(j)).await);
    }
}

// 2.
#[tokio::test]
async fn fetch_takes_queues_in_priority_order() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "fetch_takes_queues_in_priority_order").await;
    grant_lease(&mut conn, &keys).await;
    let high: Vec<String> = ["h1", "h2"].iter().map(|j| job(j)).collect();
    let low: Vec<String> = ["l1", "l2", "l3", "l4", "l5"]
        .iter()
        .map(|j| job(j))
        .collect();
    let last: Vec<String> = vec![job("z1")];
    lpush(&mut conn, &keys.queue("high"), &high).await;
    lpush(&mut conn, &keys.queue("low"), &low).await;
    lpush(&mut conn, &keys.queue("last"), &last).await;

    let reply = ack_fetch(&client, &[], 4, &["high", "missing", "low", "last"]).await;

    assert_eq!(reply.lease, 1);
    assert_eq!(reply.raws(), [&high[0], &high[1], &low[0], &low[1]]);
    assert_eq!(reply.marks(), [2, 2, 2, 2]);
    assert!(!exists(&mut conn, &keys.queue("high")).await);
    assert_eq!(
        lrange(&mut conn, &keys.queue("low")).await,
        [&*low[4], &*low[3], &*low[2]]
    );
    assert_eq!(lrange(&mut conn, &keys.queue("last")).await, last);
    assert_eq!(
        lrange(&mut conn, &keys.processing(IDENTITY)).await,
        [&*low[1], &*low[0], &*high[1], &*high[0]]
    );

    // The first queue alone can fill the request: the others are not touched.
    lpush(&mut conn, &keys.queue("high"), &high).await;
    let reply = ack_fetch(&client, &[], 1, &["high", "low", "last"]).await;
    assert_eq!(reply.raws(), [&high[0]]);
    assert_eq!(lrange(&mut conn, &keys.queue("high")).await, [&*high[1]]);
    assert_eq!(lrange(&mut conn, &keys.queue("low")).await.len(), 3);
    assert_eq!(lrange(&mut conn, &keys.queue("last")).await, last);
    assert_eq!(lrange(&mut conn, &keys.processing(IDENTITY)).await.len(), 5);
}

// 3. 2,500 of 3,000 as asked; also 9,000 of 10,000, above what one `unpack` can take in
// Redis's Lua (about 8,000 values), so that the 1,000-job slices are what keeps it working.
#[tokio::test]
async fn fetch_of_more_than_one_slice_moves_exactly_what_was_asked() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "fetch_of_more_than_one_slice").await;
    grant_lease(&mut conn, &keys).await;
    for (queued, want) in [(3_000, 2_500), (10_000, 9_000)] {
        let queue_key = keys.queue(&format!("bulk{queued}"));
        let processing_key = keys.processing(IDENTITY);
        let _: i64 = cmd(&mut conn, &["DEL", &processing_key]).await;
        let jobs: Vec<String> = (0..queued).map(|i| job(&format!("j{i}"))).collect();
        lpush(&mut conn, &queue_key, &jobs).await;

        let reply = ack_fetch(&client, &[], want, &[&format!("bulk{queued}")]).await;

        assert_eq!(reply.lease, 1);
        // The `want` oldest, oldest first.
        assert_eq!(reply.raws(), jobs[..want].iter().collect::<Vec<_>>());
        assert!(reply.marks().iter().all(|m| *m == 2));
        // Processing list: the same jobs, newest at the head, across the slices.
        let processing = lrange(&mut conn, &processing_key).await;
        assert_eq!(
            processing,
            jobs[..want].iter().rev().cloned().collect::<Vec<_>>()
        );
        // The queue keeps the newest, in order; nothing lost, nothing doubled.
        let queue = lrange(&mut conn, &queue_key).await;
        assert_eq!(
            queue,
            jobs[want..].iter().rev().cloned().collect::<Vec<_>>()
        );
        assert_eq!(queue.len() + processing.len(), queued);
    }
}

// 4.
#[tokio::test]
async fn fetch_marks_tracked_jobs_running_and_reports_cancelled_ones() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "fetch_marks_tracked_jobs_running").await;
    grant_lease(&mut conn, &keys).await;

    // Tracked, first attempt: a queued record without `rev` or `attempt`.
    let fresh = client.enqueue(&Greet::new("fresh")).await.unwrap();
    let fresh_key = keys.status(fresh.as_str());
    let record = hgetall(&mut conn, &fresh_key).await;
    assert_eq!(record["state"], "queued");
    assert!(!record.contains_key("rev") && !record.contains_key("attempt"));

    // Tracked and cancelled while queued.
    let cancelled = client.enqueue(&Greet::new("cancelled")).await.unwrap();
    assert!(client.cancel(&cancelled).await.unwrap());
    let cancelled_key = keys.status(cancelled.as_str());
    let cancelled_before = hgetall(&mut conn, &cancelled_key).await;
    let cancelled_ttl: i64 = cmd(&mut conn, &["TTL", &cancelled_key]).await;
    assert_eq!(cancelled_before["state"], "cancelled");

    // A retry as the worker writes it back (`JobPayload::to_json`, retry_count right after
    // jid), with a record that still has the last progress message.
    let mut retried = JobPayload::from_json(
        br#"{"class":"Greet","args":[{"name":"r"}],"queue":"default","jid":"x"}"#,
    )
    .unwrap();
    retried.jid = JobId::new();
    retried.retry_count = Some(0);
    let retried_json = retried.to_json().unwrap();
    assert!(retried_json.starts_with(&format!(
        r#"{{"jid":"{}","retry_count":0,"#,
        retried.jid.as_str()
    )));
    let retried_key = keys.status(retried.jid.as_str());
    let _: () = cmd(
        &mut conn,
        &[
            "HSET",
            &retried_key,
            "state",
            "queued",
            "attempt",
            "1",
            "rev",
            "4",
            "message",
            "halfway",
            "error",
            "boom",
        ],
    )
    .await;
    lpush(
        &mut conn,
        &keys.queue("default"),
        std::slice::from_ref(&retried_json),
    )
    .await;

    let reply = ack_fetch(&client, &[], 10, &["default"]).await;

    assert_eq!(reply.lease, 1);
    assert_eq!(reply.jobs.len(), 3);
    assert_eq!(reply.marks(), [1, 0, 1]);
    assert!(reply.jobs[0].0.contains(fresh.as_str()));
    assert!(reply.jobs[1].0.contains(cancelled.as_str()));
    assert_eq!(reply.jobs[2].0, retried_json);

    let record = hgetall(&mut conn, &fresh_key).await;
    assert_eq!(record["state"], "running");
    assert_eq!(record["attempt"], "1");
    assert_eq!(record["progress"], "0");
    assert_eq!(record["rev"], "2");
    assert_eq!(record["started_at"], now_text());
    // Fields written at enqueue are kept.
    assert_eq!(record["class"], "Greet");
    assert_eq!(record["queue"], "default");

    assert_eq!(hgetall(&mut conn, &cancelled_key).await, cancelled_before);
    // Taking the job leaves its record as it was: it lasts until the skip is acked.
    let ttl: i64 = cmd(&mut conn, &["TTL", &cancelled_key]).await;
    assert_eq!(ttl, cancelled_ttl, "ttl {ttl}");

    let record = hgetall(&mut conn, &retried_key).await;
    assert_eq!(record["state"], "running");
    assert_eq!(record["attempt"], "2");
    assert_eq!(record["progress"], "0");
    assert_eq!(record["rev"], "5");
    assert_eq!(record["started_at"], now_text());
    assert!(!record.contains_key("message"), "{record:?}");
    // The last error stays until the retry succeeds (the ack with '2' clears it).
    assert_eq!(record["error"], "boom");

    // All three, cancelled included, sit in the processing list until acked.
    assert_eq!(lrange(&mut conn, &keys.processing(IDENTITY)).await.len(), 3);
    assert!(!exists(&mut conn, &keys.queue("default")).await);
}

/// A job written by another client, and what the script should make of it.
struct Foreign {
    /// The id whose queued record the test creates; `None` for unreadable jobs.
    jid: Option<&'static str>,
    raw: &'static str,
    mark: i64,
    /// `attempt` in the record once marked running.
    attempt: Option<&'static str>,
}

// 5.
#[tokio::test]
async fn fetch_identifies_json_written_by_others() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "fetch_identifies_json_written_by_others").await;
    grant_lease(&mut conn, &keys).await;
    let cases = [
        // (a) Sidekiq's order: jid last, found by decoding.
        Foreign {
            jid: Some("sk"),
            raw: r#"{"class":"X","args":[1],"queue":"default","jid":"sk","retry":true}"#,
            mark: 1,
            attempt: Some("1"),
        },
        // Sidekiq's order with a retry count.
        Foreign {
            jid: Some("sk2"),
            raw: r#"{"class":"X","args":[],"jid":"sk2","retry_count":4}"#,
            mark: 1,
            attempt: Some("6"),
        },
        // (b) jid first, retry_count elsewhere: not read as a first attempt.
        Foreign {
            jid: Some("abc"),
            raw: r#"{"jid":"abc","class":"X","args":[],"retry_count":1}"#,
            mark: 1,
            attempt: Some("3"),
        },
        // jid first, then Sidekiq's "Retry Now" count of -1: no failure counted yet.
        Foreign {
            jid: Some("neg"),
            raw: r#"{"jid":"neg","retry_count":-1,"class":"X","args":[]}"#,
            mark: 1,
            attempt: Some("1"),
        },
        // jid first with a character outside [A-Za-z0-9_-].
        Foreign {
            jid: Some("a.b"),
            raw: r#"{"jid":"a.b","class":"X","args":[]}"#,
            mark: 1,
            attempt: Some("1"),
        },
        // (c) not JSON at all.
        Foreign {
            jid: None,
            raw: "not json at all",
            mark: 3,
            attempt: None,
        },
        // JSON, but not an object with a string jid.
        Foreign {
            jid: None,
            raw: "[1,2,3]",
            mark: 3,
            attempt: None,
        },
        Foreign {
            jid: None,
            raw: r#"{"class":"X","args":[],"jid":7}"#,
            mark: 3,
            attempt: None,
        },
    ];
    for jid in cases.iter().filter_map(|c| c.jid) {
        let _: () = cmd(
            &mut conn,
            &["HSET", &keys.status(jid), "state", "queued", "class", "X"],
        )
        .await;
    }
    let raws: Vec<String> = cases.iter().map(|c| c.raw.to_owned()).collect();
    lpush(&mut conn, &keys.queue("default"), &raws).await;

    let reply = ack_fetch(&client, &[], 20, &["default"]).await;

    assert_eq!(reply.lease, 1);
    assert_eq!(reply.raws(), raws.iter().collect::<Vec<_>>());
    for (case, (_, got)) in cases.iter().zip(&reply.jobs) {
        assert_eq!(*got, case.mark, "mark of {}", case.raw);
        if let Some(jid) = case.jid {
            let record = hgetall(&mut conn, &keys.status(jid)).await;
            assert_eq!(record["state"], "running", "{}", case.raw);
            assert_eq!(
                record.get("attempt").map(String::as_str),
                case.attempt,
                "{}",
                case.raw
            );
            assert_eq!(record["rev"], "2", "{}", case.raw);
        }
    }
    // Nothing is lost: the unreadable ones sit in the processing list like the others.
    let processing = lrange(&mut conn, &keys.processing(IDENTITY)).await;
    assert_eq!(processing, raws.iter().rev().cloned().collect::<Vec<_>>());
    assert!(!exists(&mut conn, &keys.queue("default")).await);
}

// 6.
#[tokio::test]
async fn acks_settle_jobs_in_the_processing_list_only() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "acks_settle_jobs_in_the_processing_list").await;
    grant_lease(&mut conn, &keys).await;
    let day_key = keys.stat_processed_on(&utc_day(now_secs()));
    let _: () = cmd(&mut conn, &["SET", &keys.stat_processed(), "10"]).await;

    // with_result (tracked), no_result (tracked), untracked, cancelled, a retry.
    let with_result = client.enqueue(&Greet::new("r")).await.unwrap();
    let no_result = client.enqueue(&Greet::new("n")).await.unwrap();
    let untracked = client.enqueue(&Tick(1)).await.unwrap();
    let cancelled = client.enqueue(&Greet::new("c")).await.unwrap();
    assert!(client.cancel(&cancelled).await.unwrap());
    let retry_jid = "retry1";
    let retry_raw = format!(r#"{{"jid":"{retry_jid}","retry_count":0,"class":"Greet","args":[]}}"#);
    let _: () = cmd(
        &mut conn,
        &[
            "HSET",
            &keys.status(retry_jid),
            "state",
            "queued",
            "rev",
            "3",
            "error",
            "boom",
        ],
    )
    .await;
    lpush(
        &mut conn,
        &keys.queue("default"),
        std::slice::from_ref(&retry_raw),
    )
    .await;

    let fetched = ack_fetch(&client, &[], 10, &["default", "ticks"]).await;
    // default: with_result, no_result, cancelled, retry (oldest first); then ticks.
    assert_eq!(fetched.marks(), [1, 1, 0, 1, 2]);
    let raw_of = |id: &JobId| {
        fetched
            .jobs
            .iter()
            .find(|(r, _)| r.contains(id.as_str()))
            .unwrap()
            .0
            .clone()
    };
    let (r_raw, n_raw, u_raw, c_raw) = (
        raw_of(&with_result),
        raw_of(&no_result),
        raw_of(&untracked),
        raw_of(&cancelled),
    );
    let cancelled_before = hgetall(&mut conn, &keys.status(cancelled.as_str())).await;

    // A tracked job that this process does not hold: it sits in its queue (as after the
    // reaper handed it back), and its record says another worker runs it.
    let elsewhere = client.enqueue(&Greet::new("e")).await.unwrap();
    let elsewhere_raw = lrange(&mut conn, &keys.queue("default"))
        .await
        .pop()
        .unwrap();
    let _: () = cmd(
        &mut conn,
        &[
            "HSET",
            &keys.status(elsewhere.as_str()),
            "state",
            "running",
            "rev",
            "7",
        ],
    )
    .await;
    let elsewhere_before = hgetall(&mut conn, &keys.status(elsewhere.as_str())).await;

    let acks = [
        ack(
            &r_raw,
            with_result.as_str(),
            AckTracking::Tracked,
            Some(r#"{"ok":true}"#),
        ),
        ack(&n_raw, no_result.as_str(), AckTracking::Tracked, Some("")),
        ack(&u_raw, untracked.as_str(), AckTracking::Untracked, Some("")),
        ack(&c_raw, cancelled.as_str(), AckTracking::Tracked, None),
        ack(
            &retry_raw,
            retry_jid,
            AckTracking::TrackedAfterRetry,
            Some("42"),
        ),
        ack(
            &elsewhere_raw,
            elsewhere.as_str(),
            AckTracking::Tracked,
            Some(r#""late""#),
        ),
    ];
    let reply = ack_fetch(&client, &acks, 0, &[]).await;

    assert_eq!(
        reply,
        Reply {
            lease: 1,
            acks: vec![1, 1, 1, 1, 1, 0],
            jobs: vec![],
        }
    );
    // Every held job left the processing list; the one held elsewhere stays in its queue.
    assert!(!exists(&mut conn, &keys.processing(IDENTITY)).await);
    assert_eq!(
        lrange(&mut conn, &keys.queue("default")).await,
        [&*elsewhere_raw]
    );

    // Packed into the finished-record store, their own hashes gone.
    let record = packed(&mut conn, &keys, with_result.as_str()).await;
    assert_eq!(record.state, JobState::Succeeded);
    assert_eq!(record.finished_at, Some(now_secs()));
    assert_eq!(record.progress.percent, 100);
    assert_eq!(record.result, Some(serde_json::json!({"ok": true})));
    assert_eq!(record.rev, 3);

    let record = packed(&mut conn, &keys, no_result.as_str()).await;
    assert_eq!(record.state, JobState::Succeeded);
    assert_eq!(record.finished_at, Some(now_secs()));
    assert_eq!(record.progress.percent, 100);
    assert_eq!(record.result, None);
    assert_eq!(record.rev, 3);

    let record = packed(&mut conn, &keys, retry_jid).await;
    assert_eq!(record.state, JobState::Succeeded);
    assert_eq!(record.result, Some(serde_json::json!(42)));
    assert_eq!(record.error, None);
    // 3, +1 when fetched, +1 when acked.
    assert_eq!(record.rev, 5);

    for id in [with_result.as_str(), no_result.as_str(), retry_jid] {
        assert!(!exists(&mut conn, &keys.status(id)).await, "{id}");
        // The retention, from the end of the shard's time bucket.
        let spot = finished_store::spot(&keys, id, FINISHED_TTL as u64, now_secs());
        let ttl: i64 = cmd(&mut conn, &["TTL", &spot.key]).await;
        let width = finished_store::bucket_width(FINISHED_TTL as u64) as i64;
        assert!(
            (FINISHED_TTL - 5..=FINISHED_TTL + width).contains(&ttl),
            "ttl of {id}'s shard: {ttl}"
        );
    }
    assert!(!exists(&mut conn, &keys.status(untracked.as_str())).await);
    assert_eq!(
        hgetall(&mut conn, &keys.status(cancelled.as_str())).await,
        cancelled_before
    );
    assert_eq!(
        hgetall(&mut conn, &keys.status(elsewhere.as_str())).await,
        elsewhere_before
    );

    // Four ran (with_result, no_result, untracked, retry); the cancelled one did not.
    let processed: i64 = cmd(&mut conn, &["GET", &keys.stat_processed()]).await;
    assert_eq!(processed, 14);
    let daily: i64 = cmd(&mut conn, &["GET", &day_key]).await;
    assert_eq!(daily, 4);
    let ttl: i64 = cmd(&mut conn, &["TTL", &day_key]).await;
    assert!((1..=DAILY_TTL).contains(&ttl), "ttl {ttl}");
    assert!(ttl > DAILY_TTL - 60, "ttl {ttl}");
}

// 7.
#[tokio::test]
async fn lost_lease_takes_nothing_but_applies_acks() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "lost_lease_takes_nothing").await;
    let held = [job("p1"), job("p2")];
    lpush(&mut conn, &keys.processing(IDENTITY), &held).await;
    let queued: Vec<String> = ["q1", "q2", "q3"].iter().map(|j| job(j)).collect();
    lpush(&mut conn, &keys.queue("default"), &queued).await;
    let queue_before = lrange(&mut conn, &keys.queue("default")).await;

    let acks = [
        ack(&held[0], "p1", AckTracking::Untracked, Some("")),
        ack(&held[1], "p2", AckTracking::Untracked, Some("")),
    ];
    let reply = ack_fetch(&client, &acks, 5, &["default"]).await;

    assert_eq!(
        reply,
        Reply {
            lease: 0,
            acks: vec![1, 1],
            jobs: vec![],
        }
    );
    assert_eq!(
        lrange(&mut conn, &keys.queue("default")).await,
        queue_before
    );
    assert!(!exists(&mut conn, &keys.processing(IDENTITY)).await);
    // PEXPIRE on a missing key does not create it: the lease stays lost.
    assert!(!exists(&mut conn, &keys.lease(IDENTITY)).await);
    let processed: i64 = cmd(&mut conn, &["GET", &keys.stat_processed()]).await;
    assert_eq!(processed, 2);
}

// 8.
#[tokio::test]
async fn acks_alone_need_no_lease() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "acks_alone_need_no_lease").await;
    let held = [job("p1")];
    lpush(&mut conn, &keys.processing(IDENTITY), &held).await;
    lpush(&mut conn, &keys.queue("default"), &[job("q1")]).await;

    let acks = [ack(&held[0], "p1", AckTracking::Untracked, Some(""))];
    // Queues named, but want = 0: the wrapper sends no queue keys, nothing is taken and the
    // lease is not consulted.
    let reply = ack_fetch(&client, &acks, 0, &["default"]).await;

    assert_eq!(
        reply,
        Reply {
            lease: 1,
            acks: vec![1],
            jobs: vec![],
        }
    );
    assert!(!exists(&mut conn, &keys.processing(IDENTITY)).await);
    assert!(!exists(&mut conn, &keys.lease(IDENTITY)).await);
    assert_eq!(lrange(&mut conn, &keys.queue("default")).await, [job("q1")]);
    let processed: i64 = cmd(&mut conn, &["GET", &keys.stat_processed()]).await;
    assert_eq!(processed, 1);

    // No acks and nothing wanted: an empty cycle writes nothing.
    let reply = ack_fetch(&client, &[], 0, &[]).await;
    assert_eq!(
        reply,
        Reply {
            lease: 1,
            acks: vec![],
            jobs: vec![],
        }
    );
    assert!(!exists(&mut conn, &keys.lease(IDENTITY)).await);
}

// 9, the client's half (its encoder is private): what `push`, `push_bulk` and `enqueue`
// store starts with the jid, and a new job has no retry_count. The field order is part of
// the stored format: tools that read our entries may rely on it.
#[tokio::test]
async fn client_writes_the_jid_first() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "client_writes_the_jid_first").await;
    let pushed = client
        .push(NewJob::new(
            "Plain",
            vec![serde_json::json!({"jid": "inner"})],
        ))
        .await
        .unwrap();
    let untracked = {
        let mut j = NewJob::new("Quiet", vec![]);
        j.track_status = false;
        j
    };
    let bulk = client
        .push_bulk(vec![
            NewJob::new("Bulk", vec![serde_json::json!(1)]),
            untracked,
        ])
        .await
        .unwrap();
    let typed = client
        .enqueue_with(&Greet::new("t"), EnqueueOptions::new().owner("u"))
        .await
        .unwrap();

    let stored = lrange(&mut conn, &keys.queue("default")).await;
    let ids = [&pushed, &bulk[0], &bulk[1], &typed];
    assert_eq!(stored.len(), ids.len());
    for id in ids {
        let raw = stored.iter().find(|r| r.contains(id.as_str())).unwrap();
        let prefix = format!(r#"{{"jid":"{}","class":""#, id.as_str());
        assert!(raw.starts_with(&prefix), "{raw}");
        assert_eq!(JobPayload::from_json(raw.as_bytes()).unwrap().jid, *id);
    }

    // And fetching marks the tracked ones running; the untracked one has no record (2).
    grant_lease(&mut conn, &keys).await;
    let reply = ack_fetch(&client, &[], 10, &["default"]).await;
    let marks: HashMap<&str, i64> = reply
        .jobs
        .iter()
        .map(|(r, m)| {
            let id = ids.iter().find(|id| r.contains(id.as_str())).unwrap();
            (id.as_str(), *m)
        })
        .collect();
    assert_eq!(marks[pushed.as_str()], 1);
    assert_eq!(marks[bulk[0].as_str()], 1);
    assert_eq!(marks[bulk[1].as_str()], 2);
    assert_eq!(marks[typed.as_str()], 1);
}

/// Promotes up to 100 due members of `from` with the clock moved `offset_ms` ahead, as the
/// scheduler does; returns how many left the set.
async fn promote(client: &Client, from: PromoteFrom, offset_ms: i64) -> usize {
    scripts::promote(client, from, 100, offset_ms)
        .await
        .unwrap()
        .moved
}

// 10.
#[tokio::test]
async fn promote_keeps_the_jid_prefix() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "promote_keeps_the_jid_prefix").await;

    // A scheduled job: no enqueued_at until it is promoted.
    let scheduled = client
        .enqueue_in(&Greet::new("later"), Duration::from_secs(60))
        .await
        .unwrap();
    let in_schedule: Vec<String> = cmd(&mut conn, &["ZRANGE", &keys.schedule(), "0", "-1"]).await;
    assert_eq!(in_schedule.len(), 1);
    assert!(!in_schedule[0].contains("enqueued_at"));
    // Due once the clock is two minutes on.
    assert_eq!(promote(&client, PromoteFrom::Schedule, 120_000).await, 1);

    // A retry, as the worker writes it (retry_count right after jid), due long ago.
    let mut retry =
        JobPayload::from_json(br#"{"class":"Greet","args":[{"name":"again"}],"jid":"x"}"#).unwrap();
    retry.jid = JobId::new();
    retry.retry_count = Some(2);
    let retry_json = retry.to_json().unwrap();
    let _: () = cmd(
        &mut conn,
        &[
            "HSET",
            &keys.status(retry.jid.as_str()),
            "state",
            "retrying",
            "attempt",
            "3",
            "rev",
            "6",
        ],
    )
    .await;
    let _: i64 = cmd(&mut conn, &["ZADD", &keys.retry(), "1", &retry_json]).await;
    assert_eq!(promote(&client, PromoteFrom::Retry, 0).await, 1);

    let queue = lrange(&mut conn, &keys.queue("default")).await;
    assert_eq!(queue.len(), 2);
    let sched_raw = queue
        .iter()
        .find(|r| r.contains(scheduled.as_str()))
        .unwrap();
    let retry_raw = queue
        .iter()
        .find(|r| r.contains(retry.jid.as_str()))
        .unwrap();
    assert!(
        sched_raw.starts_with(&format!(r#"{{"jid":"{}","class":"#, scheduled.as_str())),
        "{sched_raw}"
    );
    assert!(
        retry_raw.starts_with(&format!(
            r#"{{"jid":"{}","retry_count":2,"class":"#,
            retry.jid.as_str()
        )),
        "{retry_raw}"
    );
    for (raw, before) in [(sched_raw, &in_schedule[0]), (retry_raw, &retry_json)] {
        // `enqueued_at` is appended before the final brace; the rest is byte for byte.
        let head = before.strip_suffix('}').unwrap();
        let tail = raw.strip_prefix(head).unwrap();
        let stamp = tail
            .strip_prefix(r#","enqueued_at":"#)
            .and_then(|t| t.strip_suffix('}'))
            .unwrap();
        assert!(stamp.parse::<f64>().unwrap() > 1_700_000_000.0, "{raw}");
        let value: serde_json::Value = serde_json::from_str(raw).unwrap();
        assert!(value["enqueued_at"].is_number());
        assert!(
            JobPayload::from_json(raw.as_bytes())
                .unwrap()
                .enqueued_at
                .is_some()
        );
    }

    // Both fetch and are marked running, with the attempt read from retry_count.
    grant_lease(&mut conn, &keys).await;
    let reply = ack_fetch(&client, &[], 10, &["default"]).await;
    assert_eq!(reply.marks(), [1, 1]);
    let sched = hgetall(&mut conn, &keys.status(scheduled.as_str())).await;
    assert_eq!(
        (sched["state"].as_str(), sched["attempt"].as_str()),
        ("running", "1")
    );
    let retried = hgetall(&mut conn, &keys.status(retry.jid.as_str())).await;
    assert_eq!(
        (
            retried["state"].as_str(),
            retried["attempt"].as_str(),
            retried["rev"].as_str()
        ),
        ("running", "4", "8")
    );
}

// 11. Keys of the wrong type never stop a worker: a queue key that is not a list is
// skipped (the other queues are still taken from), and an acked job whose record's key is
// not a hash is acked all the same, its key left alone.
#[tokio::test]
async fn keys_of_the_wrong_type_are_stepped_over() {
    let redis = TestRedis::start();
    let (client, keys, mut conn) = setup(&redis, "keys_of_the_wrong_type").await;
    grant_lease(&mut conn, &keys).await;
    let _: () = cmd(&mut conn, &["SET", &keys.queue("jammed"), "x"]).await;
    lpush(&mut conn, &keys.queue("default"), &[job("a1"), job("a2")]).await;
    let reply = ack_fetch(&client, &[], 10, &["jammed", "default"]).await;
    assert_eq!(reply.raws(), [job("a1"), job("a2")]);

    let _: () = cmd(&mut conn, &["SET", &keys.status("a1"), "x"]).await;
    let (a1, a2) = (job("a1"), job("a2"));
    let acks = [
        ack(&a1, "a1", AckTracking::Tracked, Some("")),
        ack(&a2, "a2", AckTracking::Tracked, Some("")),
    ];
    let reply = ack_fetch(&client, &acks, 0, &[]).await;
    assert_eq!(reply.acks, [1, 1]);
    assert!(
        lrange(&mut conn, &keys.processing(IDENTITY))
            .await
            .is_empty()
    );
    let planted: String = cmd(&mut conn, &["GET", &keys.status("a1")]).await;
    assert_eq!(planted, "x");
    assert_eq!(
        packed(&mut conn, &keys, "a2").await.state,
        JobState::Succeeded
    );
    // A shard of another type: the record stays in the job's own hash.
    let spot = finished_store::spot(&keys, "a3", FINISHED_TTL as u64, now_secs());
    let _: () = cmd(&mut conn, &["SET", &spot.key, "x"]).await;
    let a3 = job("a3");
    lpush(&mut conn, &keys.processing(IDENTITY), &[&a3]).await;
    let reply = ack_fetch(
        &client,
        &[ack(&a3, "a3", AckTracking::Tracked, Some(""))],
        0,
        &[],
    )
    .await;
    assert_eq!(reply.acks, [1]);
    assert_eq!(
        hgetall(&mut conn, &keys.status("a3")).await["state"],
        "succeeded"
    );
    let planted: String = cmd(&mut conn, &["GET", &spot.key]).await;
    assert_eq!(planted, "x");
    let processed: String = cmd(&mut conn, &["GET", &keys.stat_processed()]).await;
    assert_eq!(processed, "3");
}
