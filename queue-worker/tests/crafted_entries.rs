//! Crafted queue entries (written by hand, by another tool, or by an attacker with Redis
//! access): huge counters, payloads Lua reads but serde does not, foreign `null`s. Each one
//! ends in a defined place with its status record agreeing, and the worker keeps serving.

mod worker_in_process;

use queue_core::inspect::{Inspector, JobSet, Location};
use queue_core::testing::TestRedis;
use queue_core::{Client, Job, JobId, JobPayload, JobState, Retry};
use queue_worker::{Failure, JobContext, MALFORMED_CLASS, RunningWorker, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Fine;
impl Job for Fine {
    const NAME: &'static str = "Fine";
}

#[derive(Serialize, Deserialize)]
struct Fails;
impl Job for Fails {
    const NAME: &'static str = "Fails";
}

fn worker(client: &Client) -> RunningWorker {
    Worker::builder()
        .config(fast_config())
        .register(|_: Fine, _: JobContext| async { Ok::<_, Failure>("fine") })
        .register(|_: Fails, _: JobContext| async { Err::<(), _>(Failure::retry("no luck")) })
        .build(client.clone())
        .unwrap()
        .start()
}

/// Pushes `raw` into the default queue as a foreign client would, with a queued status
/// record for `jid` as our enqueue writes one.
async fn plant(redis: &TestRedis, client: &Client, jid: &str, entry: &[u8]) {
    let mut conn = raw(redis).await;
    let _: () = conn
        .hset_multiple(
            client.keys().status(jid),
            &[("state", "queued"), ("queue", "default")],
        )
        .await
        .unwrap();
    let _: () = conn
        .lpush(client.keys().queue("default"), entry)
        .await
        .unwrap();
}

/// A job pushed after the crafted entry runs: the worker still fetches.
async fn later_jobs_still_run(client: &Client) {
    let ok = client.enqueue(&Fine).await.unwrap();
    wait_for_state(client, &ok, JobState::Succeeded).await;
}

async fn members(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<JobPayload> {
    let raw: Vec<Vec<u8>> = conn.zrange(key, 0, -1).await.unwrap();
    raw.iter()
        .map(|j| JobPayload::from_json(j).unwrap())
        .collect()
}

#[tokio::test]
async fn an_unknown_class_deferred_70000_times_goes_dead_and_the_worker_keeps_fetching() {
    let redis = TestRedis::start();
    let client = client(&redis, "unknown_70000").await;
    let w = worker(&client);
    plant(
        &redis,
        &client,
        "crafted_unknown",
        br#"{"jid":"crafted_unknown","class":"FromTheNextDeploy","args":[],"queue":"default","unknown_class":70000}"#,
    )
    .await;
    later_jobs_still_run(&client).await;
    // Past the deferral limit the class is taken to be gone for good, not on its way.
    let id = JobId::parse("crafted_unknown").unwrap();
    wait_for_state(&client, &id, JobState::Dead).await;
    let mut conn = raw(&redis).await;
    let dead = members(&mut conn, &client.keys().dead()).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].jid.as_str(), "crafted_unknown");
    assert!(members(&mut conn, &client.keys().retry()).await.is_empty());
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unknown_class_under_the_limit_is_deferred_at_most_an_hour() {
    let redis = TestRedis::start();
    let client = client(&redis, "unknown_3").await;
    let w = worker(&client);
    plant(
        &redis,
        &client,
        "young_unknown",
        br#"{"jid":"young_unknown","class":"FromTheNextDeploy","args":[],"queue":"default","unknown_class":20}"#,
    )
    .await;
    let id = JobId::parse("young_unknown").unwrap();
    wait_for_state(&client, &id, JobState::Retrying).await;
    let mut conn = raw(&redis).await;
    let retry = members(&mut conn, &client.keys().retry()).await;
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].unknown_class, Some(21));
    let scored: Vec<(Vec<u8>, f64)> = conn
        .zrange_withscores(client.keys().retry(), 0, -1)
        .await
        .unwrap();
    let now = Inspector::new(&client)
        .redis_now()
        .await
        .unwrap()
        .as_secs_f64();
    let wait = scored[0].1 - now;
    assert!(
        wait <= 3601.0,
        "an unknown class waits at most an hour, not {wait} s"
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_job_with_retry_count_70000_goes_dead_instead_of_staying_running() {
    let redis = TestRedis::start();
    let client = client(&redis, "retry_70000").await;
    let w = worker(&client);
    plant(
        &redis,
        &client,
        "crafted_count",
        br#"{"jid":"crafted_count","retry_count":70000,"class":"Fails","args":[null],"queue":"default","retry":true}"#,
    )
    .await;
    let id = JobId::parse("crafted_count").unwrap();
    wait_for_state(&client, &id, JobState::Dead).await;
    let mut conn = raw(&redis).await;
    let dead = members(&mut conn, &client.keys().dead()).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].retry_count, Some(70001));
    let processing: i64 = conn
        .llen(client.keys().processing(&w.identity()))
        .await
        .unwrap();
    assert_eq!(processing, 0);
    later_jobs_still_run(&client).await;
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_job_at_the_largest_retry_count_goes_dead_without_overflowing() {
    let redis = TestRedis::start();
    let client = client(&redis, "retry_max").await;
    let w = worker(&client);
    let entry = format!(
        r#"{{"jid":"crafted_max","retry_count":{max},"class":"Fails","args":[null],"queue":"default","retry":{max}}}"#,
        max = u32::MAX
    );
    plant(&redis, &client, "crafted_max", entry.as_bytes()).await;
    let id = JobId::parse("crafted_max").unwrap();
    wait_for_state(&client, &id, JobState::Dead).await;
    let mut conn = raw(&redis).await;
    let dead = members(&mut conn, &client.keys().dead()).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].retry_count, Some(u32::MAX));
    assert_eq!(dead[0].retry, Retry::Max(u32::MAX));
    later_jobs_still_run(&client).await;
    w.shutdown().await.unwrap();
}

/// Lua reads these (cjson nests up to 1000 levels and takes `NaN`), serde does not: each is
/// buried under its own jid, and its status record says dead instead of staying `running`.
#[tokio::test]
async fn a_payload_lua_reads_but_serde_cannot_is_buried_under_its_own_jid_with_status_dead() {
    let redis = TestRedis::start();
    let client = client(&redis, "unparsable").await;
    let w = worker(&client);
    let deep = format!(
        r#"{{"jid":"deep_args","class":"Fine","args":[{}1{}],"queue":"default"}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let cases: [(&str, Vec<u8>); 3] = [
        ("deep_args", deep.into_bytes()),
        (
            "nan_count",
            br#"{"jid":"nan_count","class":"Fine","args":[],"retry_count":NaN}"#.to_vec(),
        ),
        (
            // Not our client's prefix: Lua decodes it to find the jid.
            "jid_last",
            br#"{"class":"Fine","args":[],"retry":"x","created_at":NaN,"jid":"jid_last"}"#.to_vec(),
        ),
    ];
    for (jid, entry) in &cases {
        plant(&redis, &client, jid, entry).await;
    }
    later_jobs_still_run(&client).await;
    let inspect = Inspector::new(&client);
    for (jid, entry) in &cases {
        let id = JobId::parse(jid).unwrap();
        wait_for_state(&client, &id, JobState::Dead).await;
        let status = client.status(&id).await.unwrap().unwrap();
        let error = status.error.unwrap();
        assert!(error.contains("malformed"), "{jid}: {error}");
        let found = inspect.find_job(&id).await.unwrap().unwrap();
        assert_eq!(found.location, Location::Set(JobSet::Dead), "{jid}");
        assert_eq!(found.job.class, MALFORMED_CLASS);
        let kept = found.job.extra["raw"].as_str().unwrap();
        assert_eq!(kept.as_bytes(), &entry[..entry.len().min(4096)], "{jid}");
    }
    let mut conn = raw(&redis).await;
    let dead: i64 = conn.zcard(client.keys().dead()).await.unwrap();
    assert_eq!(dead, 3);
    w.shutdown().await.unwrap();
}

/// Sidekiq's processor runs a job from the list it was fetched from whatever its `queue`
/// field says, and `promote.lua` reads a `null` queue as `default`: so does the worker.
#[tokio::test]
async fn a_foreign_job_with_queue_null_runs_in_the_default_queue() {
    let redis = TestRedis::start();
    let client = client(&redis, "queue_null").await;
    let w = worker(&client);
    plant(
        &redis,
        &client,
        "queue_null",
        br#"{"jid":"queue_null","class":"Fine","args":[null],"queue":null}"#,
    )
    .await;
    let id = JobId::parse("queue_null").unwrap();
    wait_for_state(&client, &id, JobState::Succeeded).await;
    let mut conn = raw(&redis).await;
    let dead: i64 = conn.zcard(client.keys().dead()).await.unwrap();
    assert_eq!(dead, 0);
    w.shutdown().await.unwrap();
}

/// A huge `retry` limit with a huge count: the next retry waits at most a week, so the job
/// comes due while its record lives (it used to be scored about 1.8e19 s ahead, never due).
#[tokio::test]
async fn a_huge_retry_limit_still_retries_within_a_week() {
    let redis = TestRedis::start();
    let client = client(&redis, "retry_far").await;
    let w = worker(&client);
    plant(
        &redis,
        &client,
        "crafted_far",
        br#"{"jid":"crafted_far","retry_count":70000,"class":"Fails","args":[null],"queue":"default","retry":4294967295}"#,
    )
    .await;
    let id = JobId::parse("crafted_far").unwrap();
    wait_for_state(&client, &id, JobState::Retrying).await;
    let mut conn = raw(&redis).await;
    let scored: Vec<(Vec<u8>, f64)> = conn
        .zrange_withscores(client.keys().retry(), 0, -1)
        .await
        .unwrap();
    assert_eq!(scored.len(), 1);
    let now = Inspector::new(&client)
        .redis_now()
        .await
        .unwrap()
        .as_secs_f64();
    let wait = scored[0].1 - now;
    assert!(wait <= 7.0 * 24.0 * 3600.0 + 1.0, "waits {wait} s");
    w.shutdown().await.unwrap();
}

/// An empty or huge job id is not an id (it names the status key and shows in URLs): the
/// entry is buried under a fresh id and no key is made from it. (Both used to run, making
/// the keys `jobstatus:` and a status key with a 1 MiB name.)
#[tokio::test]
async fn an_empty_or_huge_job_id_is_buried() {
    let redis = TestRedis::start();
    let client = client(&redis, "bad_jids").await;
    let w = worker(&client);
    let mut conn = raw(&redis).await;
    let huge = "j".repeat(1 << 20);
    for jid in ["", huge.as_str()] {
        let entry = format!(r#"{{"jid":"{jid}","class":"Fine","args":[null],"queue":"default"}}"#);
        let _: () = conn
            .lpush(client.keys().queue("default"), entry)
            .await
            .unwrap();
    }
    later_jobs_still_run(&client).await;
    wait_for_size(
        &conn,
        &client.keys().dead(),
        2,
        "both entries to be buried",
        std::time::Duration::from_secs(15),
    )
    .await;
    for jid in ["", huge.as_str()] {
        let exists: bool = conn.exists(client.keys().status(jid)).await.unwrap();
        assert!(
            !exists,
            "a status key was made from a bad id of {} bytes",
            jid.len()
        );
    }
    for buried in members(&mut conn, &client.keys().dead()).await {
        assert_eq!(buried.class, MALFORMED_CLASS);
        assert!(buried.jid.as_str().len() <= 64);
    }
    w.shutdown().await.unwrap();
}
