//! The finished-job log under load: a real worker drains 100,000 no-op jobs from a private
//! Redis while every log line is stamped with the time it was written; no one-second window
//! may hold 10 lines or more, and the `count#` values must add up to every job.
//!
//! Ignored by default (about a minute in a debug build); run it with
//! `cargo test -p queue-worker --test finished_log_load -- --ignored --nocapture`.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, NewJob};
use queue_worker::{Failure, JobContext, Worker};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Noop(u64);
impl Job for Noop {
    const NAME: &'static str = "Noop";
    const TRACK_STATUS: bool = false;
}

const JOBS: u64 = 100_000;

/// Keeps each finished-job line with the time it was written.
#[derive(Clone, Default)]
struct Stamped(Arc<Mutex<Vec<(Instant, String)>>>);
impl Write for Stamped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf).into_owned();
        if line.contains("target=queue_worker::finished") {
            self.0.lock().unwrap().push((Instant::now(), line));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: run with -- --ignored"]
async fn a_100_000_job_drain_logs_under_10_finished_lines_a_second() {
    let lines = Stamped::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .fmt_fields(queue_core::platform::LogfmtFields)
        .event_format(queue_core::platform::Logfmt)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let redis = TestRedis::start();
    let client = client(&redis, "finished_log_load").await;
    for chunk in (0..JOBS).collect::<Vec<_>>().chunks(10_000) {
        let jobs = chunk
            .iter()
            .map(|n| NewJob::typed(&Noop(*n), Default::default()).unwrap())
            .collect();
        client.push_bulk(jobs).await.unwrap();
    }
    let started = Instant::now();
    let worker = Worker::builder()
        .config(fast_config())
        .concurrency(50)
        .register(|_: Noop, _: JobContext| async { Ok::<_, Failure>(()) })
        .build(client.clone())
        .unwrap()
        .start();
    let conn = raw(&redis).await;
    wait_for_size(
        &conn,
        &client.keys().queue("default"),
        0,
        "queue drained",
        Duration::from_secs(300),
    )
    .await;
    // The last jobs are acked within a cycle; the shutdown closes the last window.
    let counted = || {
        lines
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| {
                l.split(' ')
                    .filter_map(|p| p.strip_prefix("count#jobs.succeeded="))
                    .map(|v| v.parse::<u64>().unwrap())
                    .sum::<u64>()
            })
            .sum::<u64>()
    };
    wait_for("every job counted", Duration::from_secs(30), || async {
        (counted() + 50 >= JOBS).then_some(())
    })
    .await;
    worker.shutdown().await.unwrap();
    let took = started.elapsed();
    assert_eq!(counted(), JOBS);

    let lines = lines.0.lock().unwrap().clone();
    let mut worst = 0;
    for (i, (at, _)) in lines.iter().enumerate() {
        let in_window = lines[i..]
            .iter()
            .take_while(|(t, _)| *t < *at + Duration::from_secs(1))
            .count();
        worst = worst.max(in_window);
    }
    println!(
        "{JOBS} jobs in {:.1} s ({:.0} jobs/s): {} finished-job lines, at most {worst} in any 1 s window",
        took.as_secs_f64(),
        JOBS as f64 / took.as_secs_f64(),
        lines.len()
    );
    assert!(worst < 10, "{worst} lines in one second");
}
