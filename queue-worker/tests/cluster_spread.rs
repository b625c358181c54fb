//! A worker whose queues are spread over a cluster's slots: one process works three queues
//! on three masters, every job runs exactly once, the process's concurrency bounds the jobs
//! of all its queues together, scheduled jobs and retries are promoted in each slot, cron
//! ticks land in their queue's slot, and the shutdown removes the process from every slot.

mod worker_in_process;

use queue_core::testing::TestCluster;
use queue_core::{Client, EnqueueOptions, Inspector, Job, JobState, NewJob};
use queue_worker::{Failure, JobContext, Periodic, Queues, Worker, WorkerBuilder};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Count(u32);
impl Job for Count {
    const NAME: &'static str = "Count";
}

#[derive(Serialize, Deserialize)]
struct FailOnce(u32);
impl Job for FailOnce {
    const NAME: &'static str = "FailOnce";
}

#[derive(Serialize, Deserialize)]
struct Tick(u32);
impl Job for Tick {
    const NAME: &'static str = "Tick";
}

/// Three queue names whose slots are served by three different masters.
fn queues_on_three_masters(cluster: &TestCluster, client: &Client) -> Vec<String> {
    cluster
        .queues_on_distinct_masters(client.config(), 3)
        .into_iter()
        .map(|(queue, _)| queue)
        .collect()
}

/// `builder` with a handler of [`Count`] that adds each run to `runs`.
fn counting(builder: WorkerBuilder, runs: &Arc<AtomicUsize>) -> WorkerBuilder {
    let runs = Arc::clone(runs);
    builder.register(move |_job: Count, _ctx: JobContext| {
        let runs = runs.clone();
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Failure>(())
        }
    })
}

const CONCURRENCY: usize = 4;
const PER_QUEUE: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_works_queues_on_three_masters_within_its_concurrency() {
    let cluster = TestCluster::start();
    let client = Client::connect(cluster.config("spread_worker").spread_queues(true))
        .await
        .unwrap();
    let queues = queues_on_three_masters(&cluster, &client);

    let runs: Arc<Mutex<HashMap<u32, usize>>> = Arc::default();
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let failed_once = Arc::new(AtomicUsize::new(0));
    let ticks = Arc::new(AtomicUsize::new(0));
    let worker = {
        let (runs, running, peak) = (runs.clone(), running.clone(), peak.clone());
        let failed_once = failed_once.clone();
        let ticks = ticks.clone();
        Worker::builder()
            .config(fast_config())
            .concurrency(CONCURRENCY)
            .queues(Queues::strict(&queues).unwrap())
            .register(move |job: Count, _ctx: JobContext| {
                let (runs, running, peak) = (runs.clone(), running.clone(), peak.clone());
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    *runs.lock().unwrap().entry(job.0).or_default() += 1;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Failure>(())
                }
            })
            .register(move |_job: FailOnce, ctx: JobContext| {
                let failed_once = failed_once.clone();
                async move {
                    if ctx.attempt() == 1 {
                        failed_once.fetch_add(1, Ordering::SeqCst);
                        return Err(Failure::retry_in(Duration::from_millis(100), "once"));
                    }
                    Ok(())
                }
            })
            .register(move |_job: Tick, _ctx: JobContext| {
                let ticks = ticks.clone();
                async move {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, Failure>(())
                }
            })
            .periodic(
                Periodic::untyped(
                    "every-second",
                    "* * * * * *",
                    "UTC",
                    NewJob {
                        options: EnqueueOptions::new().queue(&queues[2]),
                        ..NewJob::new("Tick", vec![json!(0)])
                    },
                )
                .unwrap(),
            )
            .build(client.clone())
            .unwrap()
            .start()
    };

    let jobs: Vec<NewJob> = (0..PER_QUEUE * 3)
        .map(|i| NewJob {
            options: EnqueueOptions::new().queue(&queues[i % 3]),
            ..NewJob::new("Count", vec![json!(i)])
        })
        .collect();
    client.push_bulk(jobs).await.unwrap();
    let later = client
        .push(NewJob {
            options: EnqueueOptions::new()
                .queue(&queues[1])
                .delay(Duration::from_secs(1)),
            ..NewJob::new("Count", vec![json!(10_000)])
        })
        .await
        .unwrap();
    let retried = client
        .push(NewJob {
            options: EnqueueOptions::new().queue(&queues[0]),
            ..NewJob::new("FailOnce", vec![json!(0)])
        })
        .await
        .unwrap();

    wait_for("every job to run", Duration::from_secs(60), || async {
        (runs.lock().unwrap().len() == PER_QUEUE * 3 + 1).then_some(())
    })
    .await;
    wait_for_state(&client, &later, JobState::Succeeded).await;
    wait_for_state(&client, &retried, JobState::Succeeded).await;
    assert_eq!(failed_once.load(Ordering::SeqCst), 1);
    wait_for("a cron tick to run", Duration::from_secs(10), || async {
        (ticks.load(Ordering::SeqCst) > 0).then_some(())
    })
    .await;

    let runs = runs.lock().unwrap().clone();
    assert!(runs.values().all(|&n| n == 1), "a job ran twice: {runs:?}");
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= CONCURRENCY,
        "{peak} jobs ran at once with concurrency {CONCURRENCY}"
    );

    // The process is registered in each queue's slot, with its own identity there, and
    // the whole-app view lists the three.
    for queue in &queues {
        let slot = client.for_queue(queue);
        let processes = Inspector::in_slot(&slot).processes().await.unwrap();
        assert_eq!(processes.len(), 1, "{queue}: {processes:?}");
    }
    assert_eq!(Inspector::new(&client).processes().await.unwrap().len(), 3);
    let totals = Inspector::new(&client).totals().await.unwrap();
    assert!(totals.processed >= (PER_QUEUE * 3 + 3) as u64, "{totals:?}");
    worker.shutdown().await.unwrap();
    for queue in &queues {
        let slot = client.for_queue(queue);
        assert!(
            Inspector::in_slot(&slot)
                .processes()
                .await
                .unwrap()
                .is_empty(),
            "{queue}: the process is still registered after its shutdown"
        );
        assert_eq!(Inspector::new(&client).queue(queue).await.unwrap().size, 0);
    }
}

#[derive(Serialize, Deserialize)]
struct Hold(u32);
impl Job for Hold {
    const NAME: &'static str = "Hold";
}

/// Jobs taken (in the slots' processing lists) by one process over all its queue slots.
async fn taken(client: &Client, queues: &[String]) -> usize {
    let mut n = 0;
    for queue in queues {
        let slot = client.for_queue(queue);
        for identity in slot.registered_identities().await.unwrap() {
            n += slot.processing_entries(&identity).await.unwrap().len();
        }
    }
    n
}

/// The process's concurrency bounds the jobs it takes over all its queues, not per queue:
/// with long jobs in three queues and no slot turning over, only as many jobs as it runs
/// are taken. Before, each queue's fetch loop took up to the whole concurrency for itself,
/// so two thirds of the jobs taken waited for a slot, went back to their queue after
/// `prefetch_max_wait`, and were taken again, every second (the other processes could not
/// have them meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_takes_no_more_jobs_over_its_queues_than_it_can_run() {
    const HELD: usize = 2;
    let cluster = TestCluster::start();
    let client = Client::connect(cluster.config("spread_room").spread_queues(true))
        .await
        .unwrap();
    let queues = queues_on_three_masters(&cluster, &client);
    let jobs: Vec<NewJob> = (0..12)
        .map(|i| NewJob {
            options: EnqueueOptions::new().queue(&queues[i % 3]),
            ..NewJob::new("Hold", vec![json!(i)])
        })
        .collect();
    client.push_bulk(jobs).await.unwrap();

    let running = Arc::new(AtomicUsize::new(0));
    // Closed until the check is done, then open for every job.
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let worker = {
        let (running, release) = (running.clone(), release.clone());
        Worker::builder()
            .config(fast_config())
            .concurrency(HELD)
            .queues(Queues::strict(&queues).unwrap())
            .register(move |_job: Hold, _ctx: JobContext| {
                let (running, release) = (running.clone(), release.clone());
                async move {
                    running.fetch_add(1, Ordering::SeqCst);
                    drop(release.acquire().await);
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Failure>(())
                }
            })
            .build(client.clone())
            .unwrap()
            .start()
    };
    wait_for("the slots to fill", Duration::from_secs(10), || async {
        (running.load(Ordering::SeqCst) == HELD).then_some(())
    })
    .await;
    // Every slot's fetch loop has had its first fetch by now (they start together); watch
    // past `prefetch_max_wait`, when jobs waiting for a slot would go back and be taken again.
    let until = tokio::time::Instant::now() + fast_config().prefetch_max_wait * 2;
    while tokio::time::Instant::now() < until {
        let n = taken(&client, &queues).await;
        assert!(
            n <= HELD,
            "{n} jobs taken by a process that runs {HELD} and has none finishing"
        );
    }
    // Every job still runs, once slots turn over.
    release.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
    wait_for("every queue to drain", Duration::from_secs(20), || async {
        for queue in &queues {
            if Inspector::new(&client).queue(queue).await.unwrap().size > 0
                || taken(&client, std::slice::from_ref(queue)).await > 0
            {
                return None;
            }
        }
        Some(())
    })
    .await;
    worker.shutdown().await.unwrap();
}

/// The process's room is shared by its queues' fetch loops: a loop that found the room
/// taken by another's fetch is told when that fetch comes back with fewer jobs than it took
/// room for. With one slot of concurrency and two idle queues polling often, the busy
/// queue's loop would otherwise wait for a job to finish that never started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_queues_polling_leave_the_room_to_a_busy_one() {
    let cluster = TestCluster::start();
    let client = Client::connect(cluster.config("spread_polls").spread_queues(true))
        .await
        .unwrap();
    let queues = queues_on_three_masters(&cluster, &client);
    let runs = Arc::new(AtomicUsize::new(0));
    let builder = Worker::builder()
        .config(fast_config())
        .configure(|c| c.idle_poll = Duration::from_millis(2))
        .concurrency(1)
        .queues(Queues::strict(&queues).unwrap());
    let worker = counting(builder, &runs)
        .build(client.clone())
        .unwrap()
        .start();
    for i in 0..30 {
        client
            .push(NewJob {
                options: EnqueueOptions::new().queue(&queues[0]),
                ..NewJob::new("Count", vec![json!(i)])
            })
            .await
            .unwrap();
        wait_for("the job to run", Duration::from_secs(5), || async {
            (runs.load(Ordering::SeqCst) == i as usize + 1).then_some(())
        })
        .await;
    }
    worker.shutdown().await.unwrap();
}

#[derive(Serialize, Deserialize)]
struct Share(usize);
impl Job for Share {
    const NAME: &'static str = "Share";
}

/// Queues with work share the process's room: none is kept waiting while another's
/// backlog drains. Before, the queue whose jobs turned over got all the prefetch room, and
/// with it nearly every fetch (a drain of three queues ran 221 jobs of one, 3 and 16 of the
/// others).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_with_work_share_the_process() {
    const PER_QUEUE: usize = 300;
    let cluster = TestCluster::start();
    let client = Client::connect(cluster.config("spread_share").spread_queues(true))
        .await
        .unwrap();
    let queues = queues_on_three_masters(&cluster, &client);
    let jobs: Vec<NewJob> = (0..PER_QUEUE * 3)
        .map(|i| NewJob {
            options: EnqueueOptions::new().queue(&queues[i / PER_QUEUE]),
            ..NewJob::new("Share", vec![json!(i / PER_QUEUE)])
        })
        .collect();
    client.push_bulk(jobs).await.unwrap();
    let runs: Arc<[AtomicUsize; 3]> = Arc::default();
    let worker = {
        let runs = runs.clone();
        Worker::builder()
            .config(fast_config())
            .concurrency(4)
            .queues(Queues::strict(&queues).unwrap())
            .register(move |job: Share, _ctx: JobContext| {
                let runs = runs.clone();
                async move {
                    runs[job.0].fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    Ok::<_, Failure>(())
                }
            })
            .build(client.clone())
            .unwrap()
            .start()
    };
    let total = || runs.iter().map(|r| r.load(Ordering::SeqCst)).sum::<usize>();
    wait_for(
        "a third of the jobs to run",
        Duration::from_secs(60),
        || async { (total() >= PER_QUEUE).then_some(()) },
    )
    .await;
    let each: Vec<usize> = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
    assert!(
        each.iter().all(|&n| n >= PER_QUEUE / 10),
        "runs per queue after {} jobs: {each:?}",
        total()
    );
    worker.shutdown().await.unwrap();
}

/// A key of another type where one queue's slot keeps its worker registry (planted, or
/// another app's) stops that queue only: the process still works its other queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_registry_key_in_one_slot_stops_only_that_queue() {
    let cluster = TestCluster::start();
    let client = Client::connect(cluster.config("planted_slot").spread_queues(true))
        .await
        .unwrap();
    let queues = queues_on_three_masters(&cluster, &client);
    let (blocked, open) = (&queues[0], &queues[1]);
    let mut conn = client.raw_connection();
    redis::cmd("SET")
        .arg(client.for_queue(blocked).keys().workers())
        .arg("not a set")
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let builder = Worker::builder()
        .config(fast_config())
        .queues(Queues::strict(&[blocked.as_str(), open.as_str()]).unwrap());
    let worker = counting(builder, &ran)
        .build(client.clone())
        .unwrap()
        .start();
    let id = client
        .push(NewJob {
            options: EnqueueOptions::new().queue(open),
            ..NewJob::new("Count", vec![json!(1)])
        })
        .await
        .unwrap();
    wait_for_state(&client, &id, JobState::Succeeded).await;
    assert!(!worker.is_stopped(), "the worker stopped");
    worker.shutdown().await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1);
}
