//! The finished-record store end to end, through the wrappers the worker calls: a job
//! enqueued by the client, taken and started, then acked with the real clock; its record
//! read back with `Client::status` and the long poll's `scripts::watch`. Also what stays in
//! a job's own hash (caller-given ids, records that do not fit, the `hashes` setting,
//! records written before the store existed), retention per job type, and damaged or
//! planted keys.

mod common;

use common::{Greet, cmd, exists, hgetall};
use queue_core::scripts::{self, Ack, AckFetch, AckTracking, StartJob, Taken};
use queue_core::testing::TestRedis;
use queue_core::{
    Client, EnqueueOptions, JobId, JobPayload, JobState, Keys, Timestamp, finished_store,
};
use redis::aio::MultiplexedConnection;
use std::time::Duration;

const IDENTITY: &str = "host:1:nonce";
const DAY: Duration = Duration::from_secs(86_400);

struct Harness {
    client: Client,
    keys: Keys,
    conn: MultiplexedConnection,
}

impl Harness {
    async fn new(redis: &TestRedis, name: &str) -> Self {
        Self::with(redis, redis.config(name)).await
    }

    async fn with(redis: &TestRedis, config: queue_core::ClientConfig) -> Self {
        let client = Client::connect(config).await.unwrap();
        let keys = client.keys().clone();
        let mut conn = common::raw(redis).await;
        let _: () = cmd(
            &mut conn,
            &["SET", &keys.lease(IDENTITY), "1", "PX", "600000"],
        )
        .await;
        Self { client, keys, conn }
    }

    /// Takes the oldest job of `default`, marks it running, then acks it with `result`,
    /// kept `retention`, as the worker does. Returns its id.
    async fn run_one(&self, result: &str, retention: Duration) -> JobId {
        self.run_one_at(result, retention, 0.0).await
    }

    /// [`Harness::run_one`] by a worker whose clock is `skew` seconds off.
    async fn run_one_at(&self, result: &str, retention: Duration, skew: f64) -> JobId {
        let now = || Timestamp::from_secs_f64(Timestamp::now().as_secs_f64() + skew);
        let call = AckFetch {
            identity: IDENTITY,
            acks: &[],
            want: 1,
            queues: &["default"],
            lease_ttl: Duration::from_secs(60),
            now: now(),
        };
        let taken = scripts::ack_fetch(&self.client, &call).await.unwrap().taken;
        let Taken::Jobs(jobs) = taken else {
            panic!("lease lost")
        };
        let [raw] = &jobs[..] else {
            panic!("took {} jobs", jobs.len())
        };
        let job = JobPayload::from_json(raw).unwrap();
        let start = StartJob {
            jid: job.jid.as_str(),
            attempt: job.attempt(),
            queue: &job.queue,
            class: &job.class,
            tracked: true,
        };
        scripts::start(&self.client, &[start], now()).await.unwrap();
        let ack = Ack {
            raw,
            jid: job.jid.as_str(),
            tracking: AckTracking::Tracked,
            result: Some(result),
            retention,
        };
        let call = AckFetch {
            acks: &[ack],
            want: 0,
            now: now(),
            ..call
        };
        let acked = scripts::ack_fetch(&self.client, &call).await.unwrap();
        assert_eq!(acked.acked, [true]);
        job.jid
    }

    async fn shard_of(&mut self, id: &JobId, keep: Duration) -> (String, Option<String>) {
        let spot = finished_store::spot(
            &self.keys,
            id.as_str(),
            keep.as_secs(),
            Timestamp::now().as_secs_f64(),
        );
        let value: Option<String> = cmd(&mut self.conn, &["HGET", &spot.key, id.as_str()]).await;
        (spot.key, value)
    }
}

#[tokio::test]
async fn a_succeeded_record_is_packed_and_reads_back_whole() {
    let redis = TestRedis::start();
    let mut h = Harness::new(&redis, "packed_reads_back").await;
    let before = Timestamp::now().as_secs_f64();
    let id = h
        .client
        .enqueue_with(&Greet::new("a"), EnqueueOptions::new().owner("acct-7"))
        .await
        .unwrap();
    let queued = h.client.status(&id).await.unwrap().unwrap();
    assert_eq!(h.run_one(r#"{"rows":3}"#, DAY).await, id);

    assert!(!exists(&mut h.conn, &h.keys.status(id.as_str())).await);
    let (shard, packed) = h.shard_of(&id, DAY).await;
    let packed = packed.expect("packed into its shard");
    assert!(
        packed.len() <= finished_store::LISTPACK_VALUE_LIMIT,
        "{packed}"
    );
    let encoding: String = cmd(&mut h.conn, &["OBJECT", "ENCODING", &shard]).await;
    assert_eq!(encoding, "listpack");
    let ttl: i64 = cmd(&mut h.conn, &["TTL", &shard]).await;
    let width = finished_store::bucket_width(DAY.as_secs()) as i64;
    assert!(
        (86_400 - 5..=86_400 + width).contains(&ttl),
        "shard ttl {ttl}"
    );

    let s = h.client.status(&id).await.unwrap().unwrap();
    assert_eq!(s.state, JobState::Succeeded);
    assert_eq!(s.result, Some(serde_json::json!({"rows": 3})));
    assert_eq!(
        (s.queue.as_deref(), s.class.as_deref()),
        (Some("default"), Some("Greet"))
    );
    assert_eq!(s.owner.as_deref(), Some("acct-7"));
    assert_eq!((s.attempt, s.progress.percent, s.rev), (1, 100, 3));
    assert_eq!(s.error, None);
    // Times to the millisecond, in order.
    let ms = |t: Option<f64>| (t.unwrap() * 1000.0).round();
    assert_eq!(ms(s.created_at), ms(queued.created_at));
    assert_eq!(ms(s.enqueued_at), ms(queued.enqueued_at));
    let (started, finished) = (s.started_at.unwrap(), s.finished_at.unwrap());
    assert!(before - 0.001 <= started && started <= finished, "{s:?}");
    assert!(finished <= Timestamp::now().as_secs_f64() + 0.001);

    // The long poll's read finds it too, terminal, so it answers at once.
    let watched = scripts::watch(&h.client, id.as_str(), Duration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(watched.status, s);
    assert!(!watched.announced);
}

#[tokio::test]
async fn records_that_must_stay_at_their_own_key_do() {
    let redis = TestRedis::start();
    let mut h = Harness::new(&redis, "own_key_records").await;

    // A caller-given id: an enqueue with the same id must stay refused while the record
    // lasts, which needs the record at its own key.
    let given = JobId::parse("order-1234").unwrap();
    let options = || EnqueueOptions::new().job_id(given.clone());
    h.client
        .enqueue_with(&Greet::new("g"), options())
        .await
        .unwrap();
    h.run_one("", DAY).await;
    let record = hgetall(&mut h.conn, &h.keys.status(given.as_str())).await;
    assert_eq!(record["state"], "succeeded");
    assert!(h.shard_of(&given, DAY).await.1.is_none());
    let ttl: i64 = cmd(&mut h.conn, &["TTL", &h.keys.status(given.as_str())]).await;
    assert!((86_390..=86_400).contains(&ttl), "ttl {ttl}");
    assert_eq!(
        h.client
            .enqueue_with(&Greet::new("g"), options())
            .await
            .unwrap(),
        given
    );
    let queued: i64 = cmd(&mut h.conn, &["LLEN", &h.keys.queue("default")]).await;
    assert_eq!(queued, 0, "the repeated id was refused");

    // A result too long to pack: the record keeps its own hash, with the job's retention.
    let long = format!("\"{}\"", "x".repeat(80));
    h.client.enqueue(&Greet::new("l")).await.unwrap();
    let id = h.run_one(&long, Duration::from_secs(600)).await;
    assert!(h.shard_of(&id, Duration::from_secs(600)).await.1.is_none());
    let ttl: i64 = cmd(&mut h.conn, &["TTL", &h.keys.status(id.as_str())]).await;
    assert!((590..=600).contains(&ttl), "ttl {ttl}");
    let s = h.client.status(&id).await.unwrap().unwrap();
    assert_eq!(s.result, Some(serde_json::Value::String("x".repeat(80))));

    // A separator in a text field (the class name) cannot be packed either.
    h.client
        .push(queue_core::NewJob {
            class: "Odd|Class".into(),
            ..queue_core::NewJob::typed(&Greet::new("o"), EnqueueOptions::new()).unwrap()
        })
        .await
        .unwrap();
    let id = h.run_one("", DAY).await;
    assert_eq!(
        hgetall(&mut h.conn, &h.keys.status(id.as_str())).await["class"],
        "Odd|Class"
    );
    assert_eq!(
        h.client.status(&id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
}

#[tokio::test]
async fn the_hashes_setting_and_records_written_before_the_store_read_as_before() {
    let redis = TestRedis::start();
    let config = redis
        .config("hashes_setting")
        .packed_finished_records(false);
    let mut old = Harness::with(&redis, config).await;
    old.client.enqueue(&Greet::new("h")).await.unwrap();
    let id = old.run_one("7", DAY).await;
    let record = hgetall(&mut old.conn, &old.keys.status(id.as_str())).await;
    assert_eq!(
        (record["state"].as_str(), record["result"].as_str()),
        ("succeeded", "7")
    );
    assert!(old.shard_of(&id, DAY).await.1.is_none());

    // A reader with packing on (a new web process during a rolling deploy) reads it, and a
    // record exactly as an older version wrote it.
    let new = Harness::new(&redis, "hashes_setting").await;
    assert_eq!(
        new.client.status(&id).await.unwrap().unwrap().result,
        Some(serde_json::json!(7))
    );
    let legacy = JobId::new();
    let _: () = cmd(
        &mut common::raw(&redis).await,
        &[
            "HSET",
            &new.keys.status(legacy.as_str()),
            "state",
            "succeeded",
            "finished_at",
            "1764650000.5",
            "result",
            "\"old\"",
            "rev",
            "4",
        ],
    )
    .await;
    let s = new.client.status(&legacy).await.unwrap().unwrap();
    assert_eq!((s.state, s.rev), (JobState::Succeeded, 4));
    assert_eq!(s.result, Some(serde_json::json!("old")));
}

#[tokio::test]
async fn retention_per_job_type_is_kept_and_found_by_readers_that_did_not_know_it() {
    let redis = TestRedis::start();
    let mut h = Harness::new(&redis, "retention_per_type").await;
    // A reader whose copy of the retention periods predates the first ten-minute record.
    let reader = Client::connect(redis.config("retention_per_type"))
        .await
        .unwrap();
    let unknown = JobId::new();
    assert!(reader.status(&unknown).await.unwrap().is_none());

    let ten_minutes = Duration::from_secs(600);
    h.client.enqueue(&Greet::new("t")).await.unwrap();
    let id = h.run_one("", ten_minutes).await;
    let (shard, packed) = h.shard_of(&id, ten_minutes).await;
    assert!(packed.is_some());
    assert!(shard.contains(":done:600:"), "{shard}");
    let ttl: i64 = cmd(&mut h.conn, &["TTL", &shard]).await;
    assert!((595..=660).contains(&ttl), "ttl {ttl}");
    let keeps: Vec<String> = cmd(&mut h.conn, &["SMEMBERS", &h.keys.finished_keeps()]).await;
    assert_eq!(keeps, ["600"]);
    assert_eq!(
        reader.status(&id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );

    // Zero keeps no record at all.
    h.client.enqueue(&Greet::new("z")).await.unwrap();
    let id = h.run_one("", Duration::ZERO).await;
    assert!(!exists(&mut h.conn, &h.keys.status(id.as_str())).await);
    assert!(h.shard_of(&id, Duration::ZERO).await.1.is_none());
    assert!(h.client.status(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn planted_and_damaged_keys_cost_one_record_at_most() {
    let redis = TestRedis::start();
    let mut h = Harness::new(&redis, "planted_store_keys").await;
    // A keeps set of another type: packing still works, and readers still look in the
    // default period.
    let _: () = cmd(&mut h.conn, &["SET", &h.keys.finished_keeps(), "x"]).await;
    h.client.enqueue(&Greet::new("k")).await.unwrap();
    let id = h.run_one("", DAY).await;
    assert!(h.shard_of(&id, DAY).await.1.is_some());
    assert_eq!(
        h.client.status(&id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );

    // A crafted value in a shard reads as no record, and does not fail the read.
    let crafted = JobId::new();
    let (shard, _) = h.shard_of(&crafted, DAY).await;
    let _: () = cmd(&mut h.conn, &["HSET", &shard, crafted.as_str(), "9|junk"]).await;
    assert!(h.client.status(&crafted).await.unwrap().is_none());
    assert!(
        scripts::watch(&h.client, crafted.as_str(), Duration::from_secs(1))
            .await
            .unwrap()
            .is_none()
    );

    // A shard of another type among the candidates is stepped over, so a record in an
    // older bucket is still found.
    let candidates = finished_store::candidates(
        &h.keys,
        id.as_str(),
        &[DAY.as_secs()],
        Timestamp::now().as_secs_f64(),
    );
    let newest = &candidates[0];
    assert_ne!(newest, &h.shard_of(&id, DAY).await.0);
    let _: () = cmd(&mut h.conn, &["SET", newest, "x"]).await;
    assert_eq!(
        h.client.status(&id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
}

#[tokio::test]
async fn an_empty_owner_reads_back_as_it_was_recorded() {
    let redis = TestRedis::start();
    let h = Harness::new(&redis, "empty_owner").await;
    // An owner that is there but empty is not "no owner": an access hook that treats a
    // record without an owner as public must not see this one turn public when it succeeds.
    let id = h
        .client
        .enqueue_with(&Greet::new("e"), EnqueueOptions::new().owner(""))
        .await
        .unwrap();
    let queued = h.client.status(&id).await.unwrap().unwrap();
    assert_eq!(queued.owner.as_deref(), Some(""));
    h.run_one("", DAY).await;
    let done = h.client.status(&id).await.unwrap().unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.owner.as_deref(), Some(""), "{done:?}");
}

#[tokio::test]
async fn a_worker_whose_clock_is_off_by_hours_leaves_records_readers_find() {
    let redis = TestRedis::start();
    let h = Harness::new(&redis, "skewed_worker").await;
    let hours = 3.0 * 3_600.0;
    for skew in [hours, -hours, 40.0 * 86_400.0] {
        h.client.enqueue(&Greet::new("s")).await.unwrap();
        let id = h.run_one_at("1", DAY, skew).await;
        let found = h.client.status(&id).await.unwrap();
        assert_eq!(
            found.map(|s| (s.state, s.result)),
            Some((JobState::Succeeded, Some(serde_json::json!(1)))),
            "worker clock off by {skew} s"
        );
    }
    // A short retention has one-minute buckets: two minutes off is already too far.
    let ten_minutes = Duration::from_secs(600);
    h.client.enqueue(&Greet::new("m")).await.unwrap();
    let id = h.run_one_at("", ten_minutes, 120.0).await;
    assert!(h.client.status(&id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_watched_record_of_a_type_that_keeps_none_announces_its_end() {
    use futures_util::StreamExt;
    let redis = TestRedis::start();
    let h = Harness::new(&redis, "watched_keep_zero").await;
    let mut changes = std::pin::pin!(h.client.status_changes().await.unwrap());
    let id = h.client.enqueue(&Greet::new("w")).await.unwrap();
    let watched = scripts::watch(&h.client, id.as_str(), Duration::from_secs(20))
        .await
        .unwrap()
        .unwrap();
    assert!(watched.announced);
    h.run_one("", Duration::ZERO).await;
    // start.lua announces the start; the ack must announce the end (the record is gone), or
    // a long poll waits its whole wait and then answers `running` for a finished job.
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while seen.len() < 2 {
        match tokio::time::timeout_at(deadline, changes.next()).await {
            Ok(Some(change)) if change.job == id => seen.push(change.rev),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    assert_eq!(seen, [2, 3], "announcements of {id}");
    assert!(h.client.status(&id).await.unwrap().is_none());
}
