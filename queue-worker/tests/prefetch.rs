//! Prefetch: jobs taken ahead of a free slot never wait long behind a slow job.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Client, Job, JobId, JobState, NewJob};
use queue_worker::{Failure, JobContext, RunningWorker, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Quick(u64);
impl Job for Quick {
    const NAME: &'static str = "Quick";
}

#[derive(Serialize, Deserialize)]
struct Block;
impl Job for Block {
    const NAME: &'static str = "Block";
}

/// Handler runs by `Quick` argument.
type Runs = Arc<Mutex<HashMap<u64, u32>>>;

/// Quick jobs ahead of the slow one in each round: they keep the slot turning over.
const LEAD: u64 = 300;
/// Quick jobs behind the slow one in each round.
const LATE: u64 = 10;

/// A worker with `concurrency` slots running `Quick` (counted in `runs`) and `Block` (until
/// `release`), its settings adjusted by `tweak`.
fn worker(
    client: &Client,
    concurrency: usize,
    runs: &Runs,
    release: &Arc<Notify>,
    tweak: impl FnOnce(&mut WorkerConfig),
) -> RunningWorker {
    let runs = Arc::clone(runs);
    let release = Arc::clone(release);
    Worker::builder()
        .config(fast_config())
        .concurrency(concurrency)
        .configure(tweak)
        .register(move |job: Quick, _ctx: JobContext| {
            *runs.lock().unwrap().entry(job.0).or_default() += 1;
            async move { Ok::<_, Failure>(()) }
        })
        .register(move |_: Block, _ctx: JobContext| {
            let release = Arc::clone(&release);
            async move {
                release.notified().await;
                Ok::<_, Failure>(())
            }
        })
        .build(client.clone())
        .unwrap()
        .start()
}

/// Queues quick jobs, one slow job and more quick jobs, in that order, until the worker
/// (one slot) holds some of the later ones while the slow job has its slot. Whether it does
/// depends on where the slow job falls in a fetch, so a rare miss is retried with a fresh
/// round. Returns the slow job, the later jobs of the last round, and how many it holds.
async fn hold_behind_slow_job(
    client: &Client,
    redis: &TestRedis,
    worker: &RunningWorker,
    release: &Notify,
) -> (JobId, Vec<JobId>, usize) {
    let conn = raw(redis).await;
    let processing = client.keys().processing(&worker.identity());
    let quick = |n: u64| NewJob::typed(&Quick(n), Default::default()).unwrap();
    for round in 0..5 {
        let first = round * (LEAD + LATE);
        // Three calls, so the queue holds them in this order.
        client
            .push_bulk((first..first + LEAD).map(quick).collect())
            .await
            .unwrap();
        let block = client.enqueue(&Block).await.unwrap();
        let late = client
            .push_bulk((first + LEAD..first + LEAD + LATE).map(quick).collect())
            .await
            .unwrap();
        wait_for_state(client, &block, JobState::Running).await;
        // The quick jobs fetched with the slow one finish at once; the fetch that carries
        // their acks takes jobs ahead.
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let held: usize = redis::cmd("LLEN")
                .arg(&processing)
                .query_async(&mut conn.clone())
                .await
                .unwrap();
            if held > 1 {
                return (block, late, held - 1);
            }
            if Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        release.notify_waiters();
        wait_for_state(client, &block, JobState::Succeeded).await;
        wait_for_size(
            &conn,
            &client.keys().queue("default"),
            0,
            "the queue to drain",
            Duration::from_secs(10),
        )
        .await;
    }
    panic!("the worker never held a job behind the slow one");
}

#[tokio::test]
async fn jobs_prefetched_behind_a_slow_job_go_to_an_idle_worker() {
    let redis = TestRedis::start();
    let client = client(&redis, "prefetch").await;
    let runs: Runs = Arc::default();
    let release = Arc::new(Notify::new());
    let a = worker(&client, 1, &runs, &release, |c| c.prefetch = Some(20));
    let (block, late, held) = hold_behind_slow_job(&client, &redis, &a, &release).await;
    eprintln!("while the slow job runs, the first worker holds {held} jobs behind it");

    // They go back after waiting a second, and an idle worker runs them while the slow job
    // still holds the first worker's only slot.
    let b = worker(&client, 2, &runs, &release, |c| c.prefetch = Some(0));
    for id in &late {
        wait_for_state(&client, id, JobState::Succeeded).await;
    }
    assert_eq!(
        client.status(&block).await.unwrap().unwrap().state,
        JobState::Running,
        "the late jobs finished only because the slow job ended"
    );
    release.notify_waiters();
    wait_for_state(&client, &block, JobState::Succeeded).await;
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();

    // Every quick job ran exactly once: a job handed back had not started.
    let runs = runs.lock().unwrap().clone();
    assert!(runs.len() as u64 >= LEAD + LATE);
    for (n, count) in &runs {
        assert_eq!(*count, 1, "job {n} ran {count} times");
    }
    assert_eq!(
        client.status(&late[0]).await.unwrap().unwrap().attempt,
        1,
        "a hand-back is not a failed attempt"
    );
}

#[tokio::test]
async fn jobs_prefetched_but_not_started_go_back_at_once_at_shutdown() {
    let redis = TestRedis::start();
    let client = client(&redis, "prefetch-quiet").await;
    let runs: Runs = Arc::default();
    let release = Arc::new(Notify::new());
    // A wait for a slot far longer than the test: only the shutdown can send them back.
    let a = worker(&client, 1, &runs, &release, |c| {
        c.prefetch = Some(20);
        c.prefetch_max_wait = Duration::from_secs(60);
        // Room for a loaded machine (another test of this file drains 30,000 jobs at once)
        // between "at once" and the end of the shutdown timeout.
        c.shutdown_timeout = Duration::from_secs(6);
    });
    let (block, late, held) = hold_behind_slow_job(&client, &redis, &a, &release).await;
    assert!(held > 0);
    let conn = raw(&redis).await;
    let processing = client.keys().processing(&a.identity());

    // Quiet: the jobs that never started go back to the front of the queue right away
    // (the processing list keeps only the slow job), while the slow job keeps its slot
    // until the shutdown timeout (6 s here). Counting the list, not the queue: jobs that
    // finished just before may still be in the list until their acks land.
    let shutdown = tokio::spawn(a.shutdown());
    wait_for_size(
        &conn,
        &processing,
        1,
        "the prefetched jobs to leave the processing list",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(
        client.status(&block).await.unwrap().unwrap().state,
        JobState::Running,
        "the prefetched jobs went back before the shutdown timeout ended"
    );
    for id in &late {
        let state = client.status(id).await.unwrap().unwrap().state;
        assert!(
            matches!(state, JobState::Queued | JobState::Succeeded),
            "a late job is {state} after the quiet"
        );
    }
    shutdown.await.unwrap().unwrap();
    wait_for_size(
        &conn,
        &processing,
        0,
        "the slow job to be handed back too",
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(
        client.status(&block).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert!(runs.lock().unwrap().len() as u64 >= LEAD);
    assert_eq!(
        client.status(&late[0]).await.unwrap().unwrap().state,
        JobState::Queued,
        "a prefetched job that never started reads as queued again"
    );
}

#[tokio::test]
async fn acks_keep_up_with_a_large_fetch_batch() {
    const JOBS: u64 = 30_000;
    const CONCURRENCY: usize = 500;
    const FETCH_BATCH: usize = 1000;
    let redis = TestRedis::start();
    let client = client(&redis, "prefetch-acks").await;
    let runs: Runs = Arc::default();
    let release = Arc::new(Notify::new());
    let quick = |n: u64| NewJob::typed(&Quick(n), Default::default()).unwrap();
    client
        .push_bulk((0..JOBS).map(quick).collect())
        .await
        .unwrap();
    let w = worker(&client, CONCURRENCY, &runs, &release, |c| {
        c.fetch_batch = FETCH_BATCH
    });
    // Jobs that finished wait in the processing list until their ack lands: that list must
    // stay within what the worker may hold (running + prefetched) plus one call's acks.
    let bound = CONCURRENCY + CONCURRENCY.max(FETCH_BATCH) + FETCH_BATCH;
    let processing = client.keys().processing(&w.identity());
    let mut conn = raw(&redis).await;
    let mut largest = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (held, processed): (usize, Option<u64>) = redis::pipe()
            .cmd("LLEN")
            .arg(&processing)
            .cmd("GET")
            .arg(client.keys().stat_processed())
            .query_async(&mut conn)
            .await
            .unwrap();
        largest = largest.max(held);
        if processed == Some(JOBS) {
            break;
        }
        assert!(Instant::now() < deadline, "the drain did not finish");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    w.shutdown().await.unwrap();
    eprintln!("largest processing list during the drain: {largest} (bound {bound})");
    assert!(largest <= bound, "{largest} entries held, bound {bound}");
    assert_eq!(runs.lock().unwrap().len() as u64, JOBS);
}
