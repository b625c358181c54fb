//! Process-level faults on the real `queue-worker` binary: `kill -9` under load, how long a
//! killed process's job takes to run elsewhere, SIGTERM inside the platform's 30 s window,
//! and Redis restarting (or going away for a while) under a running worker.
//!
//! Every test starts its own Redis and its own worker processes, polls conditions with
//! deadlines, and prints the workers' logs when it fails. Figures go to stderr: run with
//! `cargo test -p queue-worker --test process_faults -- --nocapture` to see them.

mod worker_binary;

use queue_core::testing::TestRedis;
use queue_core::{Client, EnqueueOptions, JobId, JobState, NewJob};
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};
use worker_binary::*;

/// Jobs in the kill test (the acceptance figure is at least 2,000).
const KILL_JOBS: usize = 2000;
/// Slots per worker process in the kill test.
const KILL_CONCURRENCY: usize = 4;
/// How long each job of the kill test sleeps.
const KILL_JOB_MILLIS: u64 = 15;
/// How long the victim runs between two `kill -9`s.
const KILL_EVERY: Duration = Duration::from_millis(400);
/// Longest the kill test may take to drain.
const DRAIN_DEADLINE: Duration = Duration::from_secs(60);
/// Start-up and registration of a worker process.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// The platform sends SIGKILL 30 s after SIGTERM; exiting later than this is a failure.
const EXIT_BUDGET: Duration = Duration::from_secs(28);

/// A `queue::Sleep` job (tracked): one hash argument `{"millis": N}`.
fn sleep_job(millis: u64) -> NewJob {
    NewJob::new("queue::Sleep", vec![json!({ "millis": millis })])
}

async fn connect(redis: &TestRedis, name: &str) -> Client {
    Client::connect(redis.config(name)).await.unwrap()
}

/// Pushes `job` under a fixed id until Redis takes it (the connection may still be
/// reconnecting after a restart). The fixed id makes a retried push idempotent.
async fn push_until_accepted(client: &Client, job: NewJob, deadline: Duration) -> JobId {
    let id = JobId::new();
    let mut job = job;
    job.options = EnqueueOptions::new().job_id(id.clone());
    let start = Instant::now();
    loop {
        match client.push(job.clone()).await {
            Ok(pushed) => {
                assert_eq!(pushed, id);
                return id;
            }
            Err(e) => assert!(
                start.elapsed() < deadline,
                "Redis refused the push for {deadline:?}: {e}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_job() {
    let redis = TestRedis::start();
    let client = connect(&redis, "kill").await;
    let harness = Harness::new("kill", client.config());
    let jobs = (0..KILL_JOBS).map(|_| sleep_job(KILL_JOB_MILLIS)).collect();
    let ids = client.push_bulk(jobs).await.unwrap();
    let queue = client.keys().queue("default");

    let start = Instant::now();
    let _steady = harness.spawn("steady", KILL_CONCURRENCY, 5, &FAST_RECOVERY);
    let mut victim = harness.spawn("victim-0", KILL_CONCURRENCY, 5, &FAST_RECOVERY);
    let mut victim_started = Instant::now();
    let (mut kills, mut held_at_kills) = (0usize, 0usize);
    loop {
        let done = ledger(&client).await.len();
        let queued = llen(&client, &queue).await;
        let processing: usize = processing_lists(&client).await.values().sum();
        if done == KILL_JOBS && queued == 0 && processing == 0 {
            break;
        }
        assert!(
            start.elapsed() < DRAIN_DEADLINE,
            "not drained after {DRAIN_DEADLINE:?}: {done} of {KILL_JOBS} jobs ran, \
             {queued} queued, {processing} in processing lists, after {kills} kills"
        );
        // Kill the victim once it has run for a while and holds jobs, while work remains.
        if queued > 0 && victim_started.elapsed() >= KILL_EVERY {
            let held = match identity_of(&client, victim.pid()).await {
                Some(ident) => llen(&client, &client.keys().processing(&ident)).await,
                None => 0,
            };
            if held > 0 {
                victim.kill9();
                kills += 1;
                held_at_kills += held;
                victim = harness.spawn(
                    &format!("victim-{kills}"),
                    KILL_CONCURRENCY,
                    5,
                    &FAST_RECOVERY,
                );
                victim_started = Instant::now();
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let elapsed = start.elapsed();

    let counts = ledger(&client).await;
    let lost = ids
        .iter()
        .filter(|id| !counts.contains_key(id.as_str()))
        .count();
    let duplicates = counts.values().filter(|n| **n > 1).count();
    let executions: u64 = counts.values().sum();
    eprintln!(
        "kill test: {KILL_JOBS} jobs of {KILL_JOB_MILLIS} ms, 2 workers x {KILL_CONCURRENCY} slots, \
         {kills} kill -9 (holding {held_at_kills} jobs in all), lost {lost}, \
         {duplicates} jobs ran twice or more ({} extra executions), drained in {elapsed:.2?}",
        executions - KILL_JOBS as u64
    );
    assert_eq!(lost, 0, "every job ran at least once");
    assert_eq!(counts.len(), KILL_JOBS, "the ledger holds only our jobs");
    assert!(
        kills >= 3,
        "the test must actually kill the victim: {kills} kills"
    );
    assert!(
        duplicates <= kills * KILL_CONCURRENCY,
        "{duplicates} duplicates for {kills} kills of a process with {KILL_CONCURRENCY} slots"
    );
    assert_eq!(zcard(&client, &client.keys().retry()).await, 0);
    assert_eq!(zcard(&client, &client.keys().dead()).await, 0);
    // Every job's status record ends succeeded, including those of recovered jobs.
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.cmd("HGET")
            .arg(client.keys().status(id.as_str()))
            .arg("state");
    }
    let mut conn = client.raw_connection();
    let states: Vec<Option<String>> = pipe.query_async(&mut conn).await.unwrap();
    let not_succeeded = states
        .iter()
        .filter(|s| s.as_deref() != Some("succeeded"))
        .count();
    assert_eq!(not_succeeded, 0, "status records not at succeeded");
}

/// Runs a 3 s job on worker A with worker B idle, kills A with `kill -9`, and returns the
/// time until the job runs again on B (the status record shows `running` with a new
/// `started_at`).
async fn time_to_run_elsewhere(name: &str, env: &[(&str, &str)], deadline: Duration) -> Duration {
    let redis = TestRedis::start();
    let client = connect(&redis, name).await;
    let harness = Harness::new(name, client.config());
    let mut a = harness.spawn("a", 1, 5, env);
    let a_ident = wait_registered(&client, a.pid(), START_DEADLINE).await;
    let id = client.push(sleep_job(3000)).await.unwrap();
    let first = wait_status(&client, &id, "running on A", START_DEADLINE, |s| {
        s.state == JobState::Running
    })
    .await;
    let b = harness.spawn("b", 1, 5, env);
    let b_ident = wait_registered(&client, b.pid(), START_DEADLINE).await;
    assert_eq!(llen(&client, &client.keys().processing(&a_ident)).await, 1);

    let killed = Instant::now();
    a.kill9();
    wait_status(&client, &id, "running again elsewhere", deadline, |s| {
        s.state == JobState::Running && s.started_at != first.started_at
    })
    .await;
    let took = killed.elapsed();
    assert_eq!(
        llen(&client, &client.keys().processing(&b_ident)).await,
        1,
        "B runs the job"
    );
    // The reaper forgot A once its processing list was empty.
    assert!(
        !smembers(&client, &client.keys().workers())
            .await
            .contains(&a_ident)
    );
    assert!(
        !smembers(&client, &client.keys().processes())
            .await
            .contains(&a_ident)
    );
    wait_state(&client, &id, JobState::Succeeded, Duration::from_secs(10)).await;
    assert_eq!(ledger_count(&client, &id).await, 1, "A never finished it");
    took
}

#[tokio::test]
async fn a_killed_workers_job_runs_elsewhere_within_lease_plus_reaper() {
    // Lease 1000 ms renewed every 200 ms, reaper every 300 ms (jittered to at most 337 ms):
    // the lease ends 800-1000 ms after the kill, the next reaper pass follows.
    let took = time_to_run_elsewhere("failover", &FAST_RECOVERY, Duration::from_secs(5)).await;
    eprintln!(
        "kill -9 -> running elsewhere: {} ms (lease 1000 ms, heartbeat 200 ms, reaper 300 ms)",
        took.as_millis()
    );
    assert!(
        took >= Duration::from_millis(700),
        "recovered before the lease could expire: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn with_default_settings_a_killed_workers_job_runs_elsewhere_within_about_20_s() {
    // Defaults: lease 15 s renewed every 5 s, so it ends 10-15 s after the kill; the reaper
    // runs every 5 s with jitter (4.4-5.6 s apart): recovery takes 10 to about 20.6 s.
    let took = time_to_run_elsewhere("failover_defaults", &[], Duration::from_secs(25)).await;
    eprintln!(
        "kill -9 -> running elsewhere with default settings: {:.2} s (lease 15 s, heartbeat 5 s, reaper 5 s)",
        took.as_secs_f64()
    );
    assert!(took >= Duration::from_secs(9), "{took:?}");
    assert!(took < Duration::from_secs(23), "{took:?}");
}

#[tokio::test]
async fn sigterm_finishes_short_jobs_hands_back_long_ones_and_exits_in_time() {
    const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);
    let redis = TestRedis::start();
    let client = connect(&redis, "sigterm").await;
    let harness = Harness::new("sigterm", client.config());
    let mut w1 = harness.spawn("w1", 2, 3, &[]);
    let ident = wait_registered(&client, w1.pid(), START_DEADLINE).await;
    let short = client.push(sleep_job(2000)).await.unwrap();
    let long = client.push(sleep_job(8000)).await.unwrap();
    wait_state(&client, &short, JobState::Running, START_DEADLINE).await;
    wait_state(&client, &long, JobState::Running, START_DEADLINE).await;

    let signalled = Instant::now();
    w1.sigterm();
    w1.wait_for_log("shutting down", Duration::from_secs(5))
        .await;
    // The platform may send SIGTERM more than once: the second one changes nothing.
    w1.sigterm();
    let (mut short_done, mut long_back) = (None, None);
    let (exit, exited) = loop {
        if short_done.is_none()
            && client.status(&short).await.unwrap().unwrap().state == JobState::Succeeded
        {
            short_done = Some(signalled.elapsed());
        }
        if long_back.is_none()
            && client.status(&long).await.unwrap().unwrap().state == JobState::Queued
        {
            long_back = Some(signalled.elapsed());
        }
        if let Some(status) = w1.try_exit() {
            break (status, signalled.elapsed());
        }
        assert!(
            signalled.elapsed() < EXIT_BUDGET,
            "still running {EXIT_BUDGET:?} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    eprintln!(
        "SIGTERM -> exit: {} ms (SHUTDOWN_TIMEOUT=3 s); 2 s job succeeded at {:?}, 8 s job handed back at {:?}",
        exited.as_millis(),
        short_done,
        long_back
    );
    assert!(exit.success(), "exit status {exit:?}");
    assert!(exited < EXIT_BUDGET);
    assert!(
        exited >= SHUTDOWN_TIMEOUT,
        "exited before the shutdown timeout: {exited:?}"
    );

    // The 2 s job finished inside the shutdown timeout.
    let s = client.status(&short).await.unwrap().unwrap();
    assert_eq!(s.state, JobState::Succeeded);
    assert!(
        short_done.is_some_and(|t| t < SHUTDOWN_TIMEOUT),
        "{short_done:?}"
    );
    assert_eq!(ledger_count(&client, &short).await, 1);

    // The 8 s job went back to the front of its queue as soon as the timeout ended.
    let l = client.status(&long).await.unwrap().unwrap();
    assert_eq!(l.state, JobState::Queued, "{l:?}");
    let back = long_back.unwrap_or(exited);
    assert!(
        back >= SHUTDOWN_TIMEOUT && back < SHUTDOWN_TIMEOUT + Duration::from_secs(2),
        "handed back at {back:?}"
    );
    assert_eq!(ledger_count(&client, &long).await, 0);
    let mut conn = client.raw_connection();
    let queued: Vec<String> = redis::cmd("LRANGE")
        .arg(client.keys().queue("default"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    let payload: serde_json::Value = serde_json::from_str(&queued[0]).unwrap();
    assert_eq!(payload["jid"], long.as_str());
    assert_eq!(payload["args"], json!([{ "millis": 8000 }]));
    assert_eq!(
        zcard(&client, &client.keys().retry()).await,
        0,
        "a hand-back is not a failure"
    );
    assert_eq!(zcard(&client, &client.keys().dead()).await, 0);

    let log = w1.log();
    assert!(
        log.contains("already shutting down; signal ignored"),
        "{log}"
    );
    assert!(
        log.contains("job handed back to its queue at shutdown"),
        "{log}"
    );
    assert!(log.contains("worker stopped"), "{log}");

    // The process is gone from Redis: no registration, no lease, nothing held.
    assert!(
        !smembers(&client, &client.keys().workers())
            .await
            .contains(&ident)
    );
    assert!(
        !smembers(&client, &client.keys().processes())
            .await
            .contains(&ident)
    );
    assert_eq!(llen(&client, &client.keys().processing(&ident)).await, 0);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(client.keys().lease(&ident))
        .arg(client.keys().process(&ident))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "lease and process record removed");

    // Another worker runs the handed-back job to the end.
    let mut w2 = harness.spawn("w2", 1, 3, &[]);
    let done = wait_status(
        &client,
        &long,
        "succeeded on w2",
        Duration::from_secs(20),
        |s| s.state == JobState::Succeeded,
    )
    .await;
    assert_eq!(done.result, Some(json!({ "slept_ms": 8000 })));
    assert_eq!(done.attempt, 1, "a hand-back does not use up an attempt");
    assert_eq!(ledger_count(&client, &long).await, 1);

    // An idle worker exits promptly.
    let idle = Instant::now();
    w2.sigterm();
    let status = w2.wait_exit(Duration::from_secs(5)).await;
    assert!(status.success(), "{status:?}");
    eprintln!(
        "SIGTERM -> exit of an idle worker: {} ms",
        idle.elapsed().as_millis()
    );
}

#[tokio::test]
async fn a_worker_keeps_working_across_a_redis_restart() {
    let mut redis = TestRedis::start_private();
    let client = connect(&redis, "restart").await;
    let harness = Harness::new("restart", client.config());
    let mut w = harness.spawn("w", 2, 3, &[]);
    let first_ident = wait_registered(&client, w.pid(), START_DEADLINE).await;
    let before = client.push(sleep_job(10)).await.unwrap();
    wait_state(&client, &before, JobState::Succeeded, START_DEADLINE).await;

    let mark = w.log_lines();
    let restarted = Instant::now();
    redis.restart(); // same port, empty data
    // The client's own connection reconnects: a push may fail once, then goes through.
    let after = push_until_accepted(&client, sleep_job(10), Duration::from_secs(10)).await;
    wait_state(
        &client,
        &after,
        JobState::Succeeded,
        Duration::from_secs(20),
    )
    .await;
    let took = restarted.elapsed();

    assert!(w.is_running(), "the worker process survived");
    let lines = w.log_since(mark);
    let fetch_failed = lines.iter().filter(|l| l.contains("fetch failed")).count();
    eprintln!(
        "Redis restart: job after restart succeeded {} ms later; {} log lines meanwhile ({} \"fetch failed\")",
        took.as_millis(),
        lines.len(),
        fetch_failed
    );
    assert!(
        lines.iter().any(|l| l.contains("lease lost")),
        "the worker noticed that its registration vanished:\n{}",
        lines.join("\n")
    );
    assert!(
        fetch_failed < 50,
        "busy loop? {fetch_failed} fetch failures"
    );
    assert!(lines.len() < 200, "busy loop? {} log lines", lines.len());
    // It registered again, under a new identity.
    let ident = wait_registered(&client, w.pid(), START_DEADLINE).await;
    assert_ne!(ident, first_ident);
    assert_eq!(ledger_count(&client, &after).await, 1);
}

#[tokio::test]
async fn a_worker_rides_out_a_redis_outage_without_spinning() {
    // How long Redis stays down.
    const OUTAGE: Duration = Duration::from_millis(2500);
    let mut redis = TestRedis::start_private();
    let client = connect(&redis, "outage").await;
    let harness = Harness::new("outage", client.config());
    let mut w = harness.spawn("w", 2, 3, &[]);
    wait_registered(&client, w.pid(), START_DEADLINE).await;
    let before = client.push(sleep_job(10)).await.unwrap();
    wait_state(&client, &before, JobState::Succeeded, START_DEADLINE).await;

    let mark = w.log_lines();
    let cpu_before = cpu_time(w.pid());
    redis.kill();
    let down = Instant::now();
    while down.elapsed() < OUTAGE {
        assert!(w.is_running(), "the worker died while Redis was down");
        tokio::time::sleep(POLL).await;
    }
    let cpu = cpu_time(w.pid()) - cpu_before;
    let during = w.log_since(mark);
    redis.restart();
    let back = Instant::now();
    let after = push_until_accepted(&client, sleep_job(10), Duration::from_secs(10)).await;
    wait_state(
        &client,
        &after,
        JobState::Succeeded,
        Duration::from_secs(20),
    )
    .await;
    let took = back.elapsed();

    let fetch_failed = during.iter().filter(|l| l.contains("fetch failed")).count();
    eprintln!(
        "Redis down {} ms: {} log lines ({} \"fetch failed\"), {} ms of CPU; a job pushed after \
         the restart succeeded {} ms later",
        OUTAGE.as_millis(),
        during.len(),
        fetch_failed,
        cpu.as_millis(),
        took.as_millis()
    );
    assert!(w.is_running(), "the worker process survived");
    assert!(
        fetch_failed >= 1,
        "the exchange noticed:\n{}",
        during.join("\n")
    );
    assert!(
        fetch_failed < 50,
        "busy loop? {fetch_failed} fetch failures"
    );
    assert!(during.len() < 100, "busy loop? {} log lines", during.len());
    assert!(
        cpu < Duration::from_millis(500),
        "busy loop? {cpu:?} of CPU while Redis was down"
    );
    let lines = w.log_since(mark);
    assert!(
        lines.iter().any(|l| l.contains("lease lost")),
        "{}",
        lines.join("\n")
    );
    wait_registered(&client, w.pid(), START_DEADLINE).await;
}

#[test]
fn bad_timing_overrides_are_refused_at_start() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("WORKER_LEASE_TTL_MS", "soon")], "WORKER_LEASE_TTL_MS"),
        (&[("WORKER_REAPER_MS", "0")], "WORKER_REAPER_MS"),
        (&[("WORKER_HEARTBEAT_MS", "-5")], "WORKER_HEARTBEAT_MS"),
        (
            &[
                ("WORKER_LEASE_TTL_MS", "1000"),
                ("WORKER_HEARTBEAT_MS", "1000"),
            ],
            "heartbeat_interval",
        ),
    ];
    for (env, needle) in cases {
        let out = Command::new(WORKER_BIN)
            .env_clear()
            // Settings are read before connecting, so nothing needs to listen here.
            .env("REDIS_URL", "redis://127.0.0.1:1")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{env:?} was accepted");
        assert!(stderr.contains(needle), "{env:?}: {stderr}");
    }
}
