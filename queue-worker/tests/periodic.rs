//! Periodic (cron) jobs across real worker processes: every tick pushed exactly once while
//! processes are killed with SIGKILL and replaced, and the tick lateness measured.

mod worker_binary;

use queue_core::Client;
use queue_core::testing::TestRedis;
use queue_worker::periodic::STALE_SLACK;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use worker_binary::*;

/// Length of the cron run (the acceptance figure is 60 s); `CRON_TEST_SECS` shortens it.
fn run_for() -> Duration {
    let secs = std::env::var("CRON_TEST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// Worker processes running the entry.
const PROCESSES: usize = 5;
/// Time between two SIGKILLs.
const KILL_EVERY: Duration = Duration::from_secs(3);

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tick_is_enqueued_exactly_once_while_workers_are_killed() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("cron")).await.unwrap();
    let harness = Harness::new("cron", client.config());
    // Ticks go to a queue no worker takes from, so every push stays there to be counted.
    let entry = r#"[{"name":"every-second","cron":"* * * * * *","class":"queue::Noop",
        "queue":"cron-out","track_status":false}]"#;
    let env = [("PERIODIC_JOBS", entry), ("WORKER_QUEUES", "default")];
    let mut workers: Vec<_> = (0..PROCESSES)
        .map(|i| harness.spawn(&format!("w{i}"), 2, 5, &env))
        .collect();
    for w in &workers {
        wait_registered(&client, w.pid(), Duration::from_secs(10)).await;
    }
    let started = now_secs();
    let deadline = Instant::now() + run_for();
    let mut kills = 0usize;
    let mut victim = 0usize;
    while Instant::now() < deadline {
        tokio::time::sleep(KILL_EVERY.min(deadline.saturating_duration_since(Instant::now())))
            .await;
        workers[victim].kill9();
        kills += 1;
        workers[victim] = harness.spawn(&format!("w{victim}-{kills}"), 2, 5, &env);
        victim = (victim + 1) % PROCESSES;
    }
    let ended = now_secs();
    for w in &mut workers {
        w.kill9();
    }

    let mut per_tick: BTreeMap<i64, usize> = BTreeMap::new();
    let mut late_ms: Vec<f64> = Vec::new();
    for job in queued_jobs(&client, "cron-out").await {
        let tick: i64 = job
            .jid
            .as_str()
            .strip_prefix("cron-every-second-")
            .unwrap()
            .parse()
            .unwrap();
        *per_tick.entry(tick).or_default() += 1;
        let enqueued = job.enqueued_at.unwrap().as_secs_f64();
        // The steady state: ticks after the first processes were up (a process starting
        // pushes the tick of the second before it, on time by the grace rule, but late).
        if tick as f64 > started {
            late_ms.push((enqueued - tick as f64) * 1000.0);
        }
    }
    let duplicates: Vec<_> = per_tick.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "ticks pushed twice: {duplicates:?}");
    // Every whole second between the start (plus one, the first tick any process could have
    // seen) and the end (minus one, a tick maybe in flight at the kill) is there.
    let first = started.ceil() as i64 + 1;
    let last = ended.floor() as i64 - 1;
    let missing: Vec<i64> = (first..=last)
        .filter(|t| !per_tick.contains_key(t))
        .collect();
    assert!(missing.is_empty(), "ticks never pushed: {missing:?}");
    late_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| late_ms[((late_ms.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "cron: {} ticks in {:.0} s, {PROCESSES} processes, {kills} SIGKILLs, each tick once; \
         lateness p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        per_tick.len(),
        ended - started,
        pct(0.5),
        pct(0.99),
        late_ms[late_ms.len() - 1],
    );
}

/// Another app's keys where the periodic registry lives (`periodic`, `periodic:NAME`, of
/// another type) must not keep a worker from working: it used to exit at start with
/// WRONGTYPE, so no job ran at all. It runs its jobs and says which key is in the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_periodic_key_does_not_stop_the_worker() {
    // Sidekiq's own key names (no prefix), where another app's keys may sit; it flushes
    // the server between its rounds.
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("").prefix("")).await.unwrap();
    let mut conn = client.raw_connection();
    let harness = Harness::new("periodic_planted", client.config());
    let entries =
        r#"[{"name":"beat","cron":"* * * * * *","class":"queue::Sleep","args":[{"millis":0}]}]"#;
    for planted in ["periodic", "periodic:beat"] {
        let _: () = redis::cmd("FLUSHALL").query_async(&mut conn).await.unwrap();
        let _: () = redis::cmd("SET")
            .arg(planted)
            .arg("another app's")
            .query_async(&mut conn)
            .await
            .unwrap();
        let worker = harness.spawn(planted, 2, 5, &[("PERIODIC_JOBS", entries)]);
        let job = queue_core::NewJob::new("queue::Sleep", vec![serde_json::json!({"millis": 0})]);
        let id = client.push_bulk(vec![job]).await.unwrap().remove(0);
        let deadline = Instant::now() + Duration::from_secs(20);
        while ledger_count(&client, &id).await == 0 {
            assert!(
                Instant::now() < deadline,
                "planted {planted}: the job never ran"
            );
            tokio::time::sleep(POLL).await;
        }
        worker.wait_for_log(planted, Duration::from_secs(5)).await;
    }
}

/// Redis frozen (SIGSTOP) for `FREEZE`: the offers workers sent meanwhile wait in Redis's
/// socket buffers and run when it resumes. Under the skip policy those that are by then more
/// than the grace plus `STALE_SLACK` late must not be pushed (they used to come out as a
/// burst of old ticks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_offered_while_redis_was_frozen_do_not_come_out_as_a_burst() {
    const FREEZE: Duration = Duration::from_secs(14);
    // Freezes its server (SIGSTOP).
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("cron_freeze")).await.unwrap();
    let harness = Harness::new("cron_freeze", client.config());
    let entry = r#"[{"name":"every-second","cron":"* * * * * *","class":"queue::Noop",
        "queue":"cron-out","track_status":false}]"#;
    let env = [("PERIODIC_JOBS", entry), ("WORKER_QUEUES", "default")];
    let workers: Vec<_> = (0..3)
        .map(|i| harness.spawn(&format!("w{i}"), 2, 5, &env))
        .collect();
    for w in &workers {
        wait_registered(&client, w.pid(), Duration::from_secs(10)).await;
    }
    let key = client.keys().queue("cron-out");
    let deadline = Instant::now() + Duration::from_secs(10);
    while llen(&client, &key).await < 2 {
        assert!(Instant::now() < deadline, "no tick before the freeze");
        tokio::time::sleep(POLL).await;
    }
    let pid = redis.pid().unwrap().to_string();
    let stopped = now_secs();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The freeze's length is the stimulus, not a synchronisation.
    tokio::time::sleep(FREEZE).await;
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let resumed = now_secs();
    // Wait until ticks after the resume are pushed again.
    let deadline = Instant::now() + Duration::from_secs(15);
    let ticks: Vec<i64> = loop {
        let ticks = queued_ticks(&client, "cron-out", "every-second").await;
        if ticks.iter().any(|&t| t as f64 > resumed + 1.0) {
            break ticks;
        }
        assert!(
            Instant::now() < deadline,
            "no tick after the resume: {ticks:?}"
        );
        tokio::time::sleep(POLL).await;
    };
    // Ticks of the freeze's first part reached Redis more than grace (1 s) + slack (5 s)
    // late: none may be there. (The grace of a 1 s schedule is 1 s.)
    let stale_until = resumed - 1.0 - STALE_SLACK.as_secs_f64() - 1.0;
    let stale: Vec<i64> = ticks
        .iter()
        .copied()
        .filter(|&t| t as f64 > stopped + 1.0 && (t as f64) < stale_until)
        .collect();
    assert!(
        stale.is_empty(),
        "stale ticks pushed after the freeze: {stale:?} (all {ticks:?})"
    );
    let mut sorted = ticks.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ticks.len(), "a tick pushed twice: {ticks:?}");
    drop(workers);
}

/// A `last` tick planted far in the future (year 3000) used to stop the entry for ever,
/// silently: every offer read "already pushed". The worker pushes the next tick, replacing
/// it, and warns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_tick_planted_in_the_future_does_not_stop_the_entry() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("cron_future")).await.unwrap();
    let harness = Harness::new("cron_future", client.config());
    let entry = r#"[{"name":"every-second","cron":"* * * * * *","class":"queue::Noop",
        "queue":"cron-out","track_status":false}]"#;
    let env = [("PERIODIC_JOBS", entry), ("WORKER_QUEUES", "default")];
    let worker = harness.spawn("w0", 2, 5, &env);
    wait_registered(&client, worker.pid(), Duration::from_secs(10)).await;
    let key = client.keys().queue("cron-out");
    let deadline = Instant::now() + Duration::from_secs(10);
    while llen(&client, &key).await < 1 {
        assert!(Instant::now() < deadline, "no tick before the plant");
        tokio::time::sleep(POLL).await;
    }
    let mut conn = client.raw_connection();
    let () = redis::cmd("HSET")
        .arg(client.keys().periodic_entry("every-second"))
        .arg("last")
        .arg(32_503_680_000_i64)
        .query_async(&mut conn)
        .await
        .unwrap();
    let planted = llen(&client, &key).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while llen(&client, &key).await < planted + 2 {
        assert!(
            Instant::now() < deadline,
            "the entry stopped firing after a last tick was planted in the future"
        );
        tokio::time::sleep(POLL).await;
    }
    worker
        .wait_for_log("last tick lay in the future", Duration::from_secs(5))
        .await;
}
