//! `compare`: this project's side of `benches/compare` (Sidekiq's is `sidekiq/driver.rb`,
//! BullMQ's `bullmq/driver.js`), one role per process, driven by `benches/compare/compare.py`
//! over stdin/stdout: it writes `go` and `quit`; this prints `ready`, `gated` and `done JSON`.
//!
//! Run with
//! ```text
//! REDIS_URL=redis://127.0.0.1:PORT cargo run --release -p benches --bin compare -- \
//!     ROLE N [CONCURRENCY] [PAYLOAD_BYTES]
//! ```
//! Roles, the same in the three drivers:
//! - `single N`: N sequential [`Client::push`], each timed (after a warm-up);
//! - `bulk N`: CONCURRENCY gate jobs pushed before `ready`, then on `go` N no-op jobs with
//!   one [`Client::push_bulk`] (chunks of 1,000, all sent at once), timed;
//! - `worker N`: a [`Worker`] (concurrency CONCURRENCY, queue `drain`); `gated` once every
//!   slot holds a gate job; `go` releases them; `done` when N no-op jobs ran (monotonic ns
//!   of the first and last handler end);
//! - `pickup N`: a worker on queue `pickup` and a client in this process (its own
//!   connection): an idle worker, one push, the time until the handler starts; N times after
//!   a warm-up.
//!
//! The queue runs at its defaults: no key prefix, status tracking on (each job gets a status
//! record), reliable fetch. The one change: the bulk client's call bound is 30 s, not 2 s, as
//! in `loadtest` (its chunks all start together and share the bound). `COMPARE_STATUS=off`
//! pushes jobs without a status record instead, to measure what the record costs.

use benches::{Gates, Noop, NoopUntracked, gate_job, noop_job};
use queue_core::{Client, ClientConfig};
use queue_worker::{Failure, JobContext, Queues, Worker, WorkerConfig};
use serde_json::json;
use std::io::Write as _;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Pickups before the measured ones (connections, code paths and caches warm).
const PICKUP_WARMUP: u64 = 50;
/// Pause between a pickup's end and the next push, so that the worker is idle (waiting for a
/// wake-up) when the job arrives.
const IDLE_PAUSE: Duration = Duration::from_millis(2);
/// The bulk client's bound on each call (see the module docs).
const BULK_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for any one event of a role (a gate taken, a job run).
const EVENT_DEADLINE: Duration = Duration::from_secs(120);

/// Prints one control line.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The control lines compare.py writes.
struct Control(Lines<BufReader<Stdin>>);

impl Control {
    fn new() -> Self {
        Self(BufReader::new(tokio::io::stdin()).lines())
    }

    async fn expect(&mut self, word: &str) -> Result<()> {
        match self.0.next_line().await? {
            Some(line) if line.trim() == word => Ok(()),
            other => Err(format!("expected {word:?}, got {other:?}").into()),
        }
    }
}

/// Quantile `q` of `samples` (ns) in µs, nearest rank.
fn quantile_us(samples: &mut [u64], q: f64) -> f64 {
    samples.sort_unstable();
    let rank = ((q * samples.len() as f64).ceil() as usize).max(1) - 1;
    samples.get(rank).copied().unwrap_or(0) as f64 / 1e3
}

/// What the handlers report: the moment each ran.
struct Events(UnboundedReceiver<Instant>);

impl Events {
    async fn next(&mut self) -> Result<Instant> {
        tokio::time::timeout(EVENT_DEADLINE, self.0.recv())
            .await
            .map_err(|_| "no job ran within the deadline")?
            .ok_or_else(|| "the handlers are gone".into())
    }
}

/// A worker on `queue` whose no-op handler sends its end (or, for `pickup`, its start; a
/// no-op's start and end are the same instant here) to the returned [`Events`].
async fn start_worker(
    url: &str,
    queue: &str,
    concurrency: usize,
    gates: &Gates,
) -> Result<(queue_worker::RunningWorker, Events)> {
    let (tx, rx): (UnboundedSender<Instant>, _) = unbounded_channel();
    let untracked = tx.clone();
    let client = Client::connect(ClientConfig::new(url)).await?;
    let builder = Worker::builder()
        .config(WorkerConfig::default().with_env()?)
        .concurrency(concurrency)
        .queues(Queues::strict(&[queue])?)
        .register(move |_: Noop, _: JobContext| {
            let _ = tx.send(Instant::now());
            async { Ok::<_, Failure>(()) }
        })
        .register(move |_: NoopUntracked, _: JobContext| {
            let _ = untracked.send(Instant::now());
            async { Ok::<_, Failure>(()) }
        });
    let worker = gates.register(builder).build(client)?.start();
    Ok((worker, Events(rx)))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [role, n, rest @ ..] = args.as_slice() else {
        return Err("usage: compare ROLE N [CONCURRENCY] [PAYLOAD_BYTES]".into());
    };
    let n: u64 = n.parse()?;
    let concurrency: usize = rest.first().map_or(Ok(10), |c| c.parse())?;
    let padding = "x".repeat(rest.get(1).map_or(Ok(64), |p| p.parse())?);
    let url = std::env::var("REDIS_URL").map_err(|_| "REDIS_URL is not set")?;
    let tracked = std::env::var("COMPARE_STATUS").as_deref() != Ok("off");
    let mut control = Control::new();
    let base = Instant::now();
    let ns = |t: Instant| t.saturating_duration_since(base).as_nanos() as u64;

    match role.as_str() {
        "single" => {
            let client = Client::connect(ClientConfig::new(&url)).await?;
            for i in 0..(n / 20).max(1) {
                client
                    .push(noop_job(i, &padding, tracked, "single"))
                    .await?;
            }
            say("ready");
            control.expect("go").await?;
            let mut samples = Vec::with_capacity(n as usize);
            for i in 0..n {
                let start = Instant::now();
                client
                    .push(noop_job(i, &padding, tracked, "single"))
                    .await?;
                samples.push(start.elapsed().as_nanos() as u64);
            }
            let p50 = quantile_us(&mut samples, 0.5);
            let p99 = quantile_us(&mut samples, 0.99);
            say(&format!("done {}", json!({"p50_us": p50, "p99_us": p99})));
            control.expect("quit").await?;
        }
        "bulk" => {
            let client = Client::connect(ClientConfig::new(&url).timeout(BULK_TIMEOUT)).await?;
            let gates = (0..concurrency).map(|_| gate_job(1, "drain")).collect();
            client.push_bulk(gates).await?;
            say("ready");
            control.expect("go").await?;
            let jobs = (0..n)
                .map(|i| noop_job(i, &padding, tracked, "drain"))
                .collect();
            let start = Instant::now();
            client.push_bulk(jobs).await?;
            let seconds = start.elapsed().as_secs_f64();
            say(&format!("done {}", json!({ "seconds": seconds })));
            control.expect("quit").await?;
        }
        "worker" => {
            let gates = Gates::new();
            let (worker, mut ends) = start_worker(&url, "drain", concurrency, &gates).await?;
            say("ready");
            if !gates.wait_started(concurrency as u64, EVENT_DEADLINE).await {
                return Err("the gate jobs were not all taken".into());
            }
            say("gated");
            control.expect("go").await?;
            gates.release(1);
            let first = ends.next().await?;
            let mut last = first;
            for _ in 1..n {
                last = ends.next().await?;
            }
            let done = json!({"first_end_ns": ns(first), "last_end_ns": ns(last)});
            say(&format!("done {done}"));
            control.expect("quit").await?;
            worker.shutdown().await?;
        }
        "pickup" => {
            let (worker, mut starts) =
                start_worker(&url, "pickup", concurrency, &Gates::new()).await?;
            let client = Client::connect(ClientConfig::new(&url)).await?;
            say("ready");
            control.expect("go").await?;
            let mut samples = Vec::with_capacity(n as usize);
            for i in 0..PICKUP_WARMUP + n {
                tokio::time::sleep(IDLE_PAUSE).await;
                let start = Instant::now();
                client
                    .push(noop_job(i, &padding, tracked, "pickup"))
                    .await?;
                let started = starts.next().await?;
                if i >= PICKUP_WARMUP {
                    samples.push(started.saturating_duration_since(start).as_nanos() as u64);
                }
            }
            let p50 = quantile_us(&mut samples, 0.5);
            let p99 = quantile_us(&mut samples, 0.99);
            say(&format!("done {}", json!({"p50_us": p50, "p99_us": p99})));
            control.expect("quit").await?;
            worker.shutdown().await?;
        }
        other => return Err(format!("unknown role {other:?}").into()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quantile_us;

    #[test]
    fn quantiles_are_nearest_rank_in_microseconds() {
        let mut s: Vec<u64> = (1..=100).map(|i| i * 1_000).collect();
        assert_eq!(quantile_us(&mut s, 0.5), 50.0);
        assert_eq!(quantile_us(&mut s, 0.99), 99.0);
        assert_eq!(quantile_us(&mut [], 0.5), 0.0);
    }
}
