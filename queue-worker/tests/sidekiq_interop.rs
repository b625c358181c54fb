//! Interoperability with Sidekiq itself (Debian's `ruby-sidekiq` 6.4.1, which `script/test`
//! installs): jobs pushed by Sidekiq's Ruby client run on our binary, our failures show up
//! in `Sidekiq::RetrySet`/`Sidekiq::DeadSet` with Sidekiq's fields, and Sidekiq's process
//! list and stats see our worker. Sidekiq 6.4 cannot use a key prefix, so these tests use
//! the empty prefix on a private Redis each.

mod worker_binary;

use queue_core::testing::TestRedis;
use queue_core::{Client, ClientConfig, JobId, JobState, NewJob};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use worker_binary::*;

/// Start-up and registration of a worker process.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// Jobs pushed by Sidekiq's client publish no wake-up: the worker's idle poll (1 s) finds them.
const PICKUP_DEADLINE: Duration = Duration::from_secs(10);

/// Loads Sidekiq's client and API and points them at `$REDIS_URL`.
const RUBY_PRELUDE: &str = r#"
require 'sidekiq'
require 'sidekiq/api'
require 'json'
Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch('REDIS_URL') } }
"#;

/// Runs `body` in Ruby with Sidekiq loaded; returns the JSON it printed on its last line.
fn ruby(redis: &TestRedis, body: &str) -> Value {
    let out = Command::new("ruby")
        .arg("-e")
        .arg(format!("{RUBY_PRELUDE}\n{body}"))
        .env("REDIS_URL", redis.url())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ruby ({e}); script/test installs ruby-sidekiq"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ruby failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("ruby printed no JSON ({e}):\n{stdout}"))
}

/// Our client on Sidekiq's own key names.
async fn connect(redis: &TestRedis) -> Client {
    Client::connect(ClientConfig::new(redis.url()))
        .await
        .unwrap()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Polls a Ruby expression until `check` accepts its JSON; panics after `deadline`.
async fn wait_ruby(
    redis: &TestRedis,
    what: &str,
    deadline: Duration,
    body: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let v = ruby(redis, body);
        if check(&v) {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}; last: {v}"
        );
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test]
async fn a_job_pushed_by_sidekiqs_ruby_client_runs_once() {
    let redis = TestRedis::start_private();
    let client = connect(&redis).await;
    let pushed = ruby(
        &redis,
        r#"jid = Sidekiq::Client.push('class' => 'queue::Sleep', 'args' => [{'millis' => 10}], 'queue' => 'default')
           puts({ 'jid' => jid }.to_json)"#,
    );
    let id = JobId::parse(pushed["jid"].as_str().unwrap()).unwrap();
    assert_eq!(
        client.status(&id).await.unwrap(),
        None,
        "Sidekiq's client writes no status record"
    );

    let harness = Harness::new("interop_push", client.config());
    let _w = harness.spawn("w", 2, 3, &[]);
    let done = wait_status(&client, &id, "succeeded", PICKUP_DEADLINE, |s| {
        s.state == JobState::Succeeded
    })
    .await;
    // The worker created the record from the job itself.
    assert_eq!(done.class.as_deref(), Some("queue::Sleep"));
    assert_eq!(done.queue.as_deref(), Some("default"));
    assert_eq!(done.attempt, 1);
    assert_eq!(done.result, Some(json!({ "slept_ms": 10 })));
    assert_eq!(ledger_count(&client, &id).await, 1);
    assert_eq!(llen(&client, &client.keys().queue("default")).await, 0);
    assert!(processing_lists(&client).await.values().all(|n| *n == 0));
    let stats = ruby(
        &redis,
        "s = Sidekiq::Stats.new; puts({ 'processed' => s.processed, 'failed' => s.failed }.to_json)",
    );
    assert_eq!(stats, json!({ "processed": 1, "failed": 0 }));
}

/// Prints Sidekiq's view of the retry and dead sets and the failure counters.
const READ_FAILURES: &str = r#"
def entry(j)
  { 'jid' => j.jid, 'klass' => j.klass, 'queue' => j.queue, 'args' => j.args,
    'error_class' => j['error_class'], 'error_message' => j['error_message'],
    'retry_count' => j['retry_count'], 'failed_at' => j['failed_at'],
    'failed_at_is_float' => j['failed_at'].is_a?(Float), 'retried_at' => j['retried_at'],
    'score' => j.score, 'at' => j.at.to_f, 'error' => j.error?, 'raw' => j['raw'] }
end
s = Sidekiq::Stats.new
puts({ 'retry' => Sidekiq::RetrySet.new.map { |j| entry(j) },
       'dead' => Sidekiq::DeadSet.new.map { |j| entry(j) },
       'failed' => s.failed, 'retry_size' => s.retry_size, 'dead_size' => s.dead_size }.to_json)
"#;

#[tokio::test]
async fn our_failures_show_up_in_sidekiqs_retry_and_dead_sets() {
    let redis = TestRedis::start_private();
    let client = connect(&redis).await;
    let pushed = ruby(
        &redis,
        r#"unknown = Sidekiq::Client.push('class' => 'NoSuchJob', 'args' => [1, 'x'], 'queue' => 'default')
           bad_args = Sidekiq::Client.push('class' => 'queue::Sleep', 'args' => ['nope'], 'queue' => 'default')
           puts({ 'unknown' => unknown, 'bad_args' => bad_args }.to_json)"#,
    );
    let unknown = pushed["unknown"].as_str().unwrap().to_owned();
    let bad_args = pushed["bad_args"].as_str().unwrap().to_owned();
    // An entry that is not job JSON at all, as a broken client might push.
    let mut conn = client.raw_connection();
    let _: i64 = redis::cmd("LPUSH")
        .arg("queue:default")
        .arg("this is not json")
        .query_async(&mut conn)
        .await
        .unwrap();

    let harness = Harness::new("interop_failures", client.config());
    let _w = harness.spawn("w", 2, 3, &[]);
    let start = Instant::now();
    while zcard(&client, "retry").await < 1 || zcard(&client, "dead").await < 2 {
        assert!(
            start.elapsed() < PICKUP_DEADLINE,
            "failures not recorded in time"
        );
        tokio::time::sleep(POLL).await;
    }
    let seen = ruby(&redis, READ_FAILURES);
    let now = now_secs();

    // An unknown class is retried later (another deploy may know it) and not counted.
    let retry = seen["retry"].as_array().unwrap();
    assert_eq!(retry.len(), 1, "{seen}");
    let r = &retry[0];
    assert_eq!(r["jid"], unknown.as_str());
    assert_eq!(r["klass"], "NoSuchJob");
    assert_eq!(r["queue"], "default");
    assert_eq!(r["args"], json!([1, "x"]));
    assert_eq!(r["error_class"], "UnknownJob");
    assert!(
        r["error_message"].as_str().unwrap().contains("NoSuchJob"),
        "{r}"
    );
    assert!(
        r["retry_count"].is_null(),
        "an unknown class uses up no retry: {r}"
    );
    assert_eq!(
        r["failed_at_is_float"], true,
        "Sidekiq 6 reads float epoch seconds"
    );
    let failed_at = r["failed_at"].as_f64().unwrap();
    assert!((failed_at - now).abs() < 60.0, "{r}");
    let delay = r["score"].as_f64().unwrap() - failed_at;
    assert!(
        (15.0..25.5).contains(&delay),
        "first retry in 15 s + jitter, got {delay}"
    );
    assert_eq!(r["error"], true);

    // Arguments that do not fit the job type, and an entry that is not JSON: dead at once.
    let dead = seen["dead"].as_array().unwrap();
    assert_eq!(dead.len(), 2, "{seen}");
    let d = dead.iter().find(|d| d["jid"] == bad_args.as_str()).unwrap();
    assert_eq!(d["klass"], "queue::Sleep");
    assert_eq!(d["args"], json!(["nope"]));
    assert_eq!(d["error_class"], "Error");
    assert!(
        d["error_message"]
            .as_str()
            .unwrap()
            .contains("arguments do not fit"),
        "{d}"
    );
    assert_eq!(d["retry_count"], 0);
    assert_eq!(d["failed_at_is_float"], true);
    let m = dead
        .iter()
        .find(|d| d["klass"] == "queue::MalformedJob")
        .unwrap();
    assert_eq!(m["error_class"], "MalformedPayload");
    assert_eq!(m["raw"], "this is not json");
    assert_eq!(m["error"], true);
    assert_eq!(
        seen["failed"], 2,
        "the two dead jobs count as failed, the unknown one not"
    );
    assert_eq!(
        (seen["retry_size"].clone(), seen["dead_size"].clone()),
        (json!(1), json!(2))
    );

    // "Retry Now" in Sidekiq's UI (`SortedEntry#retry`) pushes the job back into its queue
    // with `retry_count` lowered by one (-1 here). Our worker must take it as a job again:
    // still unknown, it is deferred to the retry set again, with a later score and still no
    // retry used up. Its new score differs (it can be earlier: the first delay's jitter may
    // have been larger). (The worker may take it again before Ruby could count the set.)
    let first_score = r["score"].as_f64().unwrap();
    let retried = ruby(
        &redis,
        "n = 0; Sidekiq::RetrySet.new.each { |j| j.retry; n += 1 }; puts({ 'retried' => n }.to_json)",
    );
    assert_eq!(retried["retried"], 1);
    let again = wait_ruby(
        &redis,
        "the retried job back in the retry set",
        PICKUP_DEADLINE,
        READ_FAILURES,
        |v| {
            v["retry"].as_array().is_some_and(|r| {
                r.len() == 1 && r[0]["score"].as_f64().is_some_and(|s| s != first_score)
            })
        },
    )
    .await;
    let r = &again["retry"][0];
    assert_eq!(r["jid"], unknown.as_str(), "{again}");
    assert_eq!(r["klass"], "NoSuchJob");
    assert!(r["retry_count"].is_null(), "{r}");
    assert_eq!(r["error_class"], "UnknownJob");
    assert_eq!(again["dead_size"], 2, "not buried as malformed: {again}");
}

#[tokio::test]
async fn sidekiqs_process_set_and_stats_see_our_worker() {
    let redis = TestRedis::start_private();
    let client = connect(&redis).await;
    let harness = Harness::new("interop_processes", client.config());
    // Quick heartbeats so that `busy` shows up in the process record without a 5 s wait.
    let mut w = harness.spawn(
        "w",
        3,
        1,
        &[
            ("WORKER_HEARTBEAT_MS", "200"),
            ("WORKER_LEASE_TTL_MS", "3000"),
        ],
    );
    let ident = wait_registered(&client, w.pid(), START_DEADLINE).await;
    // Long enough to be running whenever Ruby looks, however slowly Ruby starts; the
    // shutdown at the end hands it back.
    let slow = client
        .push(NewJob::new(
            "queue::Sleep",
            vec![json!({ "millis": 60_000 })],
        ))
        .await
        .unwrap();
    wait_state(&client, &slow, JobState::Running, START_DEADLINE).await;

    const PROCESSES: &str = r#"
        puts(Sidekiq::ProcessSet.new.map { |p|
          { 'identity' => p.identity, 'pid' => p['pid'], 'hostname' => p['hostname'],
            'busy' => p['busy'], 'concurrency' => p['concurrency'], 'queues' => p['queues'],
            'quiet' => p['quiet'], 'beat' => p['beat'], 'started_at' => p['started_at'],
            'stopping' => p.stopping? }
        }.to_json)"#;
    let pid = w.pid();
    let procs = wait_ruby(
        &redis,
        "our process busy with one job",
        Duration::from_secs(20),
        PROCESSES,
        |v| {
            v.as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["busy"] == 1)
        },
    )
    .await;
    let p = &procs[0];
    assert_eq!(p["identity"], ident.as_str());
    assert_eq!(p["pid"], pid);
    assert_eq!(p["concurrency"], 3);
    assert_eq!(p["queues"], json!(["default"]));
    assert_eq!(p["quiet"], "false");
    assert_eq!(p["stopping"], false);
    assert!(
        (p["beat"].as_f64().unwrap() - now_secs()).abs() < 10.0,
        "{p}"
    );
    assert!(p["started_at"].as_f64().is_some(), "{p}");

    let quick = client
        .push_bulk(
            (0..4)
                .map(|_| NewJob::new("queue::Sleep", vec![json!({ "millis": 1 })]))
                .collect(),
        )
        .await
        .unwrap();
    for id in &quick {
        wait_state(&client, id, JobState::Succeeded, Duration::from_secs(10)).await;
    }
    let stats = ruby(
        &redis,
        r#"s = Sidekiq::Stats.new
           puts({ 'processed' => s.processed, 'failed' => s.failed,
                  'processes_size' => s.processes_size, 'enqueued' => s.enqueued }.to_json)"#,
    );
    assert_eq!(
        stats,
        json!({ "processed": 4, "failed": 0, "processes_size": 1, "enqueued": 0 })
    );

    // A clean shutdown hands the long job back, where Sidekiq sees it, and removes the
    // process from Sidekiq's list at once.
    w.sigterm();
    assert!(w.wait_exit(Duration::from_secs(10)).await.success());
    let after = ruby(
        &redis,
        r#"q = Sidekiq::Queue.new('default')
           puts({ 'size' => Sidekiq::ProcessSet.new.size, 'listed' => Sidekiq::ProcessSet.new.to_a.size,
                  'queued' => q.map(&:jid), 'processed' => Sidekiq::Stats.new.processed }.to_json)"#,
    );
    assert_eq!(
        after,
        json!({ "size": 0, "listed": 0, "queued": [slow.as_str()], "processed": 4 })
    );
}
