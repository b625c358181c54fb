//! Redis stalls (frozen with SIGSTOP) while a long job runs. Shorter than the fence, nothing
//! changes; longer than the lease, the job is stopped here before anyone can hand it to
//! another worker, so it never runs twice at the same time, and it still ends `succeeded`.

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
    let runs = Arc::clone(runs);
    Worker::builder()
        .config(fast_config())
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
    let redis = TestRedis::start();
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
    let redis = TestRedis::start();
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
