//! `loadtest`: throughput, latency and footprint of the queue on one machine, in the spirit
//! of Sidekiq's own load script.
//!
//! Run with
//! ```text
//! cargo run --release -p benches --bin loadtest -- [--jobs 100000] [--concurrency 10] \
//!     [--processes 1] [--payload-bytes 64] [--no-status] [--json] [--profile] [--slowlog] \
//!     [--no-c100]
//! ```
//! It uses `REDIS_URL` when set (its keys go under a per-run prefix, deleted at the end;
//! the server is never flushed or reconfigured), else it starts a private `redis-server`
//! (which must be on `PATH`, or named by `REDIS_SERVER`).
//!
//! Redis Cluster: `REDIS_CLUSTER_URLS` (node URLs, comma-separated) or `--cluster` (a private
//! 3-master/3-replica cluster, needs `redis-cli`) runs everything in cluster mode, worker
//! processes included. The prefix is hash-tagged (`--tag TAG` gives `{TAG}:`), so the run's
//! keys share one slot and one master; `INFO` (Redis CPU, memory, commandstats) is read from
//! that master, whose port the report gives (`redis_port`). Runs side by side with tags on
//! different masters, and the same `--go-at`, measure what spreading queues over masters
//! gives; the report's `drain_started_unix_ms`/`drain_ended_unix_ms` line their drains up.
//!
//! Phases, in this order:
//! 1. `PING` round trip: 2,000 sequential pings, the baseline of every latency ratio; then
//!    Redis's own ceiling for a queue: pipelined `LPUSH` + `RPOP` pairs through the same
//!    client (4 pipelines of 50 pairs out at once), the baseline of the drain
//!    (`drain_fraction_of_ceiling`).
//! 2. Enqueue latency: 10,000 sequential single enqueues (status record on unless
//!    `--no-status`), each timed.
//! 3. Bulk enqueue and drain: `--processes` worker processes (this binary re-executed with
//!    the hidden `--worker` mode) start on an empty queue; gate jobs then hold all their
//!    slots, so the workers are connected, registered and warm but take nothing. `--jobs`
//!    no-op jobs are pushed with `push_bulk` (timed: bulk throughput, Redis bytes and CPU per
//!    job), then the gates are released and the drain is timed until `stat:processed`
//!    counts every job (reliable fetch and acks on). Connections (`CLIENT LIST`, matched to
//!    each process's sockets) and peak RSS (`VmHWM`) are read before the workers quit.
//! 4. The same drain with one worker process at concurrency 100 (skip with `--no-c100`).
//! 5. Pickup latency: 1,000 sequential enqueues to an idle worker in this process; the
//!    handler records when it started.
//!
//! Every phase records the machine's CPU steal and busy share from `/proc/stat` (`noise`);
//! a phase with more than 5% steal is listed in `unreliable_phases`, and its figures should
//! not be quoted.
//!
//! `--profile` adds `INFO commandstats` deltas of the bulk enqueue and the drain (calls and
//! µs per job by command; a script's time includes the commands it ran). `--slowlog` adds,
//! on a private server, a `SLOWLOG` of every command of the drain broken down by script
//! (calls, µs per call, jobs per call). Redis 7 also logs the commands run inside scripts,
//! and writing those entries is timed as part of the script, so `--slowlog` inflates script
//! times and Redis CPU: use it for call counts and batch sizes, and take times and headline
//! figures from a run without it.
//!
//! `--redis-benchmark` first runs `redis-benchmark -t lpush -P 16 -n 1000000 -q` against the
//! run's private server (`redis_benchmark_lpush_per_s`): issue 16's throughput targets assume
//! about 1.8M/s from it and are scaled by this figure (`target_scale`, `targets_met`).
//!
//! `--handoffs` attaches `perf stat` (tracepoints, so it needs root or a permissive
//! `perf_event_paranoid`) to each worker process for its drain and to this process for the
//! enqueues and the pickups, and reports futex calls, context switches, epoll waits and
//! socket calls per job (`handoffs`). Syscall tracepoints add a little to every traced
//! call: take CPU and throughput figures from a run without it.

mod baseline;
mod ceiling;
mod coordinator;
mod drain;
mod enqueue;
mod error;
mod handoffs;
mod histogram;
mod noise;
mod options;
mod pickup;
mod process_stats;
mod redis_benchmark;
mod report;
mod slowlog;
mod snapshot;
mod target;
mod worker_mode;
mod worker_process;

use coordinator::coordinator_main;
use error::LoadError;
use options::{Options, USAGE};
use std::process::ExitCode;
use worker_mode::worker_main;

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(LoadError::Usage(msg)) if msg == "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOADTEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    // Two runtime threads by default, like `#[tokio::main]` on this 2-core machine. Named,
    // so that a profile (`perf report --comm`) tells the worker processes from the driving
    // one (the future given to `block_on` runs on the main thread, named after the binary).
    let thread_name = if opts.worker_prefix.is_some() {
        "lt-worker"
    } else {
        "lt-client"
    };
    let threads = if opts.worker_prefix.is_some() {
        opts.worker_threads
    } else {
        opts.client_threads
    };
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    if let Some(n) = opts.event_interval {
        builder.event_interval(n);
    }
    let rt = builder
        .thread_name(thread_name)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = match &opts.worker_prefix {
        Some(prefix) => rt.block_on(worker_main(&opts, prefix)),
        None => rt.block_on(coordinator_main(&opts)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}
