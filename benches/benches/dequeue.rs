//! Dequeue: the fetch → ack path, through a real worker and through the raw scripts.
//!
//! Run with `cargo bench -p benches --bench dequeue` (needs `redis-server` on `PATH`, as
//! `script/test` installs it; or set `REDIS_URL`, and then only this bench's own prefix is
//! deleted). One criterion group, `dequeue`, throughput counted in jobs:
//! - `ping_baseline`: one `PING` round trip on a shared connection.
//! - `script_cycle_untracked/{1,10}` and `script_cycle_tracked/{1,10}`: the worker's steady
//!   state by hand: each iteration is one `ack_fetch.lua` call that acks the 1 or 10 jobs of
//!   the previous iteration and takes as many new ones from a queue filled beforehand
//!   (untimed), with the arguments the worker sends. Tracked jobs are marked running in the
//!   same call. Each job's JSON is parsed (`JobPayload::from_json`) as the worker does, to
//!   build the status key of its ack.
//! - `worker_one_job/{tracked,untracked}`: push one job to an idle in-process worker
//!   (concurrency 10) and wait until its ack has counted it in `stat:processed` (busy-polled
//!   with `GET`, so the figure includes up to one extra round trip).
//! - `worker_drain/{tracked,untracked}`: every slot of a warmed-up worker (concurrency 10) is
//!   held by a gate job while a backlog is pushed (untimed); the time runs from releasing the
//!   gates until `stat:processed` counts the whole backlog: time per job of the real
//!   fetch, run, ack loop with reliable fetch and prefetch on.
//!
//! After the criterion report, a table gives the Redis CPU (`INFO cpu`, user + system) per
//! job spent inside the timed regions of the script and drain benchmarks.

use benches::{BenchRedis, Gates, gate_job, info, noop_job, ping, redis_cpu_secs, register_noops};
use criterion::{BenchmarkId, Criterion, Throughput};
use queue_core::scripts::{
    Ack, AckFetch, AckTracking, Beat, BeatMode, Heartbeat, StartJob, Started, Taken, ack_fetch,
    heartbeat, start,
};
use queue_core::{Client, JobPayload, Timestamp};
use queue_worker::{Queues, RunningWorker, Worker};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Per-benchmark measurement time: short, so that the whole run takes about a minute.
const MEASUREMENT: Duration = Duration::from_secs(3);
/// Concurrency of the in-process worker (the default).
const CONCURRENCY: usize = 10;
/// Queue the in-process worker takes jobs from.
const WORKER_QUEUE: &str = "drain";
/// Queue the raw-script benchmarks fetch from (no worker listens to it).
const RAW_QUEUE: &str = "raw";
/// Identity of the pretend worker of the raw-script benchmarks.
const RAW_IDENTITY: &str = "bench:0:raw";
/// Lease of the pretend worker, renewed before each measurement.
const LEASE_MS: u64 = 60_000;
/// Jobs per `push_bulk` call when filling a queue (bounds the memory of one call).
const FILL_CHUNK: u64 = 10_000;
/// Below this many missing jobs, the wait for `stat:processed` stops sleeping and polls.
const BUSY_POLL_BELOW: u64 = 50;
/// Payload padding of every job (a small job, like the enqueue bench's).
const PADDING: &str = "monthly-report";

/// Redis CPU seconds and jobs of the timed regions, by benchmark.
#[derive(Default)]
struct CpuLedger(Mutex<BTreeMap<String, (f64, u64)>>);

impl CpuLedger {
    fn add(&self, name: &str, secs: f64, jobs: u64) {
        let mut map = self.0.lock().expect("ledger lock");
        let entry = map.entry(name.to_owned()).or_default();
        entry.0 += secs;
        entry.1 += jobs;
    }

    fn print(&self) {
        println!("\nRedis CPU (user + system) inside the timed regions:");
        for (name, (secs, jobs)) in self.0.lock().expect("ledger lock").iter() {
            println!(
                "{name:<32} {:>8.2} µs/job over {jobs} jobs",
                secs * 1e6 / (*jobs).max(1) as f64
            );
        }
    }
}

async fn redis_cpu(client: &Client) -> f64 {
    let mut conn = client.raw_connection();
    redis_cpu_secs(&info(&mut conn, "cpu").await.expect("INFO cpu"))
}

fn runtime() -> tokio::runtime::Runtime {
    // Like `#[tokio::main]` on this 2-core machine: the worker runs as in a worker binary.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn processed(client: &Client) -> u64 {
    let mut conn = client.raw_connection();
    redis::cmd("GET")
        .arg(client.keys().stat_processed())
        .query_async::<Option<u64>>(&mut conn)
        .await
        .expect("GET stat:processed")
        .unwrap_or(0)
}

/// Waits until `stat:processed` reaches `target`: sleeps 1 ms between reads while many jobs
/// are missing (light on Redis), then reads back to back (precise end time).
async fn wait_processed(client: &Client, target: u64) {
    loop {
        let n = processed(client).await;
        if n >= target {
            return;
        }
        if target - n > BUSY_POLL_BELOW {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Pushes `count` no-op jobs to `queue` (untimed set-up).
async fn fill(client: &Client, count: u64, tracked: bool, queue: &str) {
    let mut done = 0;
    while done < count {
        let n = FILL_CHUNK.min(count - done);
        let jobs = (done..done + n)
            .map(|i| noop_job(i, PADDING, tracked, queue))
            .collect();
        client.push_bulk(jobs).await.expect("push_bulk");
        done += n;
    }
}

/// Gives the pretend worker that invokes the scripts directly a lease, through the
/// heartbeat script as a worker does.
async fn grant_lease(client: &Client) {
    for mode in [BeatMode::Renew, BeatMode::Register] {
        let beat = Heartbeat {
            identity: RAW_IDENTITY,
            mode,
            lease_ttl: Duration::from_millis(LEASE_MS),
            info: "{}",
            busy: 0,
            quiet: false,
            rss_kib: 0,
            processed: 0,
            failed: 0,
        };
        if matches!(
            heartbeat(client, &beat).await.expect("heartbeat.lua"),
            Beat::Alive(_)
        ) {
            return;
        }
    }
    panic!("no lease for the pretend worker");
}

/// One cycle of the worker's hot path, by hand: one `ack_fetch.lua` call that acks the jobs
/// `held` from the previous cycle and takes `n` new ones, then one `start.lua` call that
/// marks them running, with the arguments the worker sends. Returns the jobs now held.
async fn cycle(
    client: &Client,
    held: &[(String, JobPayload)],
    n: usize,
    tracked: bool,
) -> Vec<(String, JobPayload)> {
    let acks: Vec<Ack<'_>> = held
        .iter()
        .map(|(raw, job)| Ack {
            raw: raw.as_bytes(),
            jid: job.jid.as_str(),
            tracking: if tracked {
                AckTracking::Tracked
            } else {
                AckTracking::Untracked
            },
            result: Some(""),
            retention: client.config().status_retention.finished,
        })
        .collect();
    let call = AckFetch {
        identity: RAW_IDENTITY,
        acks: &acks,
        want: n,
        queues: &[RAW_QUEUE],
        lease_ttl: Duration::from_millis(LEASE_MS),
        now: Timestamp::now(),
    };
    let reply = ack_fetch(client, &call).await.expect("ack_fetch.lua");
    assert!(
        reply.acked.iter().all(|a| *a),
        "ack_fetch.lua rejected an ack"
    );
    let Taken::Jobs(jobs) = reply.taken else {
        panic!("ack_fetch.lua: lease lost");
    };
    let mut taken = Vec::with_capacity(n);
    for raw in jobs {
        // Parsed as the worker does, to build the status keys of its start and ack.
        let job = JobPayload::from_json(&raw).expect("job JSON");
        taken.push((String::from_utf8_lossy(&raw).into_owned(), job));
    }
    assert_eq!(taken.len(), n, "the prefilled queue ran dry");
    let starts: Vec<StartJob<'_>> = taken
        .iter()
        .map(|(_, job)| StartJob {
            jid: job.jid.as_str(),
            attempt: job.attempt(),
            queue: &job.queue,
            class: &job.class,
            tracked,
        })
        .collect();
    let marks = start(client, &starts, Timestamp::now())
        .await
        .expect("start.lua");
    let want = if tracked {
        Started::Running
    } else {
        Started::NoRecord
    };
    assert!(marks.iter().all(|m| *m == want), "{marks:?}");
    taken
}

fn script_benches(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    redis: &BenchRedis,
    client: &Client,
    ledger: &CpuLedger,
) {
    let mut group = c.benchmark_group("dequeue");
    group.measurement_time(MEASUREMENT);
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    group.bench_function("ping_baseline", |b| {
        b.to_async(rt).iter(|| ping(client));
    });

    group.sample_size(10);
    for (name, tracked) in [
        ("script_cycle_untracked", false),
        ("script_cycle_tracked", true),
    ] {
        for n in [1usize, 10] {
            group.throughput(Throughput::Elements(n as u64));
            group.bench_with_input(BenchmarkId::new(name, n), &n, |b, &n| {
                b.to_async(rt).iter_custom(|iters| {
                    async move {
                        fill(client, (iters + 1) * n as u64, tracked, RAW_QUEUE).await;
                        grant_lease(client).await;
                        // The first cycle only takes: untimed.
                        let mut held = cycle(client, &[], n, tracked).await;
                        let cpu = redis_cpu(client).await;
                        let start = Instant::now();
                        for _ in 0..iters {
                            held = cycle(client, &held, n, tracked).await;
                        }
                        let elapsed = start.elapsed();
                        let cpu = redis_cpu(client).await - cpu;
                        cycle(client, &held, 0, tracked).await;
                        ledger.add(&format!("{name}/{n}"), cpu, iters * n as u64);
                        elapsed
                    }
                });
            });
            clear(rt, redis, client);
        }
    }
    group.finish();
}

fn worker_benches(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    client: &Client,
    gates: &Gates,
    ledger: &CpuLedger,
) {
    let mut group = c.benchmark_group("dequeue");
    group.measurement_time(MEASUREMENT);
    group.warm_up_time(Duration::from_secs(1));
    group.throughput(Throughput::Elements(1));
    let mut job_no = 0u64;
    for (name, tracked) in [("tracked", true), ("untracked", false)] {
        group.bench_function(BenchmarkId::new("worker_one_job", name), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let first = job_no;
                job_no += iters;
                async move {
                    let mut target = processed(client).await;
                    let mut total = Duration::ZERO;
                    for i in 0..iters {
                        let start = Instant::now();
                        client
                            .push(noop_job(first + i, PADDING, tracked, WORKER_QUEUE))
                            .await
                            .expect("push");
                        target += 1;
                        wait_processed(client, target).await;
                        total += start.elapsed();
                    }
                    total
                }
            });
        });
    }

    let round = AtomicU64::new(0);
    group.sample_size(10);
    for (name, tracked) in [("tracked", true), ("untracked", false)] {
        group.bench_function(BenchmarkId::new("worker_drain", name), |b| {
            b.to_async(rt).iter_custom(|iters| {
                let round = &round;
                async move {
                    let r = round.fetch_add(1, Ordering::SeqCst) + 1;
                    let gate_jobs = (0..CONCURRENCY)
                        .map(|_| gate_job(r, WORKER_QUEUE))
                        .collect();
                    client.push_bulk(gate_jobs).await.expect("push gates");
                    assert!(
                        gates
                            .wait_started(r * CONCURRENCY as u64, Duration::from_secs(30))
                            .await,
                        "the worker did not take its gate jobs"
                    );
                    fill(client, iters, tracked, WORKER_QUEUE).await;
                    let target = processed(client).await + CONCURRENCY as u64 + iters;
                    let cpu = redis_cpu(client).await;
                    let start = Instant::now();
                    gates.release(r);
                    wait_processed(client, target).await;
                    let elapsed = start.elapsed();
                    let cpu = redis_cpu(client).await - cpu;
                    ledger.add(&format!("worker_drain/{name}"), cpu, iters);
                    elapsed
                }
            });
        });
    }
    group.finish();
}

fn clear(rt: &tokio::runtime::Runtime, redis: &BenchRedis, client: &Client) {
    rt.block_on(async {
        let mut conn = client.raw_connection();
        redis
            .clear(&mut conn, client.keys().prefix())
            .await
            .expect("clear");
    });
}

fn start_worker(rt: &tokio::runtime::Runtime, redis: &BenchRedis, gates: &Gates) -> RunningWorker {
    rt.block_on(async {
        // Its own client, hence its own connection, as in a worker process.
        let client = Client::connect(redis.config("bench_dequeue"))
            .await
            .expect("worker client");
        let builder = Worker::builder()
            .concurrency(CONCURRENCY)
            .queues(Queues::strict(&[WORKER_QUEUE]).expect("queue name"));
        gates
            .register(register_noops(builder))
            .build(client)
            .expect("worker")
            .start()
    })
}

fn main() {
    let redis = BenchRedis::from_env();
    let rt = runtime();
    let client = rt
        .block_on(Client::connect(redis.config("bench_dequeue")))
        .expect("connect to redis");
    clear(&rt, &redis, &client);

    let mut c = Criterion::default().configure_from_args();
    let ledger = CpuLedger::default();
    script_benches(&mut c, &rt, &redis, &client, &ledger);

    let gates = Gates::new();
    let worker = start_worker(&rt, &redis, &gates);
    worker_benches(&mut c, &rt, &client, &gates, &ledger);
    rt.block_on(worker.shutdown()).expect("worker shutdown");
    clear(&rt, &redis, &client);
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` runs each bench once without it.
    if std::env::args().any(|a| a == "--bench") {
        ledger.print();
    }
}
