//! Interoperability with the real Sidekiq gem (Debian's `ruby-sidekiq` 6.4).
//!
//! Ruby scripts under `tests/ruby/` talk to the test's private server. Sidekiq 6.4 cannot
//! see prefixed keys, so these tests use the empty prefix (Sidekiq's own key names) on
//! servers of their own.

mod common;

use common::{Add, Greet, cmd, now_secs, raw, redis_time};
use queue_core::testing::TestRedis;
use queue_core::{Client, ClientConfig, Job, JobPayload, Retry};
use serde_json::{Value, json};
use std::process::Command;
use std::time::Duration;

/// Runs `tests/ruby/<script>` against `redis` and parses the JSON it prints.
fn ruby(script: &str, redis: &TestRedis, args: &[&str]) -> Value {
    let path = format!("{}/tests/ruby/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("ruby")
        .arg(&path)
        .args(args)
        .env("REDIS_URL", redis.url())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run ruby ({e}); run script/test, which installs ruby-sidekiq")
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}); is Sidekiq installed? (WITH_SIDEKIQ=1 script/ensure-redis)\n{stderr}",
        output.status
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stderr}"))
}

/// A client with Sidekiq's own key names.
async fn unprefixed(redis: &TestRedis) -> Client {
    Client::connect(ClientConfig::new(redis.url()))
        .await
        .unwrap()
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct HardJob(i64, String, std::collections::BTreeMap<String, String>);

impl Job for HardJob {
    const NAME: &'static str = "HardJob";
}

#[tokio::test]
async fn a_job_pushed_by_sidekiq_parses_with_from_json() {
    let redis = TestRedis::start();
    let mut conn = raw(&redis).await;
    let before = now_secs();
    let jids = ruby("push.rb", &redis, &["interop"]);
    let after = now_secs();

    let entries: Vec<String> = cmd(&mut conn, &["LRANGE", "queue:interop", "0", "-1"]).await;
    assert_eq!(entries.len(), 1);
    let job = JobPayload::from_json(entries[0].as_bytes()).unwrap();
    assert_eq!(job.jid.as_str(), jids["now"]);
    assert_eq!(job.jid.as_str().len(), 24, "Sidekiq's 24-hex-digit jid");
    assert_eq!(job.class, "HardJob");
    assert_eq!(job.queue, "interop");
    assert_eq!(job.retry, Retry::Max(3));
    assert_eq!(job.args, [json!(1), json!("x"), json!({"k": "v"})]);
    assert_eq!(job.extra["tags"], json!(["t1"]), "unknown fields are kept");
    for t in [job.created_at.unwrap(), job.enqueued_at.unwrap()] {
        let t = t.as_secs_f64();
        assert!((before - 1.0..=after + 1.0).contains(&t), "{t}");
    }
    // Our typed view of the same arguments.
    let typed = HardJob::from_args(&job.class, &job.args).unwrap();
    assert_eq!(typed.1, "x");
    // Rewriting the job (as a retry does) keeps every field Sidekiq wrote.
    let original: Value = serde_json::from_str(&entries[0]).unwrap();
    let rewritten: Value = serde_json::from_str(&job.to_json().unwrap()).unwrap();
    assert_eq!(rewritten, original);

    let queues: Vec<String> = cmd(&mut conn, &["SMEMBERS", "queues"]).await;
    assert_eq!(queues, ["interop"]);

    let scheduled: Vec<(String, f64)> =
        cmd(&mut conn, &["ZRANGE", "schedule", "0", "-1", "WITHSCORES"]).await;
    assert_eq!(scheduled.len(), 1);
    let later = JobPayload::from_json(scheduled[0].0.as_bytes()).unwrap();
    assert_eq!(later.jid.as_str(), jids["later"]);
    assert_eq!(later.args, [json!(2)]);
    assert_eq!(later.enqueued_at, None, "no enqueued_at while scheduled");
    assert!(scheduled[0].1 > after + 3590.0);
}

#[tokio::test]
async fn our_jobs_show_in_sidekiq_queue() {
    let redis = TestRedis::start();
    let client = unprefixed(&redis).await;
    let opts = || queue_core::EnqueueOptions::new().queue("interop");
    let greet = client
        .enqueue_with(&Greet::new("ruby"), opts().retry(Retry::Max(5)))
        .await
        .unwrap();
    let add = client.enqueue_with(&Add(2, 3), opts()).await.unwrap();
    let after = now_secs();

    let seen = ruby("inspect.rb", &redis, &["interop"]);
    assert_eq!(seen["queues"], json!(["interop"]));
    assert_eq!(seen["size"], 2);
    assert_eq!(seen["enqueued"], 2);
    let latency = seen["latency"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&latency), "queue latency {latency}");
    // Sidekiq lists a queue from the head of the list: the newest job first.
    let jobs = seen["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    let (first, second) = (&jobs[1], &jobs[0]);
    assert_eq!(first["jid"], greet.as_str());
    assert_eq!(first["klass"], "Greet");
    assert_eq!(first["args"], json!([{"name": "ruby"}]));
    assert_eq!(first["queue"], "interop");
    assert_eq!(first["retry"], 5);
    assert_eq!(second["jid"], add.as_str());
    assert_eq!(second["klass"], "Add");
    assert_eq!(
        second["args"],
        json!([2, 3]),
        "a tuple job is positional args"
    );
    assert_eq!(second["retry"], true);
    for job in jobs {
        // Our float-second timestamps read as the right times in Ruby.
        let t = job["enqueued_at"].as_f64().unwrap();
        assert!((after - 60.0..=after).contains(&t), "{t}");
        assert_eq!(job["created_at"], job["enqueued_at"]);
    }
}

#[tokio::test]
async fn our_scheduled_job_shows_in_sidekiq_scheduled_set() {
    let redis = TestRedis::start();
    let client = unprefixed(&redis).await;
    let mut conn = raw(&redis).await;
    let before = redis_time(&mut conn).await;
    let id = client
        .enqueue_in(&Add(7, 8), Duration::from_secs(3600))
        .await
        .unwrap();
    let after = redis_time(&mut conn).await;

    let seen = ruby("inspect.rb", &redis, &["math"]);
    assert_eq!(seen["size"], 0, "not in the queue yet");
    assert_eq!(seen["scheduled_size"], 1);
    let scheduled = seen["scheduled"].as_array().unwrap();
    assert_eq!(scheduled.len(), 1);
    let job = &scheduled[0];
    assert_eq!(job["jid"], id.as_str());
    assert_eq!(job["klass"], "Add");
    assert_eq!(job["args"], json!([7, 8]));
    assert_eq!(job["queue"], "math");
    assert_eq!(job["enqueued_at"], Value::Null);
    let at = job["at"].as_f64().unwrap();
    assert!(
        (before + 3600.0 - 0.01..=after + 3600.0 + 0.01).contains(&at),
        "{at}"
    );
}
