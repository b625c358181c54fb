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
    let redis = TestRedis::start_private();
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
    let redis = TestRedis::start_private();
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
    let redis = TestRedis::start_private();
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

/// `queue_core::inspect` and Sidekiq's API (`Queue#size/#latency/#each`, the three
/// `JobSet`s, `ProcessSet`, `Stats`, `Stats::History`) read the same data alike.
#[tokio::test]
async fn inspect_agrees_with_sidekiq_api() {
    use queue_core::inspect::{Info, Inspector, JobSet, MAX_PAGE_SIZE, Page};

    let redis = TestRedis::start_private();
    let client = unprefixed(&redis).await;
    let mut conn = raw(&redis).await;
    let opts = |q: &str| queue_core::EnqueueOptions::new().queue(q);
    client
        .enqueue_with(&Greet::new("a"), opts("interop"))
        .await
        .unwrap();
    client
        .enqueue_with(&Greet::new("b"), opts("interop"))
        .await
        .unwrap();
    client.enqueue(&Add(1, 2)).await.unwrap();
    // A job that has waited 100 s, in float seconds as Sidekiq 6 writes it.
    let now = redis_time(&mut conn).await;
    let old = json!({"class":"Old","args":[],"jid":"0123456789abcdef01234567","queue":"old",
        "created_at": now - 120.0, "enqueued_at": now - 100.0});
    let _: i64 = cmd(&mut conn, &["SADD", "queues", "old"]).await;
    let _: i64 = cmd(&mut conn, &["LPUSH", "queue:old", &old.to_string()]).await;
    client
        .enqueue_in(&Add(3, 4), Duration::from_secs(600))
        .await
        .unwrap();
    client
        .enqueue_in(&Add(5, 6), Duration::from_secs(60))
        .await
        .unwrap();
    for (set, jid, score) in [
        ("retry", "aaaaaaaaaaaaaaaaaaaaaaa1", "1760000100.5"),
        ("retry", "aaaaaaaaaaaaaaaaaaaaaaa2", "1760000200.25"),
        ("dead", "ddddddddddddddddddddddd1", "1760000300"),
    ] {
        let member = json!({"class":"Failing","args":[1],"jid":jid,"queue":"default",
            "retry_count":0,"error_class":"RuntimeError","error_message":"boom",
            "failed_at":1760000000.0});
        let _: i64 = cmd(&mut conn, &["ZADD", set, score, &member.to_string()]).await;
    }
    for (identity, busy, beat) in [
        ("w.1:1:aa", "3", "1760000000.5"),
        ("w.2:2:bb", "1", "1760000001"),
    ] {
        let info = json!({"hostname": identity, "pid": 1, "identity": identity, "concurrency": 5,
            "queues": ["default"], "tag": "", "labels": []});
        let _: i64 = cmd(&mut conn, &["SADD", "processes", identity]).await;
        let _: i64 = cmd(
            &mut conn,
            &[
                "HSET",
                identity,
                "info",
                &info.to_string(),
                "busy",
                busy,
                "beat",
                beat,
                "quiet",
                "false",
                "rss",
                "100",
            ],
        )
        .await;
    }
    let _: i64 = cmd(&mut conn, &["SADD", "processes", "gone:3:cc"]).await;
    for (key, value) in [
        ("stat:processed", "1000"),
        ("stat:failed", "30"),
        ("stat:processed:2024-03-01", "10"),
        ("stat:failed:2024-03-01", "1"),
        ("stat:processed:2024-02-28", "20"),
        ("stat:failed:2024-02-27", "2"),
    ] {
        let _: () = cmd(&mut conn, &["SET", key, value]).await;
    }

    let inspect = Inspector::new(&client);
    let queues = inspect.queues().await.unwrap();
    let ours_read_at = std::time::Instant::now();
    let end = queue_core::Timestamp::from_secs_f64(1_709_294_400.0); // 2024-03-01 12:00 UTC
    let history = inspect.history(5, end).await.unwrap();
    let stats = inspect.stats().await.unwrap();
    let processes = inspect.processes().await.unwrap();
    let theirs = ruby("api.rb", &redis, &["5", "2024-03-01"]);
    let ruby_done = ours_read_at.elapsed().as_secs_f64();

    // Queues: names, sizes, `each` order, latency.
    let their_queues = theirs["queues"].as_array().unwrap();
    assert_eq!(their_queues.len(), queues.len());
    for (ours, theirs) in queues.iter().zip(their_queues) {
        assert_eq!(theirs["name"], ours.name.as_str());
        assert_eq!(theirs["size"], ours.size);
        let page = inspect
            .queue_page(&ours.name, Page::new(0, MAX_PAGE_SIZE))
            .await
            .unwrap();
        let jids: Vec<&str> = page
            .items
            .iter()
            .map(|e| e.job().unwrap().jid.as_str())
            .collect();
        assert_eq!(theirs["jids"], json!(jids), "order of {}", ours.name);
        // Sidekiq read later than we did, by at most the time the script took.
        let lag = theirs["latency"].as_f64().unwrap() - ours.latency.as_secs_f64();
        assert!(
            (-0.01..=ruby_done + 0.01).contains(&lag),
            "{}: theirs {} ours {:?} (ruby took {ruby_done} s)",
            ours.name,
            theirs["latency"],
            ours.latency
        );
    }
    let old = queues.iter().find(|q| q.name == "old").unwrap();
    assert!(old.latency.as_secs_f64() >= 100.0, "{old:?}");

    // Sorted sets: size, `each` order, score as time.
    for set in JobSet::ALL {
        let page = inspect
            .set_page(set, Page::new(0, MAX_PAGE_SIZE))
            .await
            .unwrap();
        let their = &theirs[set.as_str()];
        assert_eq!(their["size"], page.total, "{set:?}");
        let entries = their["entries"].as_array().unwrap();
        assert_eq!(entries.len(), page.items.len(), "{set:?}");
        for (ours, theirs) in page.items.iter().zip(entries) {
            assert_eq!(
                theirs["jid"],
                ours.entry.job().unwrap().jid.as_str(),
                "{set:?}"
            );
            // Sidekiq's `at` goes through Ruby's `Time.at`, which can drop the last bits.
            let at = theirs["at"].as_f64().unwrap();
            assert!(
                (at - ours.at.as_secs_f64()).abs() < 1e-3,
                "{set:?}: {at} vs {:?}",
                ours.at
            );
        }
    }
    assert_eq!(theirs["retry"]["size"], 2);

    // Processes: the ones ProcessSet lists (those with `info`), busy and beat.
    let ours: Vec<Value> = processes
        .iter()
        .filter(|p| matches!(p.info, Info::Json(_)))
        .map(|p| {
            json!({"identity": p.identity, "busy": p.busy,
            "beat": p.beat.unwrap().as_secs_f64()})
        })
        .collect();
    assert_eq!(theirs["processes"], json!(ours));
    assert_eq!(ours.len(), 2);

    // Stats and History.
    let s = &theirs["stats"];
    assert_eq!(s["processed"], stats.totals.processed);
    assert_eq!(s["failed"], stats.totals.failed);
    assert_eq!(s["retry_size"], stats.totals.retry);
    assert_eq!(s["scheduled_size"], stats.totals.scheduled);
    assert_eq!(s["dead_size"], stats.totals.dead);
    assert_eq!(s["enqueued"], stats.enqueued);
    assert_eq!(s["workers_size"], stats.busy);
    assert_eq!(stats.busy, 4);
    let by_day = |count: fn(&queue_core::inspect::DayStats) -> u64| {
        let days = history.iter().map(|d| (d.day.clone(), json!(count(d))));
        Value::Object(days.collect())
    };
    assert_eq!(theirs["history"]["processed"], by_day(|d| d.processed));
    assert_eq!(theirs["history"]["failed"], by_day(|d| d.failed));
    assert_eq!(history[0].day, "2024-03-01");
    assert_eq!(history[0].processed, 10);
}
