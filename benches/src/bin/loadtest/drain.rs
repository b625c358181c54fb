//! Bulk enqueue and drain: gated worker processes, `push_bulk`, then the timed drain.

use crate::error::{LoadError, Result};
use crate::handoffs::{Counts, PerfCounter};
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
    if client.config().spread_queues {
        // Each queue's slot counts its own jobs.
        return Ok(queue_core::Inspector::new(client).totals().await?.processed);
    }
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

/// The queues the drain uses: [`DRAIN_QUEUE`], or with `--queues N` (queues spread over a
/// cluster's slots) N names whose slots, under `prefix`'s hash tag, fall in N equal ranges
/// of the slot space, one each: the masters of a cluster that `redis-cli --cluster create`
/// formed own such ranges, so each queue lands on its own master.
pub(crate) fn drain_queues(prefix: &str, n: usize) -> Vec<String> {
    if n <= 1 {
        return vec![DRAIN_QUEUE.to_owned()];
    }
    let tag = queue_core::cluster::hash_tag(prefix).unwrap_or("");
    let mut picked: Vec<Option<String>> = vec![None; n];
    for k in 0.. {
        let name = format!("{DRAIN_QUEUE}{k}");
        let slot = usize::from(crc16(format!("{tag}/{name}").as_bytes()) % 16384);
        let range = slot * n / 16384;
        if picked[range].is_none() {
            picked[range] = Some(name);
        }
        if picked.iter().all(Option::is_some) {
            break;
        }
    }
    picked.into_iter().flatten().collect()
}

/// CRC16/XMODEM, Redis Cluster's key hash (the slot is this modulo 16384).
fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
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
    /// Memory left per job once every job finished (its status record, tracked or not).
    pub(crate) finished_bytes_per_job: f64,
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
    /// `--handoffs`: the worker processes' counts during the drain, summed.
    pub(crate) handoffs: Option<Counts>,
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
    let queues = drain_queues(&prefix, if target.spread() { opts.queues } else { 1 });
    let spec = queues.join(",");
    let mut workers = Vec::with_capacity(processes);
    for _ in 0..processes {
        workers.push(WorkerProcess::spawn(&redis_env, &prefix, &spec, concurrency, opts).await?);
    }
    for w in &mut workers {
        w.expect("ready").await?;
    }
    // Attached once the runtime's threads exist (before `ready`), enabled for the drain only.
    let mut perfs = Vec::new();
    if opts.handoffs {
        for w in &workers {
            perfs.push(PerfCounter::attach(w.pid).await?);
        }
    }
    // Hold every slot, so that the backlog waits for one start signal.
    // In the first queue: a process's concurrency covers all its queues.
    let gates = (0..processes * concurrency)
        .map(|_| gate_job(1, &queues[0]))
        .collect();
    client.push_bulk(gates).await?;
    for w in &mut workers {
        w.expect("gated").await?;
    }

    let jobs: Vec<NewJob> = (0..opts.jobs)
        .map(|i| noop_job(i, padding, opts.status, &queues[i as usize % queues.len()]))
        .collect();
    let before = snapshot(client, &queues).await?;
    let start = Instant::now();
    client.push_bulk(jobs).await?;
    let bulk_secs = start.elapsed().as_secs_f64();
    let after_bulk = snapshot(client, &queues).await?;

    let slowlog_on = slowlog && target.is_private_server();
    let saved = if slowlog_on {
        Some(slowlog_start(client).await?)
    } else {
        None
    };
    let target = processed(client).await? + (processes * concurrency) as u64 + opts.jobs;
    let before_drain = snapshot(client, &queues).await?;
    if let Some(at) = opts.go_at_unix_ms {
        let wait = at.saturating_sub(unix_ms() as u64);
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    for p in &mut perfs {
        p.enable().await?;
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
    for p in &mut perfs {
        p.disable().await?;
    }
    let after_drain = snapshot(client, &queues).await?;
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
    let mut handoffs = None;
    for p in perfs {
        handoffs
            .get_or_insert_with(Counts::default)
            .add(&p.finish().await?);
    }
    let n = opts.jobs as f64;
    Ok(Drain {
        bulk_secs,
        bulk_bytes_per_job: (after_bulk.used_memory - before.used_memory) / n,
        finished_bytes_per_job: (after_drain.used_memory - before.used_memory) / n,
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
        handoffs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_is_redis_clusters_key_hash() {
        // Redis's documented check value for CRC16/XMODEM.
        assert_eq!(crc16(b"123456789"), 0x31c3);
    }

    #[test]
    fn spread_queues_fall_in_equal_ranges_of_the_slot_space() {
        assert_eq!(drain_queues("{lt-1}:", 1), [DRAIN_QUEUE]);
        let queues = drain_queues("{lt-1}:", 3);
        assert_eq!(queues.len(), 3);
        let mut ranges: Vec<usize> = queues
            .iter()
            .map(|q| usize::from(crc16(format!("lt-1/{q}").as_bytes()) % 16384) * 3 / 16384)
            .collect();
        ranges.sort_unstable();
        assert_eq!(ranges, [0, 1, 2]);
    }
}
