//! `heartbeat.lua`: register or renew a worker process's lease and Sidekiq process record.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::{Signal, lua};
use crate::timestamp::Timestamp;

lua!(HEARTBEAT, "heartbeat.lua");

/// Sidekiq's process records live 60 s; `Sidekiq::ProcessSet` drops expired ones.
const SIDEKIQ_PROCESS_TTL_SECS: u64 = 60;

/// How long the minute counters live: the dashboard charts the last hour.
const MINUTE_STATS_TTL_SECS: u64 = 2 * 3600;

/// Whether the beat registers a new identity or renews the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeatMode {
    /// A fresh identity: the lease is created only if it does not exist.
    Register,
    /// The current identity: the lease is renewed only if it still exists.
    Renew,
}

/// One beat of a worker process.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat<'a> {
    /// The process identity (`host:pid:nonce`).
    pub identity: &'a str,
    /// Register or renew.
    pub mode: BeatMode,
    /// Lifetime of the lease.
    pub lease_ttl: Duration,
    /// Sidekiq's `info` JSON (hostname, pid, queues, concurrency, …).
    pub info: &'a str,
    /// Jobs running now.
    pub busy: usize,
    /// Whether the process stopped fetching.
    pub quiet: bool,
    /// Resident memory in KiB.
    pub rss_kib: u64,
    /// Jobs finished (succeeded or failed) since the last beat that landed, for the minute
    /// counters.
    pub processed: u64,
    /// Of those, the failed ones.
    pub failed: u64,
}

/// What a beat found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// The lease is held (registered or renewed), with the signals operators sent since the
    /// last beat, oldest first.
    Alive(Vec<Signal>),
    /// Renew: the lease had expired. Register: the identity was taken. Either way the process
    /// must take a new identity, since the reaper may already have handed its jobs to others.
    LeaseLost,
}

/// Sends `beat`. [`Error::WrongType`](crate::Error::WrongType) when the workers set holds another type: no lease is
/// taken or renewed, since reapers could not find this process's jobs.
pub async fn heartbeat(client: &Client, beat: &Heartbeat<'_>) -> Result<Beat> {
    let keys = client.keys();
    let now = Timestamp::now();
    let minute = now.as_secs_f64().max(0.0) as u64 / 60;
    let mut inv = HEARTBEAT.invocation();
    inv.key(keys.lease(beat.identity))
        .key(keys.workers())
        .key(keys.processes())
        .key(keys.process(beat.identity))
        .key(keys.signals(beat.identity))
        .key(keys.stat_minute(minute))
        .arg(beat.lease_ttl.as_millis() as u64)
        .arg(match beat.mode {
            BeatMode::Register => "register",
            BeatMode::Renew => "renew",
        })
        .arg(beat.identity)
        .arg(beat.info)
        .arg(beat.busy)
        .arg(format!("{:.6}", now.as_secs_f64()))
        .arg(if beat.quiet { "true" } else { "false" })
        .arg(beat.rss_kib)
        .arg(SIDEKIQ_PROCESS_TTL_SECS)
        .arg(beat.processed)
        .arg(beat.failed)
        .arg(MINUTE_STATS_TTL_SECS);
    let reply: redis::Value = HEARTBEAT.call(client, inv).await?;
    if let redis::Value::Array(items) = &reply
        && let [redis::Value::Int(1), signals @ ..] = items.as_slice()
    {
        let signals = signals
            .iter()
            .map(|s| match s {
                redis::Value::BulkString(name) => Signal::from_wire(&String::from_utf8_lossy(name)),
                other => Signal::Other(format!("{other:?}")),
            })
            .collect();
        return Ok(Beat::Alive(signals));
    }
    match HEARTBEAT.int(reply)? {
        1 => Ok(Beat::Alive(Vec::new())),
        0 => Ok(Beat::LeaseLost),
        other => Err(HEARTBEAT.unexpected(other)),
    }
}
