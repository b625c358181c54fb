//! What operators do to running workers from outside (the dashboard, the CLI, or Sidekiq's
//! Web UI): quiet a process, stop it, and cancel a running job.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Client, Inspector, Job, JobId, JobState};
use queue_worker::{Failure, JobContext, RunningWorker, Worker, WorkerConfig};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use worker_in_process::*;

/// How soon a cancelled running job's `ctx.cancelled()` must fire (the documented bound).
const CANCEL_BOUND: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct Quick(u32);
impl Job for Quick {
    const NAME: &'static str = "Quick";
}

/// Runs until cancelled, then reports when it saw the cancel and returns `then`.
#[derive(Serialize, Deserialize)]
struct Long {
    then: Ending,
}
impl Job for Long {
    const NAME: &'static str = "Long";
    const TRACK_STATUS: bool = true;
}

#[derive(Serialize, Deserialize, Clone, Copy)]
enum Ending {
    /// Returns an error once cancelled, as a well-behaved job does.
    Error,
    /// Returns success anyway (its work was done).
    Success,
    /// Ignores the cancel and keeps going.
    Ignore,
}

fn worker(
    client: &Client,
    config: WorkerConfig,
    seen: mpsc::UnboundedSender<Instant>,
) -> RunningWorker {
    let seen = Arc::new(seen);
    Worker::builder()
        .config(config)
        .register(|_: Quick, _: JobContext| async move { Ok::<_, Failure>(()) })
        .register(move |job: Long, ctx: JobContext| {
            let seen = Arc::clone(&seen);
            async move {
                ctx.progress(1, "started").await.ok();
                ctx.cancelled().await;
                let _ = seen.send(Instant::now());
                match job.then {
                    Ending::Error => Err(Failure::retry("stopped on request")),
                    Ending::Success => Ok("done anyway"),
                    Ending::Ignore => {
                        std::future::pending::<()>().await;
                        Ok("never")
                    }
                }
            }
        })
        .build(client.clone())
        .unwrap()
        .start()
}

/// Enqueues a `Long` job and waits until its handler runs.
async fn running_long(client: &Client, then: Ending) -> JobId {
    let id = client.enqueue(&Long { then }).await.unwrap();
    wait_for(
        "the long job to report progress",
        Duration::from_secs(15),
        || async {
            let s = client.status(&id).await.unwrap()?;
            (s.progress.percent == 1).then_some(())
        },
    )
    .await;
    id
}

/// Nothing is left of job `id` anywhere a worker could take it from.
async fn nowhere(client: &Client, id: &JobId) {
    let found = Inspector::new(client).find_job(id).await.unwrap();
    assert!(found.is_none(), "job {id} is still at {found:?}");
}

#[tokio::test]
async fn a_running_job_is_cancelled_within_a_second_and_not_retried() {
    let redis = TestRedis::start();
    let client = client(&redis, "cancel_running").await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let w = worker(&client, fast_config(), tx);
    let id = running_long(&client, Ending::Error).await;

    let asked = Instant::now();
    assert!(client.cancel(&id).await.unwrap());
    let fired = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        fired.duration_since(asked) < CANCEL_BOUND,
        "ctx.cancelled() fired {:?} after the cancel",
        fired.duration_since(asked)
    );
    // The job's error does not send it to the retry set: it ends cancelled, and is gone.
    wait_for(
        "the processing list to empty",
        Duration::from_secs(10),
        || async {
            let busy: usize = Inspector::new(&client)
                .processes()
                .await
                .unwrap()
                .iter()
                .map(|p| p.busy as usize)
                .sum();
            (busy == 0).then_some(())
        },
    )
    .await;
    wait_for_state(&client, &id, JobState::Cancelled).await;
    nowhere(&client, &id).await;
    // Cancelling again is too late.
    assert!(!client.cancel(&id).await.unwrap());
    w.shutdown().await.unwrap();
    nowhere(&client, &id).await;
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
}

#[tokio::test]
async fn a_cancelled_job_that_ignores_it_is_dropped_after_the_grace() {
    let redis = TestRedis::start();
    let client = client(&redis, "cancel_ignored").await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let config = WorkerConfig {
        cancel_grace: Duration::from_millis(300),
        ..fast_config()
    };
    let w = worker(&client, config, tx);
    let id = running_long(&client, Ending::Ignore).await;
    assert!(client.cancel(&id).await.unwrap());
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    // After the grace the job is dropped, not retried.
    wait_for(
        "the ignoring job to be dropped",
        Duration::from_secs(10),
        || async {
            let found = Inspector::new(&client).find_job(&id).await.unwrap();
            found.is_none().then_some(())
        },
    )
    .await;
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_job_that_still_succeeds_is_recorded_as_succeeded() {
    let redis = TestRedis::start();
    let client = client(&redis, "cancel_succeeds").await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let w = worker(&client, fast_config(), tx);
    let id = running_long(&client, Ending::Success).await;
    assert!(client.cancel(&id).await.unwrap());
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    wait_for_state(&client, &id, JobState::Succeeded).await;
    let status = client.status(&id).await.unwrap().unwrap();
    assert_eq!(status.result, Some(serde_json::json!("done anyway")));
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_quiet_process_takes_no_more_jobs_and_a_stopped_one_shuts_down() {
    let redis = TestRedis::start();
    let client = client(&redis, "quiet_stop").await;
    let (tx, _seen) = mpsc::unbounded_channel();
    let w = worker(&client, fast_config(), tx);
    let first = client.enqueue(&Quick(0)).await.unwrap();
    wait_for_state(&client, &first, JobState::Succeeded).await;
    let inspect = Inspector::new(&client);
    let identity = w.identity();

    assert!(!inspect.quiet("no-such-process").await.unwrap());
    assert!(inspect.quiet(&identity).await.unwrap());
    // The process record says quiet once the signal was read (Sidekiq's Web UI shows it).
    wait_for(
        "the process to report quiet",
        Duration::from_secs(5),
        || async {
            let processes = inspect.processes().await.unwrap();
            let me = processes.iter().find(|p| p.identity == identity)?;
            me.quiet.then_some(())
        },
    )
    .await;
    // Quiet: a job enqueued now stays queued while the process stays up. Its wake-up and
    // idle poll (200 ms) would have fetched it by the time two more beats (200 ms apart)
    // land, so the check comes after those.
    let later = client.enqueue(&Quick(1)).await.unwrap();
    let beat_of = async |inspect: &Inspector<'_>| {
        let processes = inspect.processes().await.unwrap();
        processes
            .iter()
            .find(|p| p.identity == identity)
            .and_then(|p| p.beat)
            .map(|b| b.as_secs_f64())
    };
    let enqueued_beat = beat_of(&inspect).await.unwrap();
    for _ in 0..2 {
        let seen = beat_of(&inspect).await.unwrap();
        wait_for("another heartbeat", Duration::from_secs(5), || async {
            (beat_of(&inspect).await? > seen).then_some(())
        })
        .await;
    }
    assert!(beat_of(&inspect).await.unwrap() > enqueued_beat);
    let mut conn = raw(&redis).await;
    let queue = client.keys().queue("default");
    let queued: i64 = redis::cmd("LLEN")
        .arg(&queue)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(queued, 1, "a quiet process took a job");
    assert!(!w.is_stopped());

    // Stop: the process shuts down by itself, and unregisters.
    assert!(inspect.stop(&identity).await.unwrap());
    wait_for(
        "the stopped process to exit",
        Duration::from_secs(10),
        || async { w.is_stopped().then_some(()) },
    )
    .await;
    w.shutdown().await.unwrap();
    let processes = inspect.processes().await.unwrap();
    assert!(processes.iter().all(|p| p.identity != identity));

    // Another process takes the job the quiet one left.
    let other = Worker::builder()
        .config(fast_config())
        .register(|_: Quick, _: JobContext| async move { Ok::<_, Failure>(()) })
        .build(client.clone())
        .unwrap()
        .start();
    wait_for_size(
        &conn,
        &queue,
        0,
        "the queue to drain",
        Duration::from_secs(10),
    )
    .await;
    other.shutdown().await.unwrap();
    let _ = later;
}

#[tokio::test]
async fn heartbeats_count_finished_jobs_per_minute_for_the_dashboard() {
    let redis = TestRedis::start();
    let client = client(&redis, "minute_counts").await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let w = worker(&client, fast_config(), tx);
    for i in 0..30 {
        client.enqueue(&Quick(i)).await.unwrap();
    }
    // A job cancelled while running counts as processed, not failed.
    let long = running_long(&client, Ending::Error).await;
    assert!(client.cancel(&long).await.unwrap());
    seen.recv().await.unwrap();
    let inspect = Inspector::new(&client);
    let counted = wait_for("31 jobs counted", Duration::from_secs(10), || async {
        let minutes = inspect.recent_throughput(60).await.unwrap();
        let processed: u64 = minutes.iter().map(|m| m.processed).sum();
        (processed >= 31).then_some(minutes)
    })
    .await;
    assert_eq!(counted.len(), 60);
    assert!(
        counted
            .windows(2)
            .all(|w| w[0].minute.as_secs_f64() + 60.0 == w[1].minute.as_secs_f64())
    );
    assert_eq!(counted.iter().map(|m| m.processed).sum::<u64>(), 31);
    // The cancelled job is processed, not failed.
    assert_eq!(counted.iter().map(|m| m.failed).sum::<u64>(), 0);
    w.shutdown().await.unwrap();
}

/// Subscribers of the wake channel now (`PUBSUB NUMSUB`).
async fn wake_subscribers(conn: &mut redis::aio::MultiplexedConnection, client: &Client) -> i64 {
    let (_, n): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(client.keys().wake_channel())
        .query_async(conn)
        .await
        .unwrap();
    n
}

// The wake listener doubled its reconnect delay on every drop and never reset it, so after a
// few drops over a process's life (a failover, an idle-connection reaper, a proxy restart)
// each later drop kept the channel down 5 s: a cancel sent meanwhile reached the job only
// then, well past the 1 s bound.
#[tokio::test]
async fn a_cancel_during_a_wake_channel_drop_lands_within_a_second_however_many_drops_came_before()
{
    // Kills the server's pub/sub connections (CLIENT KILL).
    let redis = TestRedis::start_private();
    let client = client(&redis, "cancel_after_drops").await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let w = worker(&client, fast_config(), tx);
    let mut conn = raw(&redis).await;
    for _ in 0..7 {
        wait_for(
            "the wake channel to be subscribed",
            Duration::from_secs(30),
            || {
                let mut conn = conn.clone();
                let client = client.clone();
                async move { (wake_subscribers(&mut conn, &client).await == 1).then_some(()) }
            },
        )
        .await;
        let _: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    // Reconnected after the drops: a job runs, the channel drops once more, and the cancel
    // is sent while it is down (caught by the read of running jobs' records on resubscribing).
    wait_for(
        "the wake channel to be subscribed",
        Duration::from_secs(30),
        || {
            let mut conn = conn.clone();
            let client = client.clone();
            async move { (wake_subscribers(&mut conn, &client).await == 1).then_some(()) }
        },
    )
    .await;
    let id = running_long(&client, Ending::Error).await;
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    let asked = Instant::now();
    assert!(client.cancel(&id).await.unwrap());
    let fired = tokio::time::timeout(Duration::from_secs(15), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        fired.duration_since(asked) < CANCEL_BOUND,
        "ctx.cancelled() fired {:?} after the cancel",
        fired.duration_since(asked)
    );
    wait_for_state(&client, &id, JobState::Cancelled).await;
    w.shutdown().await.unwrap();
    nowhere(&client, &id).await;
}

// A job prefetched behind a busy slot is already marked running, so cancelling it fired its
// token; but the runner only looked at the token once the job ran, so it started the
// handler of a cancelled job when the slot came free (and a job that ignores the cancel then
// ran on for the whole cancel grace).
#[tokio::test]
async fn a_job_cancelled_while_prefetched_never_starts() {
    let redis = TestRedis::start();
    let client = client(&redis, "cancel_prefetched").await;
    let (tx, mut seen) = mpsc::unbounded_channel();
    let config = WorkerConfig {
        concurrency: 1,
        prefetch: Some(1),
        prefetch_max_wait: Duration::from_secs(60),
        ..fast_config()
    };
    let w = worker(&client, config, tx);
    // The first job holds the only slot while two more are enqueued; when it ends, one
    // slot has turned over, so the next fetch takes both: one runs, one waits for the slot.
    let first = running_long(&client, Ending::Error).await;
    let a = client
        .enqueue(&Long {
            then: Ending::Error,
        })
        .await
        .unwrap();
    let b = client
        .enqueue(&Long {
            then: Ending::Error,
        })
        .await
        .unwrap();
    assert!(client.cancel(&first).await.unwrap());
    seen.recv().await.unwrap();
    let (running, waiting) = wait_for(
        "one job running and one waiting for the slot",
        Duration::from_secs(15),
        || async {
            let sa = client.status(&a).await.unwrap()?;
            let sb = client.status(&b).await.unwrap()?;
            if sa.state != JobState::Running || sb.state != JobState::Running {
                return None;
            }
            match (sa.progress.percent, sb.progress.percent) {
                (1, 0) => Some((a.clone(), b.clone())),
                (0, 1) => Some((b.clone(), a.clone())),
                _ => None,
            }
        },
    )
    .await;
    assert!(client.cancel(&waiting).await.unwrap());
    assert!(client.cancel(&running).await.unwrap());
    seen.recv().await.unwrap();
    for id in [&running, &waiting] {
        wait_for(
            "the cancelled job to be dropped",
            Duration::from_secs(15),
            || async {
                let found = Inspector::new(&client).find_job(id).await.unwrap();
                found.is_none().then_some(())
            },
        )
        .await;
        wait_for_state(&client, id, JobState::Cancelled).await;
    }
    let status = client.status(&waiting).await.unwrap().unwrap();
    assert_eq!(
        status.progress.percent, 0,
        "the cancelled job's handler ran"
    );
    assert!(seen.try_recv().is_err());
    w.shutdown().await.unwrap();
}
