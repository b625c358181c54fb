//! Scheduled jobs run when due, exactly once, however many workers race to promote them.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{EnqueueOptions, Job, JobState, NewJob};
use queue_worker::{Failure, JobContext, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Tick(u32);
impl Job for Tick {
    const NAME: &'static str = "Tick";
}

#[tokio::test]
async fn a_scheduled_job_runs_once_it_is_due() {
    let redis = TestRedis::start();
    let client = client(&redis, "due").await;
    let w = Worker::builder()
        .config(fast_config())
        .register(|t: Tick, _: JobContext| async move { Ok::<_, Failure>(t.0) })
        .build(client.clone())
        .unwrap()
        .start();
    let id = client
        .enqueue_in(&Tick(1), Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Scheduled
    );
    wait_for_state(&client, &id, JobState::Succeeded).await;
    let s = client.status(&id).await.unwrap().unwrap();
    let late = s.started_at.unwrap() - s.run_at.unwrap();
    eprintln!("scheduled job started {late:.3} s after its run-at");
    assert!(late >= -0.05, "never early (Redis's clock decides)");
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn two_workers_racing_promote_each_due_job_exactly_once() {
    let redis = TestRedis::start();
    let client = client(&redis, "race").await;
    let seen: Arc<Mutex<HashMap<u32, u32>>> = Arc::default();
    let start = |seen: Arc<Mutex<HashMap<u32, u32>>>| {
        Worker::builder()
            .config(fast_config())
            .concurrency(20)
            .register(move |t: Tick, _: JobContext| {
                *seen.lock().unwrap().entry(t.0).or_default() += 1;
                async { Ok::<_, Failure>(()) }
            })
            .build(client.clone())
            .unwrap()
            .start()
    };
    let total = 400u32;
    let jobs = (0..total)
        .map(|i| {
            let mut j = NewJob::typed(
                &Tick(i),
                EnqueueOptions::new().delay(Duration::from_millis(400)),
            )
            .unwrap();
            j.track_status = false;
            j
        })
        .collect::<Vec<_>>();
    for j in jobs {
        client.push(j).await.unwrap();
    }
    let a = start(Arc::clone(&seen));
    let b = start(Arc::clone(&seen));
    wait_for("every job to run", Duration::from_secs(20), || {
        let n = seen.lock().unwrap().len();
        async move { (n == total as usize).then_some(()) }
    })
    .await;
    let mut conn = raw(&redis).await;
    wait_for("all acks", Duration::from_secs(5), || {
        let mut conn = conn.clone();
        let key = client.keys().stat_processed();
        async move {
            let n: Option<u32> = conn.get(key).await.unwrap();
            (n == Some(total)).then_some(())
        }
    })
    .await;
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    let dupes = seen.lock().unwrap().values().filter(|n| **n > 1).count();
    assert_eq!(dupes, 0, "no job promoted twice");
    let scheduled: i64 = conn.zcard(client.keys().schedule()).await.unwrap();
    assert_eq!(scheduled, 0);
}

#[tokio::test]
async fn scheduled_jobs_start_on_time_with_default_settings() {
    let redis = TestRedis::start();
    let client = client(&redis, "lateness").await;
    let config = queue_worker::WorkerConfig {
        shutdown_timeout: Duration::from_secs(1),
        ..queue_worker::WorkerConfig::default()
    };
    let w = Worker::builder()
        .config(config)
        .concurrency(20)
        .register(|t: Tick, _: JobContext| async move { Ok::<_, Failure>(t.0) })
        .build(client.clone())
        .unwrap()
        .start();
    let mut ids = Vec::new();
    for i in 0..200u32 {
        let delay = Duration::from_millis(300 + u64::from(i) * 10);
        ids.push(client.enqueue_in(&Tick(i), delay).await.unwrap());
    }
    let mut lateness = Vec::new();
    for id in &ids {
        wait_for_state(&client, id, JobState::Succeeded).await;
        let s = client.status(id).await.unwrap().unwrap();
        lateness.push(s.started_at.unwrap() - s.run_at.unwrap());
    }
    w.shutdown().await.unwrap();
    lateness.sort_by(f64::total_cmp);
    let p50 = lateness[lateness.len() / 2];
    let p99 = lateness[lateness.len() * 99 / 100];
    eprintln!(
        "scheduled-job lateness over 200 jobs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        p50 * 1e3,
        p99 * 1e3,
        lateness[lateness.len() - 1] * 1e3
    );
    assert!(lateness[0] >= -0.05, "a job started before its time");
}
