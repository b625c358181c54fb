//! Bulk enqueue and drain: gated worker processes, `push_bulk`, then the timed drain.

use crate::error::{LoadError, Result};
use crate::options::Options;
use crate::process_stats::connections_of;
use crate::slowlog::{SlowRow, slowlog_collect, slowlog_start};
use crate::snapshot::snapshot;
use crate::target::Target;
use crate::worker_process::WorkerProcess;
use benches::{CommandStats, gate_job, noop_job};
use queue_core::{Client, NewJob};
use std::time::{Duration, Instant};

/// Queue drained by the worker processes.
pub(crate) const DRAIN_QUEUE: &str = "loadtest";
/// Longest drain waited for before the run is declared stuck.
pub(crate) const DRAIN_DEADLINE: Duration = Duration::from_secs(600);
/// Below this many missing jobs, the wait for `stat:processed` stops sleeping and polls.
pub(crate) const BUSY_POLL_BELOW: u64 = 50;

pub(crate) async fn processed(client: &Client) -> Result<u64> {
    let mut conn = client.raw_connection();
    let n: Option<u64> = redis::cmd("GET")
        .arg(client.keys().stat_processed())
        .query_async(&mut conn)
        .await?;
    Ok(n.unwrap_or(0))
}

/// Waits until `stat:processed` reaches `target`: 1 ms sleeps while many jobs are missing
/// (≈ 1,000 `GET`s a second, nothing next to the drain), back-to-back reads at the end.
pub(crate) async fn wait_processed(client: &Client, target: u64) -> Result<()> {
    let deadline = Instant::now() + DRAIN_DEADLINE;
    loop {
        let n = processed(client).await?;
        if n >= target {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LoadError::Timeout(
                "the drain (stat:processed stopped short)",
            ));
        }
        if target - n > BUSY_POLL_BELOW {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Now, in ms since the Unix epoch (0 before it).
fn unix_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// What one bulk enqueue + drain measured.
pub(crate) struct Drain {
    pub(crate) bulk_secs: f64,
    pub(crate) bulk_bytes_per_job: f64,
    pub(crate) bulk_cpu_us_per_job: f64,
    pub(crate) bulk_stats: CommandStats,
    pub(crate) drain_secs: f64,
    pub(crate) drain_cpu_us_per_job: f64,
    pub(crate) drain_stats: CommandStats,
    /// CPU of all worker processes during the drain, per job.
    pub(crate) worker_cpu_us_per_job: f64,
    pub(crate) slowlog: Option<Vec<SlowRow>>,
    /// Wall-clock start and end of the drain (ms since the Unix epoch), so that the drains
    /// of runs made side by side can be lined up.
    pub(crate) started_unix_ms: f64,
    pub(crate) ended_unix_ms: f64,
    /// Per worker process: its connections' names (and last command).
    pub(crate) connections: Vec<Vec<String>>,
    pub(crate) peak_rss_kib: Vec<u64>,
}

pub(crate) async fn drain_phase(
    target: &Target,
    client: &Client,
    opts: &Options,
    padding: &str,
    processes: usize,
    concurrency: usize,
    slowlog: bool,
) -> Result<Drain> {
    let redis_env = target.worker_env();
    let prefix = client.keys().prefix().to_owned();
    let mut workers = Vec::with_capacity(processes);
    for _ in 0..processes {
        workers.push(
            WorkerProcess::spawn(&redis_env, &prefix, concurrency, opts.worker_threads).await?,
        );
    }
    for w in &mut workers {
        w.expect("ready").await?;
    }
    // Hold every slot, so that the backlog waits for one start signal.
    let gates = (0..processes * concurrency)
        .map(|_| gate_job(1, DRAIN_QUEUE))
        .collect();
    client.push_bulk(gates).await?;
    for w in &mut workers {
        w.expect("gated").await?;
    }

    let jobs: Vec<NewJob> = (0..opts.jobs)
        .map(|i| noop_job(i, padding, opts.status, DRAIN_QUEUE))
        .collect();
    let before = snapshot(client).await?;
    let start = Instant::now();
    client.push_bulk(jobs).await?;
    let bulk_secs = start.elapsed().as_secs_f64();
    let after_bulk = snapshot(client).await?;

    let slowlog_on = slowlog && target.is_private_server();
    let saved = if slowlog_on {
        Some(slowlog_start(client).await?)
    } else {
        None
    };
    let target = processed(client).await? + (processes * concurrency) as u64 + opts.jobs;
    let before_drain = snapshot(client).await?;
    if let Some(at) = opts.go_at_unix_ms {
        let wait = at.saturating_sub(unix_ms() as u64);
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    let worker_cpu_before: f64 = workers.iter().map(WorkerProcess::cpu_secs).sum();
    let started_unix_ms = unix_ms();
    let start = Instant::now();
    for w in &mut workers {
        w.send("go").await?;
    }
    wait_processed(client, target).await?;
    let drain_secs = start.elapsed().as_secs_f64();
    let ended_unix_ms = unix_ms();
    let worker_cpu_after: f64 = workers.iter().map(WorkerProcess::cpu_secs).sum();
    let after_drain = snapshot(client).await?;
    let slowlog = match saved {
        Some(saved) => Some(slowlog_collect(client, saved).await?),
        None => None,
    };

    let mut connections = Vec::new();
    let mut peak_rss_kib = Vec::new();
    for w in &workers {
        connections.push(connections_of(client, w.pid).await?);
        peak_rss_kib.push(w.peak_rss_kib());
    }
    for w in workers {
        w.quit().await?;
    }
    let n = opts.jobs as f64;
    Ok(Drain {
        bulk_secs,
        bulk_bytes_per_job: (after_bulk.used_memory - before.used_memory) / n,
        bulk_cpu_us_per_job: (after_bulk.cpu_secs - before.cpu_secs) * 1e6 / n,
        bulk_stats: after_bulk.stats.since(&before.stats),
        drain_secs,
        drain_cpu_us_per_job: (after_drain.cpu_secs - before_drain.cpu_secs) * 1e6 / n,
        drain_stats: after_drain.stats.since(&before_drain.stats),
        worker_cpu_us_per_job: (worker_cpu_after - worker_cpu_before) * 1e6 / n,
        slowlog,
        started_unix_ms,
        ended_unix_ms,
        connections,
        peak_rss_kib,
    })
}
