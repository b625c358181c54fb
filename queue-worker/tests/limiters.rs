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
    let harness = Harness::new("limiters", client.config());
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

/// The members of concurrent limiter `name`'s slot set.
async fn slot_holders(client: &Client, name: &str) -> Vec<String> {
    let mut conn = client.raw_connection();
    redis::cmd("ZRANGE")
        .arg(client.keys().limiter(name))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// A process killed with SIGKILL while its job holds a concurrent limiter's slot: the slot
/// is given back about when the process's lease expires, not an hour later. (It used to last
/// an hour: with a limit of 1, every job of the limiter, the recovered one included, was
/// deferred again and again for that hour.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_held_by_a_killed_process_is_freed_when_its_lease_expires() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("slotkill")).await.unwrap();
    let harness = Harness::new("slot_killed", client.config());
    let mut holder = harness.spawn("holder", 2, 5, &FAST_RECOVERY);
    wait_registered(&client, holder.pid(), Duration::from_secs(20)).await;
    let mut job = NewJob::new(
        "queue::Limited",
        vec![json!({"concurrent": 1, "per_second": 1000, "millis": 60_000})],
    );
    job.track_status = false;
    client.push_bulk(vec![job]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let held = loop {
        let held = slot_holders(&client, "diag-concurrent").await;
        if !held.is_empty() {
            break held;
        }
        assert!(Instant::now() < deadline, "the job never took the slot");
        tokio::time::sleep(POLL).await;
    };
    holder.kill9();
    let rescuer = harness.spawn("rescuer", 2, 5, &FAST_RECOVERY);
    wait_registered(&client, rescuer.pid(), Duration::from_secs(20)).await;
    // Lease 1 s, reaper 0.3 s: the dead holder's slot must be gone well within 10 s (the
    // recovered job may take the slot again, under a new holder).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = slot_holders(&client, "diag-concurrent").await;
        if !now.contains(&held[0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed process's slot {held:?} is still held"
        );
        tokio::time::sleep(POLL).await;
    }
    // The recovered job runs again and takes the slot: a live holder's slot is renewed with
    // its lease, so it outlives many lease lifetimes while the job runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let again = loop {
        let now = slot_holders(&client, "diag-concurrent").await;
        if let Some(h) = now.into_iter().find(|h| *h != held[0]) {
            break h;
        }
        assert!(
            Instant::now() < deadline,
            "the recovered job never took the slot"
        );
        tokio::time::sleep(POLL).await;
    };
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let now = slot_holders(&client, "diag-concurrent").await;
        assert_eq!(now, vec![again.clone()], "a running job's slot expired");
        tokio::time::sleep(POLL).await;
    }
}

/// A slot planted with an expiry far in the future (year 33,000) used to hold a concurrent
/// limiter of 1 at its limit for ever: the job was deferred again and again and never ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_planted_far_in_the_future_does_not_hold_the_limiter_for_ever() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("slotghost")).await.unwrap();
    let harness = Harness::new("slot_ghost", client.config());
    let mut conn = client.raw_connection();
    let () = redis::cmd("ZADD")
        .arg(client.keys().limiter("diag-concurrent"))
        .arg("1e15")
        .arg("ghost")
        .query_async(&mut conn)
        .await
        .unwrap();
    let worker = harness.spawn("w0", 2, 5, &[]);
    wait_registered(&client, worker.pid(), Duration::from_secs(20)).await;
    let mut job = NewJob::new(
        "queue::Limited",
        vec![json!({"concurrent": 1, "per_second": 1000, "millis": 10})],
    );
    job.track_status = false;
    client.push_bulk(vec![job]).await.unwrap();
    let key = client.keys().diagnostics_spans();
    let deadline = Instant::now() + Duration::from_secs(15);
    while llen(&client, &key).await < 1 {
        assert!(
            Instant::now() < deadline,
            "the job never ran: limiter holders {:?}",
            slot_holders(&client, "diag-concurrent").await
        );
        tokio::time::sleep(POLL).await;
    }
}
