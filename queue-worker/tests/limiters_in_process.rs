//! Limiters on a job type and inside a handler: limits held, and an over-limit job
//! rescheduled without using a retry.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, JobState};
use queue_worker::{Failure, JobContext, Limit, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct CallApi(u32);
impl Job for CallApi {
    const NAME: &'static str = "CallApi";
}

#[derive(Serialize, Deserialize)]
struct Once(u32);
impl Job for Once {
    const NAME: &'static str = "Once";
}

#[tokio::test]
async fn a_job_type_limit_holds_both_its_concurrency_and_its_rate() {
    let redis = TestRedis::start();
    let client = client(&redis, "type_limits").await;
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let starts = Arc::new(Mutex::new(Vec::new()));
    let worker = {
        let (running, peak, starts) = (running.clone(), peak.clone(), starts.clone());
        Worker::builder()
            .config(fast_config())
            .concurrency(8)
            .register(move |_: CallApi, _: JobContext| {
                let (running, peak, starts) = (running.clone(), peak.clone(), starts.clone());
                async move {
                    starts.lock().unwrap().push(Instant::now());
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Failure>(())
                }
            })
            .limit::<CallApi>("api-rate", Limit::Bucket(20, Duration::from_secs(1)))
            .limit::<CallApi>("api", Limit::Concurrent(2))
            .build(client.clone())
            .unwrap()
            .start()
    };
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(client.enqueue(&CallApi(i)).await.unwrap());
    }
    for id in &ids {
        wait_for_state(&client, id, JobState::Succeeded).await;
    }
    worker.shutdown().await.unwrap();
    assert!(peak.load(Ordering::SeqCst) <= 2, "concurrency limit held");
    let mut starts = starts.lock().unwrap().clone();
    starts.sort();
    let spread = starts[starts.len() - 1] - starts[0];
    // 10 admissions spaced by 50 ms: at least 9 gaps (a little less for timer jitter).
    assert!(
        spread >= Duration::from_millis(400),
        "bucket spaced the starts: {spread:?}"
    );
}

#[tokio::test]
async fn an_over_limit_job_is_rescheduled_without_using_a_retry() {
    let redis = TestRedis::start();
    let client = client(&redis, "over_limit").await;
    let worker = Worker::builder()
        .config(fast_config())
        .register(|_: Once, ctx: JobContext| async move {
            ctx.limiter("hourly")
                .wait(Duration::ZERO)
                .window(1, Duration::from_secs(3600))
                .await?;
            Ok::<_, Failure>(())
        })
        .build(client.clone())
        .unwrap()
        .start();
    let first = client.enqueue(&Once(1)).await.unwrap();
    wait_for_state(&client, &first, JobState::Succeeded).await;
    let second = client.enqueue(&Once(2)).await.unwrap();
    wait_for_state(&client, &second, JobState::Scheduled).await;
    worker.shutdown().await.unwrap();
    let mut conn = raw(&redis).await;
    let scheduled: Vec<String> =
        redis::AsyncCommands::zrange(&mut conn, client.keys().schedule(), 0, -1)
            .await
            .unwrap();
    assert_eq!(scheduled.len(), 1);
    let job: serde_json::Value = serde_json::from_str(&scheduled[0]).unwrap();
    assert_eq!(job["jid"], second.as_str());
    assert!(job.get("retry_count").is_none(), "no retry used: {job}");
    assert_eq!(job["deferred"], 1);
    let failed: Option<i64> = redis::AsyncCommands::get(&mut conn, client.keys().stat_failed())
        .await
        .unwrap();
    assert_eq!(failed, None, "not counted as a failure");
}

#[derive(Serialize, Deserialize)]
struct Tiny;
impl Job for Tiny {
    const NAME: &'static str = "Tiny";
    const TRACK_STATUS: bool = false;
}

/// Redis's CPU time so far (`used_cpu_sys` + `used_cpu_user`), in µs.
async fn redis_cpu_us(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k == "used_cpu_sys" || k == "used_cpu_user").then(|| v.trim().parse::<f64>().ok())?
        })
        .sum::<f64>()
        * 1e6
}

/// A measurement, not a check: Redis CPU per job of a drain of untracked no-op jobs with no
/// limiter and with each kind of limiter (limits never reached, so only the asking costs).
/// Run: `cargo test --release -p queue-worker --test limiters_in_process -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for docs/benchmarks.md"]
async fn redis_cpu_per_job_with_and_without_a_limiter() {
    const JOBS: usize = 20_000;
    // Reads the server's CPU time and command counts (INFO), and resets them.
    let redis = TestRedis::start_private();
    let mut conn = raw(&redis).await;
    for (label, limit) in [
        ("none", None),
        ("concurrent", Some(Limit::Concurrent(u32::MAX))),
        (
            "window",
            Some(Limit::Window(u32::MAX, Duration::from_secs(1))),
        ),
        (
            "bucket",
            Some(Limit::Bucket(1_000_000, Duration::from_secs(1))),
        ),
        ("none (again)", None),
    ] {
        let client = client(
            &redis,
            &format!("cpu_{}", label.replace([' ', '(', ')'], "")),
        )
        .await;
        client
            .enqueue_bulk(&(0..JOBS).map(|_| Tiny).collect::<Vec<_>>())
            .await
            .unwrap();
        let mut builder = Worker::builder()
            .config(fast_config())
            .concurrency(10)
            .register(|_: Tiny, _: JobContext| async { Ok::<_, Failure>(()) });
        if let Some(limit) = limit {
            builder = builder.limit::<Tiny>("bench", limit);
        }
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut conn)
            .await
            .unwrap();
        let before = redis_cpu_us(&mut conn).await;
        let started = Instant::now();
        let worker = builder.build(client.clone()).unwrap().start();
        let processed = client.keys().stat_processed();
        wait_for("the drain", Duration::from_secs(300), || {
            let mut conn = conn.clone();
            let key = processed.clone();
            async move {
                let n: Option<usize> = conn.get(key).await.unwrap();
                (n == Some(JOBS)).then_some(())
            }
        })
        .await;
        let elapsed = started.elapsed();
        let after = redis_cpu_us(&mut conn).await;
        worker.shutdown().await.unwrap();
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .unwrap();
        let calls: Vec<String> = stats
            .lines()
            .filter(|l| l.starts_with("cmdstat_"))
            .map(|l| l.split(",usec_per").next().unwrap_or(l).to_owned())
            .collect();
        println!("  {label}: {calls:?}");
        println!(
            "limiter {label:>12}: {JOBS} jobs in {:.2} s ({:.0} jobs/s), Redis CPU {:.2} µs/job",
            elapsed.as_secs_f64(),
            JOBS as f64 / elapsed.as_secs_f64(),
            (after - before) / JOBS as f64
        );
    }
}
