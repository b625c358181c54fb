//! Enqueue: the raw Redis state after immediate, scheduled, bulk and repeated enqueues.

mod common;

use common::{Greet, Tick, all_keys, cmd, now_secs, raw, redis_time};
use futures_util::StreamExt;
use queue_core::testing::TestRedis;
use queue_core::{Client, EnqueueOptions, JobId, JobPayload, NewJob, Retry};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

/// Thirty days, the default retention of a live job's status record.
const ACTIVE_TTL: i64 = 30 * 24 * 3600;

#[tokio::test]
async fn enqueue_writes_a_sidekiq_entry_and_a_status_record() {
    let redis = TestRedis::start();
    let config = redis.config("enqueue_writes_a_sidekiq_entry_and_a_status_record");
    let client = Client::connect(config.clone()).await.unwrap();
    let keys = client.keys().clone();
    assert_eq!(keys.prefix(), config.prefix);
    let mut conn = raw(&redis).await;

    // Idle workers wait on the wake channel: the enqueue must announce the queue there.
    let mut wake = redis::Client::open(redis.url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    wake.subscribe(keys.wake_channel()).await.unwrap();

    let before = now_secs();
    let id = client.enqueue(&Greet::new("ada")).await.unwrap();
    let after = now_secs();

    let entries: Vec<String> = cmd(&mut conn, &["LRANGE", &keys.queue("default"), "0", "-1"]).await;
    assert_eq!(entries.len(), 1);
    let job: Value = serde_json::from_str(&entries[0]).unwrap();
    assert_eq!(job["class"], "Greet");
    assert_eq!(job["args"], json!([{"name": "ada"}]));
    assert_eq!(job["jid"], id.as_str());
    assert_eq!(job["queue"], "default");
    assert_eq!(job["retry"], true);
    // Float epoch seconds, which every Sidekiq version reads.
    for field in ["created_at", "enqueued_at"] {
        assert!(job[field].is_f64(), "{field} is {}", job[field]);
        let t = job[field].as_f64().unwrap();
        assert!((before..=after).contains(&t), "{field} = {t}");
    }
    assert_eq!(job.as_object().unwrap().len(), 7, "no other fields: {job}");
    assert_eq!(
        JobPayload::from_json(entries[0].as_bytes()).unwrap().jid,
        id
    );

    let queues: Vec<String> = cmd(&mut conn, &["SMEMBERS", &keys.queues()]).await;
    assert_eq!(queues, ["default"]);

    let status_key = keys.status(id.as_str());
    let record: HashMap<String, String> = cmd(&mut conn, &["HGETALL", &status_key]).await;
    assert_eq!(record["state"], "queued");
    assert_eq!(record["queue"], "default");
    assert_eq!(record["class"], "Greet");
    let created: f64 = record["created_at"].parse().unwrap();
    assert!((created - job["created_at"].as_f64().unwrap()).abs() < 1e-5);
    assert_eq!(record["enqueued_at"], record["created_at"]);
    // `attempt` and `rev` are left out: absent, they read as 0 and 1.
    assert_eq!(record.len(), 5, "no arguments in the record: {record:?}");
    let status = client.status(&id).await.unwrap().unwrap();
    assert_eq!((status.attempt, status.rev), (0, 1));
    let ttl: i64 = cmd(&mut conn, &["TTL", &status_key]).await;
    assert!((ACTIVE_TTL - 10..=ACTIVE_TTL).contains(&ttl), "ttl {ttl}");

    let message = tokio::time::timeout(common::DEADLINE, wake.on_message().next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.get_channel_name(), keys.wake_channel());
    assert_eq!(message.get_payload::<String>().unwrap(), "default");

    // The queue list, the queues set and the one status record: nothing else.
    let mut expected = vec![keys.queue("default"), keys.queues(), status_key];
    expected.sort();
    assert_eq!(all_keys(&redis, &mut conn).await, expected);
}

#[tokio::test]
async fn options_set_queue_retry_and_owner() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("options_set_queue_retry_and_owner"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    let id = client
        .enqueue_with(
            &Greet::new("bo"),
            EnqueueOptions::new()
                .queue("critical")
                .retry(Retry::Max(3))
                .owner("user-42"),
        )
        .await
        .unwrap();
    let none = client
        .enqueue_with(
            &Greet::new("cy"),
            EnqueueOptions::new().retry(Retry::Disabled),
        )
        .await
        .unwrap();

    let critical: Vec<String> =
        cmd(&mut conn, &["LRANGE", &keys.queue("critical"), "0", "-1"]).await;
    let job: Value = serde_json::from_str(&critical[0]).unwrap();
    assert_eq!(
        (job["queue"].clone(), job["retry"].clone()),
        (json!("critical"), json!(3))
    );
    assert_eq!(job["jid"], id.as_str());
    let default: Vec<String> = cmd(&mut conn, &["LRANGE", &keys.queue("default"), "0", "-1"]).await;
    let job: Value = serde_json::from_str(&default[0]).unwrap();
    assert_eq!(
        (job["jid"].clone(), job["retry"].clone()),
        (json!(none.as_str()), json!(false))
    );

    let mut queues: Vec<String> = cmd(&mut conn, &["SMEMBERS", &keys.queues()]).await;
    queues.sort();
    assert_eq!(queues, ["critical", "default"]);
    let owner: String = cmd(&mut conn, &["HGET", &keys.status(id.as_str()), "owner"]).await;
    assert_eq!(owner, "user-42");
    let queue: String = cmd(&mut conn, &["HGET", &keys.status(id.as_str()), "queue"]).await;
    assert_eq!(queue, "critical");
}

#[tokio::test]
async fn untracked_jobs_keep_no_status_record() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("untracked_jobs_keep_no_status_record"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    let id = client.enqueue(&Tick(7)).await.unwrap();

    let entries: Vec<String> = cmd(&mut conn, &["LRANGE", &keys.queue("ticks"), "0", "-1"]).await;
    assert_eq!(entries.len(), 1);
    let job = JobPayload::from_json(entries[0].as_bytes()).unwrap();
    assert_eq!((job.class.as_str(), job.jid.clone()), ("Tick", id.clone()));
    assert_eq!(job.args, [json!(7)]);
    let mut expected = vec![keys.queue("ticks"), keys.queues()];
    expected.sort();
    assert_eq!(all_keys(&redis, &mut conn).await, expected);
    assert!(client.status(&id).await.unwrap().is_none());
}

#[tokio::test]
async fn scheduled_enqueue_goes_to_the_schedule_set_at_redis_time() {
    let redis = TestRedis::start();
    let client =
        Client::connect(redis.config("scheduled_enqueue_goes_to_the_schedule_set_at_redis_time"))
            .await
            .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    let before = redis_time(&mut conn).await;
    let id = client
        .enqueue_in(&Greet::new("later"), Duration::from_secs(60))
        .await
        .unwrap();
    let after = redis_time(&mut conn).await;

    let scheduled: Vec<(String, f64)> = cmd(
        &mut conn,
        &["ZRANGE", &keys.schedule(), "0", "-1", "WITHSCORES"],
    )
    .await;
    assert_eq!(scheduled.len(), 1);
    let (member, score) = &scheduled[0];
    // The delay is added to Redis's clock, not to this machine's.
    assert!(
        (before + 60.0..=after + 60.0).contains(score),
        "score {score}"
    );
    let job: Value = serde_json::from_str(member).unwrap();
    assert_eq!(job["jid"], id.as_str());
    assert_eq!(job["class"], "Greet");
    assert!(job["created_at"].is_f64());
    assert!(
        job.get("enqueued_at").is_none(),
        "Sidekiq removes enqueued_at while scheduled"
    );
    assert!(job.get("at").is_none(), "`at` is client-side only");

    let record: HashMap<String, String> =
        cmd(&mut conn, &["HGETALL", &keys.status(id.as_str())]).await;
    assert_eq!(record["state"], "scheduled");
    assert!((record["run_at"].parse::<f64>().unwrap() - score).abs() < 1e-5);
    assert!(!record.contains_key("enqueued_at"));

    // Nothing went to a queue.
    let mut expected = vec![keys.schedule(), keys.status(id.as_str())];
    expected.sort();
    assert_eq!(all_keys(&redis, &mut conn).await, expected);
}

#[tokio::test]
async fn enqueue_at_scores_the_given_time() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("enqueue_at_scores_the_given_time"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    let at = SystemTime::now() + Duration::from_secs(3600);
    let id = client.enqueue_at(&Tick(1), at).await.unwrap();

    let scheduled: Vec<(String, f64)> = cmd(
        &mut conn,
        &["ZRANGE", &keys.schedule(), "0", "-1", "WITHSCORES"],
    )
    .await;
    let expected = queue_core::Timestamp::from_system_time(at).as_secs_f64();
    assert_eq!(scheduled.len(), 1);
    assert!(
        (scheduled[0].1 - expected).abs() < 1e-5,
        "{} vs {expected}",
        scheduled[0].1
    );
    assert_eq!(
        JobPayload::from_json(scheduled[0].0.as_bytes())
            .unwrap()
            .jid,
        id
    );
    // Untracked: the schedule set only.
    assert_eq!(all_keys(&redis, &mut conn).await, [keys.schedule()]);
}

#[tokio::test]
async fn bulk_enqueue_of_10000_jobs() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("bulk_enqueue_of_10000_jobs"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    let jobs: Vec<Greet> = (0..10_000).map(|i| Greet::new(&format!("n{i}"))).collect();
    let ids = client.enqueue_bulk(&jobs).await.unwrap();
    assert_eq!(ids.len(), 10_000);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        10_000,
        "ids are unique"
    );

    let entries: Vec<String> = cmd(&mut conn, &["LRANGE", &keys.queue("default"), "0", "-1"]).await;
    assert_eq!(entries.len(), 10_000);
    let mut by_jid: HashMap<JobId, JobPayload> = entries
        .iter()
        .map(|e| {
            let job = JobPayload::from_json(e.as_bytes()).unwrap();
            (job.jid.clone(), job)
        })
        .collect();
    for (id, job) in ids.iter().zip(&jobs) {
        let stored = by_jid.remove(id).unwrap();
        assert_eq!(stored.args, [json!({"name": job.name})]);
        assert!(stored.enqueued_at.is_some());
    }
    // One status record per job, plus the list and the queues set.
    assert_eq!(all_keys(&redis, &mut conn).await.len(), 10_002);
    let record: HashMap<String, String> =
        cmd(&mut conn, &["HGETALL", &keys.status(ids[9_999].as_str())]).await;
    assert_eq!(
        (record["state"].as_str(), record["class"].as_str()),
        ("queued", "Greet")
    );
    let ttl: i64 = cmd(&mut conn, &["TTL", &keys.status(ids[0].as_str())]).await;
    assert!(ttl > ACTIVE_TTL - 60, "ttl {ttl}");
}

#[tokio::test]
async fn bulk_enqueue_of_untracked_jobs_writes_only_the_queue() {
    let redis = TestRedis::start();
    let client =
        Client::connect(redis.config("bulk_enqueue_of_untracked_jobs_writes_only_the_queue"))
            .await
            .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    assert!(client.enqueue_bulk::<Tick>(&[]).await.unwrap().is_empty());
    assert!(
        all_keys(&redis, &mut conn).await.is_empty(),
        "an empty bulk writes nothing"
    );
    let jobs: Vec<Tick> = (0..2_500).map(Tick).collect();
    client.enqueue_bulk(&jobs).await.unwrap();

    let len: usize = cmd(&mut conn, &["LLEN", &keys.queue("ticks")]).await;
    assert_eq!(len, 2_500);
    let mut expected = vec![keys.queue("ticks"), keys.queues()];
    expected.sort();
    assert_eq!(all_keys(&redis, &mut conn).await, expected);
}

#[tokio::test]
async fn bulk_push_keeps_each_jobs_own_class_queue_and_owner() {
    let redis = TestRedis::start();
    let client =
        Client::connect(redis.config("bulk_push_keeps_each_jobs_own_class_queue_and_owner"))
            .await
            .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    let mut jobs = vec![
        NewJob::new("Alpha", vec![json!(1)]),
        NewJob::new("Beta", vec![json!(2)]),
        NewJob::new("Alpha", vec![json!(3)]),
    ];
    jobs[1].options = EnqueueOptions::new().owner("user-7");
    jobs[2].queue = "other".to_owned();
    let later = NewJob {
        options: EnqueueOptions::new().delay(Duration::from_secs(600)),
        ..NewJob::new("Gamma", vec![json!(4)])
    };
    jobs.push(later);
    let ids = client.push_bulk(jobs).await.unwrap();

    let record = |i: usize| {
        let key = keys.status(ids[i].as_str());
        let mut conn = conn.clone();
        async move { cmd::<HashMap<String, String>>(&mut conn, &["HGETALL", &key]).await }
    };
    let (a, b, c, d) = (
        record(0).await,
        record(1).await,
        record(2).await,
        record(3).await,
    );
    assert_eq!((a["class"].as_str(), a.get("owner")), ("Alpha", None));
    assert_eq!(
        (b["class"].as_str(), b["owner"].as_str()),
        ("Beta", "user-7")
    );
    assert_eq!(
        (c["class"].as_str(), c["queue"].as_str()),
        ("Alpha", "other")
    );
    // A job with a run time goes to the schedule set, not straight into its queue.
    assert_eq!(d["state"], "scheduled");
    assert!(d.contains_key("run_at"));
    let default: Vec<String> = cmd(&mut conn, &["LRANGE", &keys.queue("default"), "0", "-1"]).await;
    let jids: HashSet<JobId> = default
        .iter()
        .map(|e| JobPayload::from_json(e.as_bytes()).unwrap().jid)
        .collect();
    assert_eq!(jids, HashSet::from([ids[0].clone(), ids[1].clone()]));
    let other: usize = cmd(&mut conn, &["LLEN", &keys.queue("other")]).await;
    assert_eq!(other, 1);
    let scheduled: Vec<String> = cmd(&mut conn, &["ZRANGE", &keys.schedule(), "0", "-1"]).await;
    assert_eq!(scheduled.len(), 1);
    assert_eq!(
        JobPayload::from_json(scheduled[0].as_bytes()).unwrap().jid,
        ids[3]
    );
}

#[tokio::test]
async fn re_enqueue_of_the_same_id_is_idempotent() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("re_enqueue_of_the_same_id_is_idempotent"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    let id = JobId::parse("order-1234").unwrap();
    let opts = || EnqueueOptions::new().job_id(id.clone());
    let first = client
        .enqueue_with(&Greet::new("once"), opts())
        .await
        .unwrap();
    let status_key = keys.status(id.as_str());
    let record: HashMap<String, String> = cmd(&mut conn, &["HGETALL", &status_key]).await;
    let second = client
        .enqueue_with(&Greet::new("twice"), opts())
        .await
        .unwrap();
    assert_eq!((first.clone(), second), (id.clone(), id.clone()));

    let entries: Vec<String> = cmd(&mut conn, &["LRANGE", &keys.queue("default"), "0", "-1"]).await;
    assert_eq!(entries.len(), 1, "one job for one id");
    let job = JobPayload::from_json(entries[0].as_bytes()).unwrap();
    assert_eq!(job.args, [json!({"name": "once"})], "the first push wins");
    let again: HashMap<String, String> = cmd(&mut conn, &["HGETALL", &status_key]).await;
    assert_eq!(again, record, "the record was not rewritten");

    // The same id scheduled, or inside a bulk push, is still one job.
    let again = client
        .enqueue_with(&Greet::new("thrice"), opts().delay(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(again, id);
    let scheduled: usize = cmd(&mut conn, &["ZCARD", &keys.schedule()]).await;
    assert_eq!(scheduled, 0);
    let fresh = JobId::new();
    let bulk = vec![
        NewJob {
            options: opts(),
            ..NewJob::new("Greet", vec![json!({"name": "bulk"})])
        },
        NewJob {
            options: EnqueueOptions::new().job_id(fresh.clone()),
            ..NewJob::new("Greet", vec![])
        },
        NewJob {
            options: EnqueueOptions::new().job_id(fresh.clone()),
            ..NewJob::new("Greet", vec![])
        },
    ];
    client.push_bulk(bulk).await.unwrap();
    let entries: Vec<String> = cmd(&mut conn, &["LRANGE", &keys.queue("default"), "0", "-1"]).await;
    let jids: Vec<JobId> = entries
        .iter()
        .map(|e| JobPayload::from_json(e.as_bytes()).unwrap().jid)
        .collect();
    assert_eq!(jids, [fresh, id]);
}

#[tokio::test]
async fn scheduled_re_enqueue_of_the_same_id_is_idempotent() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("scheduled_re_enqueue_of_the_same_id_is_idempotent"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    let id = JobId::new();
    for delay in [60, 120] {
        let opts = EnqueueOptions::new()
            .job_id(id.clone())
            .delay(Duration::from_secs(delay));
        assert_eq!(
            client.enqueue_with(&Greet::new("s"), opts).await.unwrap(),
            id
        );
    }
    let scheduled: Vec<(String, f64)> = cmd(
        &mut conn,
        &["ZRANGE", &keys.schedule(), "0", "-1", "WITHSCORES"],
    )
    .await;
    assert_eq!(scheduled.len(), 1);
    let now = redis_time(&mut conn).await;
    assert!(scheduled[0].1 < now + 61.0, "the first schedule wins");
}

#[tokio::test]
async fn bulk_checks_only_caller_given_ids_and_keeps_their_order() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("bulk_checks_only_caller_given_ids"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    // A caller-given id that already has a record (pushed singly), then a bulk in which it
    // sits between jobs whose ids the client generates, in the same chunk.
    let known = JobId::parse("invoice-77").unwrap();
    let with_id = |id: &JobId, name: &str| NewJob {
        options: EnqueueOptions::new().job_id(id.clone()),
        ..NewJob::new("Greet", vec![json!({ "name": name })])
    };
    client.push(with_id(&known, "first")).await.unwrap();
    let record_before: HashMap<String, String> =
        cmd(&mut conn, &["HGETALL", &keys.status(known.as_str())]).await;
    let new_given = JobId::parse("invoice-78").unwrap();
    let bulk = vec![
        NewJob::new("Greet", vec![json!({"name": "a"})]),
        with_id(&known, "second"),
        NewJob::new("Greet", vec![json!({"name": "b"})]),
        with_id(&new_given, "c"),
        with_id(&new_given, "c again"),
    ];
    let ids = client.push_bulk(bulk).await.unwrap();
    assert_eq!(
        (&ids[1], &ids[3], &ids[4]),
        (&known, &new_given, &new_given)
    );

    // LPUSH puts the newest first: read the list back in push order.
    let mut entries: Vec<String> =
        cmd(&mut conn, &["LRANGE", &keys.queue("default"), "0", "-1"]).await;
    entries.reverse();
    let pushed: Vec<(JobId, Value)> = entries
        .iter()
        .map(|e| {
            let job = JobPayload::from_json(e.as_bytes()).unwrap();
            (job.jid, job.args[0].clone())
        })
        .collect();
    assert_eq!(
        pushed,
        [
            (known.clone(), json!({"name": "first"})),
            (ids[0].clone(), json!({"name": "a"})),
            (ids[2].clone(), json!({"name": "b"})),
            (new_given.clone(), json!({"name": "c"})),
        ],
        "the known id is skipped, the repeated one pushed once, the rest in order"
    );
    let record_after: HashMap<String, String> =
        cmd(&mut conn, &["HGETALL", &keys.status(known.as_str())]).await;
    assert_eq!(record_after, record_before, "the known record is untouched");
    for id in [&ids[0], &ids[2], &new_given] {
        let record: HashMap<String, String> =
            cmd(&mut conn, &["HGETALL", &keys.status(id.as_str())]).await;
        let mut fields: Vec<&str> = record.keys().map(String::as_str).collect();
        fields.sort_unstable();
        // A caller-given id's record says so, so that it stays at its own key once finished.
        let expected: &[&str] = if id == &new_given {
            &[
                "class",
                "created_at",
                "enqueued_at",
                "given",
                "queue",
                "state",
            ]
        } else {
            &["class", "created_at", "enqueued_at", "queue", "state"]
        };
        assert_eq!(fields, expected);
        let s = client.status(id).await.unwrap().unwrap();
        assert_eq!((s.rev, s.attempt), (1, 0));
    }
}

#[tokio::test]
async fn enqueue_works_after_redis_forgets_its_scripts() {
    // SCRIPT FLUSH empties the whole server's script cache.
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("enqueue_after_script_flush"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;

    // A restarted Redis (or SCRIPT FLUSH) has no scripts: each call loads its own again.
    let _: () = cmd(&mut conn, &["SCRIPT", "FLUSH"]).await;
    client.enqueue(&Greet::new("one")).await.unwrap();
    let _: () = cmd(&mut conn, &["SCRIPT", "FLUSH"]).await;
    let jobs: Vec<Greet> = (0..1_500).map(|i| Greet::new(&format!("n{i}"))).collect();
    client.enqueue_bulk(&jobs).await.unwrap();
    let _: () = cmd(&mut conn, &["SCRIPT", "FLUSH"]).await;
    client
        .enqueue_in(&Greet::new("later"), Duration::from_secs(60))
        .await
        .unwrap();

    let len: usize = cmd(&mut conn, &["LLEN", &keys.queue("default")]).await;
    assert_eq!(len, 1_501);
    let scheduled: usize = cmd(&mut conn, &["ZCARD", &keys.schedule()]).await;
    assert_eq!(scheduled, 1);
}

/// A job scheduled further ahead than a live record's retention (30 days) keeps its record
/// until it runs and the usual retention after: it stays cancellable and its id known. (The
/// record used to expire 30 days after the enqueue, whatever the run time.)
#[tokio::test]
async fn a_record_outlives_a_schedule_far_ahead() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("schedule_far_ahead"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;
    let ahead = Duration::from_secs(90 * 24 * 3600);
    let id = client
        .enqueue_at(&Greet::new("far"), SystemTime::now() + ahead)
        .await
        .unwrap();
    let ttl: i64 = cmd(&mut conn, &["TTL", &client.keys().status(id.as_str())]).await;
    let active = queue_core::status::DEFAULT_ACTIVE_RETENTION.as_secs() as i64;
    let expected = ahead.as_secs() as i64 + active;
    assert!((expected - 10..=expected + 1).contains(&ttl), "ttl {ttl}");
    // A near schedule keeps the plain retention plus its wait.
    let soon = client
        .enqueue_in(&Greet::new("soon"), Duration::from_secs(60))
        .await
        .unwrap();
    let ttl: i64 = cmd(&mut conn, &["TTL", &client.keys().status(soon.as_str())]).await;
    assert!((active + 50..=active + 61).contains(&ttl), "ttl {ttl}");
}
