//! Rate limiters across real worker processes: 20 processes at concurrency 25 under a
//! concurrent limit of 10 and a window of 100 per second; a ledger of admission, start and
//! end times shows neither limit exceeded and the throughput close to the limit.

mod worker_binary;

use queue_core::testing::TestRedis;
use queue_core::{Client, NewJob};
use serde_json::json;
use std::time::{Duration, Instant};
use worker_binary::*;

const PROCESSES: usize = 20;
const CONCURRENCY: usize = 25;
const MAX_AT_ONCE: u32 = 10;
const PER_SECOND: u32 = 100;
/// Jobs: more than the run can admit in `MEASURE`, so the limiter stays saturated.
const JOBS: usize = 700;
/// How long each job runs: at 10 at once that alone would allow 200 per second, so both
/// limits bind (the window on average, the concurrency in the bursts the window allows).
const JOB_MILLIS: u64 = 50;
/// The steady-state span the throughput is measured over, from the first admission.
const MEASURE: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_never_exceed_either_limit_and_reach_the_rate() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("limiters")).await.unwrap();
    let harness = Harness::new("limiters", &redis.url(), "{limiters}:");
    let workers: Vec<_> = (0..PROCESSES)
        .map(|i| harness.spawn(&format!("w{i}"), CONCURRENCY, 5, &[]))
        .collect();
    for w in &workers {
        wait_registered(&client, w.pid(), Duration::from_secs(20)).await;
    }
    let jobs: Vec<NewJob> = (0..JOBS)
        .map(|_| {
            let mut j = NewJob::new(
                "queue::Limited",
                vec![json!({"concurrent": MAX_AT_ONCE, "per_second": PER_SECOND, "millis": JOB_MILLIS})],
            );
            j.track_status = false;
            j
        })
        .collect();
    client.push_bulk(jobs).await.unwrap();

    // Wait until the measured span is over (the ledger is read, not slept on).
    let key = client.keys().diagnostics_spans();
    let mut conn = client.raw_connection();
    let begun = Instant::now();
    let spans: Vec<(u64, u64, u64)> = loop {
        let lines: Vec<String> = redis::cmd("LRANGE")
            .arg(&key)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .unwrap();
        let spans: Vec<(u64, u64, u64)> = lines
            .iter()
            .map(|l| {
                let v: Vec<u64> = l.split(' ').map(|x| x.parse().unwrap()).collect();
                (v[0], v[1], v[2])
            })
            .collect();
        let first = spans.iter().map(|s| s.0).min();
        let last = spans.iter().map(|s| s.0).max();
        if let (Some(f), Some(l)) = (first, last)
            && l >= f + MEASURE.as_millis() as u64 + 500
        {
            break spans;
        }
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "only {} jobs ran in 60 s",
            spans.len()
        );
        tokio::time::sleep(POLL).await;
    };
    drop(workers);

    // Concurrent limit: the most spans open at once.
    let mut events: Vec<(u64, i32)> = Vec::new();
    for &(_, start, end) in &spans {
        events.push((start, 1));
        events.push((end, -1));
    }
    // Ends before starts at the same millisecond: touching spans do not overlap.
    events.sort();
    let (mut open, mut peak_open) = (0i32, 0i32);
    for (_, d) in events {
        open += d;
        peak_open = peak_open.max(open);
    }
    // Window limit: the most admissions in any 1 s window (admission times are Redis's).
    let mut admitted: Vec<u64> = spans.iter().map(|s| s.0).collect();
    admitted.sort();
    let mut peak_window = 0usize;
    let mut lo = 0usize;
    for hi in 0..admitted.len() {
        while admitted[hi] - admitted[lo] >= 1000 {
            lo += 1;
        }
        peak_window = peak_window.max(hi - lo + 1);
    }
    let t0 = admitted[0];
    let measured = admitted
        .iter()
        .filter(|&&a| a < t0 + MEASURE.as_millis() as u64)
        .count();
    let rate = measured as f64 / MEASURE.as_secs_f64();
    println!(
        "limiters: {PROCESSES} processes x {CONCURRENCY} slots, limits {MAX_AT_ONCE} at once and \
         {PER_SECOND}/s, jobs of {JOB_MILLIS} ms: peak at once {peak_open}, peak in any 1 s \
         {peak_window}, throughput {rate:.1}/s over the first {} s",
        MEASURE.as_secs()
    );
    assert!(peak_open <= MAX_AT_ONCE as i32, "{peak_open} ran at once");
    assert!(
        peak_window <= PER_SECOND as usize,
        "{peak_window} admitted in 1 s"
    );
    assert!(
        rate >= PER_SECOND as f64 * 0.9,
        "throughput {rate:.1}/s is not within 10% of {PER_SECOND}/s"
    );
}
