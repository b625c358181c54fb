//! Lease trouble while a long job runs. Redis stalls (frozen with SIGSTOP): shorter than the
//! fence, nothing changes; longer than the lease, the job is stopped here before anyone can
//! hand it to another worker, so it never runs twice at the same time, and it still ends
//! `succeeded`. A lease that vanishes early, a registry Redis refuses to write, and a
//! processing list of the wrong type do not stall or flood anything either.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, JobState};
use queue_worker::{Failure, JobContext, Worker};
use serde::{Deserialize, Serialize};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Long;
impl Job for Long {
    const NAME: &'static str = "Long";
}

/// Each execution of the job, from its start to the moment its future ended or was dropped.
type Runs = Arc<Mutex<Vec<(Instant, Option<Instant>)>>>;

/// Marks the end of an execution when the handler's future ends or is dropped.
struct Running {
    runs: Runs,
    index: usize,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.runs.lock().unwrap()[self.index].1 = Some(Instant::now());
    }
}

/// A worker whose `Long` job takes `length`, in 50 ms steps, stopping early when cancelled.
fn start(
    client: &queue_core::Client,
    runs: &Runs,
    length: Duration,
) -> queue_worker::RunningWorker {
    start_with(client, runs, length, fast_config())
}

/// [`start`] with `config`.
fn start_with(
    client: &queue_core::Client,
    runs: &Runs,
    length: Duration,
    config: queue_worker::WorkerConfig,
) -> queue_worker::RunningWorker {
    let runs = Arc::clone(runs);
    Worker::builder()
        .config(config)
        .register(move |_: Long, ctx: JobContext| {
            let runs = Arc::clone(&runs);
            async move {
                let index = {
                    let mut r = runs.lock().unwrap();
                    r.push((Instant::now(), None));
                    r.len() - 1
                };
                let _running = Running { runs, index };
                let until = Instant::now() + length;
                while Instant::now() < until {
                    tokio::select! {
                        _ = ctx.cancelled() => return Err(Failure::retry("cancelled")),
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                Ok::<_, Failure>(())
            }
        })
        .build(client.clone())
        .unwrap()
        .start()
}

fn signal(redis: &TestRedis, sig: &str) {
    let pid = redis.pid().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Freezes Redis for `length`: the fault itself, not a wait for a condition.
async fn freeze(redis: &TestRedis, length: Duration) {
    signal(redis, "-STOP");
    tokio::time::sleep(length).await;
    signal(redis, "-CONT");
}

async fn wait_until_running(runs: &Runs, count: usize) {
    wait_for("the job to start", Duration::from_secs(15), || async {
        (runs.lock().unwrap().len() >= count).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_stall_longer_than_the_lease_never_runs_a_job_twice_at_once() {
    // Freezes its server (SIGSTOP).
    let redis = TestRedis::start_private();
    let client = client(&redis, "long_stall").await;
    let runs: Runs = Arc::default();
    let w = start(&client, &runs, Duration::from_secs(3));
    let id = client.enqueue(&Long).await.unwrap();
    wait_until_running(&runs, 1).await;
    // Frozen past the lease (1 s in the tests' settings): it expires meanwhile.
    freeze(&redis, Duration::from_millis(2_500)).await;
    wait_for("the job to succeed", Duration::from_secs(30), || async {
        let s = client.status(&id).await.ok()??;
        (s.state == JobState::Succeeded).then_some(())
    })
    .await;
    w.shutdown().await.unwrap();
    let runs = runs.lock().unwrap().clone();
    assert!(
        runs.len() >= 2,
        "the job was not stopped by the stall: {runs:?}"
    );
    for pair in runs.windows(2) {
        let (_, end) = pair[0];
        let (next_start, _) = pair[1];
        let end = end.expect("an earlier run never ended");
        assert!(
            next_start >= end,
            "the job ran twice at once: a run started {:?} before the previous one ended",
            end - next_start
        );
    }
}

#[tokio::test]
async fn a_stall_shorter_than_the_fence_changes_nothing() {
    // Freezes its server (SIGSTOP).
    let redis = TestRedis::start_private();
    let client = client(&redis, "short_stall").await;
    let runs: Runs = Arc::default();
    let w = start(&client, &runs, Duration::from_millis(1_500));
    let id = client.enqueue(&Long).await.unwrap();
    wait_until_running(&runs, 1).await;
    freeze(&redis, Duration::from_millis(300)).await;
    wait_for_state(&client, &id, JobState::Succeeded).await;
    w.shutdown().await.unwrap();
    assert_eq!(
        runs.lock().unwrap().len(),
        1,
        "a short stall restarted the job"
    );
}

/// A worker whose `Long` job takes `length` and ignores cancellation; `tag` names it in
/// `holders` while it runs.
fn start_stubborn(
    client: &queue_core::Client,
    runs: &Runs,
    holders: &Arc<Mutex<Vec<&'static str>>>,
    tag: &'static str,
    length: Duration,
) -> queue_worker::RunningWorker {
    let (runs, holders) = (Arc::clone(runs), Arc::clone(holders));
    Worker::builder()
        .config(fast_config())
        .register(move |_: Long, _: JobContext| {
            let (runs, holders) = (Arc::clone(&runs), Arc::clone(&holders));
            async move {
                let index = {
                    let mut r = runs.lock().unwrap();
                    r.push((Instant::now(), None));
                    holders.lock().unwrap().push(tag);
                    r.len() - 1
                };
                let _running = Running { runs, index };
                tokio::time::sleep(length).await;
                Ok::<_, Failure>(())
            }
        })
        .build(client.clone())
        .unwrap()
        .start()
}

/// A lease deleted before its time (by hand, or lost in a failover to a lagging replica):
/// the other worker's reaper waits until the lease would have ended, and the holder drops
/// the job as soon as a renewal finds the lease gone, so the job never runs in both at once.
/// (The reaper used to take the job at once, while the holder ran it on until its fence.)
#[tokio::test]
async fn a_lease_deleted_early_never_runs_a_job_twice_at_once() {
    let redis = TestRedis::start();
    let client = client(&redis, "lease_deleted").await;
    let runs: Runs = Arc::default();
    let holders = Arc::new(Mutex::new(Vec::new()));
    let one = start_stubborn(&client, &runs, &holders, "one", Duration::from_secs(3));
    let two = start_stubborn(&client, &runs, &holders, "two", Duration::from_secs(3));
    let id = client.enqueue(&Long).await.unwrap();
    wait_until_running(&runs, 1).await;
    let holder = if holders.lock().unwrap()[0] == "one" {
        one.identity()
    } else {
        two.identity()
    };
    let mut conn = raw(&redis).await;
    let _: () = redis::cmd("DEL")
        .arg(client.keys().lease(&holder))
        .query_async(&mut conn)
        .await
        .unwrap();
    wait_for_state(&client, &id, JobState::Succeeded).await;
    one.shutdown().await.unwrap();
    two.shutdown().await.unwrap();
    let runs = runs.lock().unwrap().clone();
    for pair in runs.windows(2) {
        let end = pair[0].1.expect("an earlier run never ended");
        assert!(
            pair[1].0 >= end,
            "the job ran twice at once: a run started {:?} before the previous one ended",
            end - pair[1].0
        );
    }
}

/// Redis that answers but refuses to register the process (here the `workers` registry is
/// a string, as a full disk's MISCONF also refuses it): the fence retries with a backoff
/// instead of calling Redis tens of thousands of times a second.
#[tokio::test]
async fn a_refused_registration_is_retried_with_a_backoff() {
    // INFO commandstats counts the whole server's calls.
    let redis = TestRedis::start_private();
    let client = client(&redis, "refused_registration").await;
    let runs: Runs = Arc::default();
    // A long job keeps the one slot busy, so no fetch renews the lease either: only the
    // heartbeat does, and Redis refuses it.
    let mut config = fast_config();
    config.concurrency = 1;
    let w = start_with(&client, &runs, Duration::from_secs(5), config);
    client.enqueue(&Long).await.unwrap();
    wait_until_running(&runs, 1).await;
    let mut conn = raw(&redis).await;
    let workers = client.keys().workers();
    let _: () = redis::cmd("DEL")
        .arg(&workers)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(&workers)
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    let calls = || {
        let mut conn = conn.clone();
        async move {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut conn)
                .await
                .unwrap();
            info.lines()
                .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
                .and_then(|rest| rest.split(',').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        }
    };
    // Measured over two seconds: the renewals fail, the fence fires after two thirds of the
    // 1 s lease, and registering a fresh identity is refused from then on.
    let before = calls().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = calls().await - before;
    w.shutdown().await.unwrap();
    assert!(
        during < 200,
        "{during} script calls in 2 s while registration was refused"
    );
}

/// A processing list planted with another type: the worker takes a fresh identity (a fresh
/// list) and goes on taking jobs. (It used to keep its lease and never fetch again.)
#[tokio::test]
async fn a_processing_list_of_the_wrong_type_does_not_stop_fetching() {
    let redis = TestRedis::start();
    let client = client(&redis, "processing_wrong_type").await;
    let runs: Runs = Arc::default();
    let w = start(&client, &runs, Duration::from_millis(10));
    let first = client.enqueue(&Long).await.unwrap();
    wait_for_state(&client, &first, JobState::Succeeded).await;
    let mut conn = raw(&redis).await;
    let list = client.keys().processing(&w.identity());
    let _: () = redis::cmd("DEL")
        .arg(&list)
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: () = redis::cmd("HSET")
        .arg(&list)
        .arg("x")
        .arg("y")
        .query_async(&mut conn)
        .await
        .unwrap();
    let next = client.enqueue(&Long).await.unwrap();
    wait_for_state(&client, &next, JobState::Succeeded).await;
    w.shutdown().await.unwrap();
}
