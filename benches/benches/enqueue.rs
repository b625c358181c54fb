//! Enqueue latency on loopback against a private `redis-server`, with `PING` as the baseline.
//!
//! Run with `cargo bench -p benches --bench enqueue` (needs `redis-server` on `PATH`, as
//! `script/test` installs it; or set `REDIS_URL`, and then only this bench's own prefix is
//! deleted between measurements). Criterion measures, in one group: a `PING` round trip on the
//! client's shared connection, one enqueue with a status record, one without, and a bulk
//! enqueue of 1,000 jobs. Afterwards, 20,000 sequential enqueues and 20,000 `PING`s are
//! timed one by one into HDR histograms and their median, p99 and p99.9 printed (set
//! `ENQUEUE_TAIL_SAMPLES` to change the count, `0` to skip).

use benches::{BenchRedis, ping};
use criterion::{BatchSize, Criterion, Throughput};
use hdrhistogram::Histogram;
use queue_core::{Client, Job};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Per-benchmark measurement time: short, so that the whole run takes about a minute.
const MEASUREMENT: Duration = Duration::from_secs(3);
/// Jobs in one bulk enqueue.
const BULK: usize = 1_000;
/// Sequential calls timed one by one for the tail-latency table.
const TAIL_SAMPLES: u64 = 20_000;

/// A typical small job with a status record.
#[derive(Serialize, Deserialize)]
struct Tracked {
    account_id: u64,
    report: String,
}

impl Job for Tracked {
    const NAME: &'static str = "BuildReport";
}

/// The same job without a status record.
#[derive(Serialize, Deserialize)]
struct Untracked {
    account_id: u64,
    report: String,
}

impl Job for Untracked {
    const NAME: &'static str = "BuildReportQuietly";
    const TRACK_STATUS: bool = false;
}

fn tracked() -> Tracked {
    Tracked {
        account_id: 42,
        report: "monthly".to_owned(),
    }
}

fn untracked() -> Untracked {
    Untracked {
        account_id: 42,
        report: "monthly".to_owned(),
    }
}

/// Empties the server between measurements, so that memory does not grow across millions
/// of enqueues (`FLUSHALL` on a private server, which scripts survive; else our prefix).
async fn flush(redis: &BenchRedis, client: &Client) {
    let mut conn = client.raw_connection();
    redis
        .clear(&mut conn, client.keys().prefix())
        .await
        .expect("clear");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn enqueue(c: &mut Criterion, rt: &tokio::runtime::Runtime, redis: &BenchRedis, client: &Client) {
    let mut group = c.benchmark_group("enqueue");
    group.measurement_time(MEASUREMENT);
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));

    group.bench_function("ping_baseline", |b| {
        b.to_async(rt).iter(|| ping(client));
    });
    group.bench_function("single_tracked", |b| {
        b.to_async(rt)
            .iter(|| async { client.enqueue(&tracked()).await.expect("enqueue") });
    });
    rt.block_on(flush(redis, client));
    group.bench_function("single_untracked", |b| {
        b.to_async(rt)
            .iter(|| async { client.enqueue(&untracked()).await.expect("enqueue") });
    });
    rt.block_on(flush(redis, client));

    group.throughput(Throughput::Elements(BULK as u64));
    group.sample_size(30);
    group.bench_function("bulk_1000_tracked", |b| {
        b.to_async(rt).iter_batched(
            || (0..BULK).map(|_| tracked()).collect::<Vec<_>>(),
            |jobs| async move {
                client.enqueue_bulk(&jobs).await.expect("bulk");
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
    rt.block_on(flush(redis, client));
}

/// Times `n` sequential calls one by one; returns the histogram in nanoseconds.
async fn sample<F, Fut>(n: u64, mut call: F) -> Histogram<u64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut hist = Histogram::<u64>::new_with_bounds(1_000, 10_000_000_000, 3).expect("histogram");
    for _ in 0..n {
        let start = Instant::now();
        call().await;
        hist.saturating_record(start.elapsed().as_nanos() as u64);
    }
    hist
}

fn print_row(name: &str, h: &Histogram<u64>) {
    let us = |q: f64| h.value_at_quantile(q) as f64 / 1_000.0;
    println!(
        "{name:<18} n={:<6} median {:>7.1} µs   p99 {:>7.1} µs   p99.9 {:>7.1} µs   max {:>8.1} µs",
        h.len(),
        us(0.5),
        us(0.99),
        us(0.999),
        h.max() as f64 / 1_000.0
    );
}

fn tail_latency(rt: &tokio::runtime::Runtime, redis: &BenchRedis, client: &Client) {
    let n = std::env::var("ENQUEUE_TAIL_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TAIL_SAMPLES);
    if n == 0 {
        return;
    }
    rt.block_on(async {
        // Warm-up, then alternate so both see the same machine conditions.
        sample(1_000, || ping(client)).await;
        let pings = sample(n, || ping(client)).await;
        let tracked_h = sample(n, || async {
            client.enqueue(&tracked()).await.expect("enqueue");
        })
        .await;
        flush(redis, client).await;
        let untracked_h = sample(n, || async {
            client.enqueue(&untracked()).await.expect("enqueue");
        })
        .await;
        flush(redis, client).await;
        println!("\nsequential calls, one at a time, timed individually:");
        print_row("ping", &pings);
        print_row("enqueue_tracked", &tracked_h);
        print_row("enqueue_untracked", &untracked_h);
    });
}

fn main() {
    let redis = BenchRedis::from_env();
    let rt = runtime();
    let client = rt
        .block_on(Client::connect(redis.config("bench_enqueue")))
        .expect("connect to redis");

    let mut c = Criterion::default().configure_from_args();
    enqueue(&mut c, &rt, &redis, &client);
    c.final_summary();

    // `cargo bench` passes `--bench`; `cargo test --benches` runs each bench once without it.
    if std::env::args().any(|a| a == "--bench") {
        tail_latency(&rt, &redis, &client);
    }
}
