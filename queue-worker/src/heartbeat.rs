//! The heartbeat: renews this process's lease and its Sidekiq process record.

use queue_core::scripts::{Beat, BeatMode, Heartbeat, heartbeat};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_util::sync::CancellationToken;

use crate::membership::Identity;
use crate::shared::{Shared, retry_transient};

/// Registers `ident` (a fresh identity). Returns false if it already was registered.
pub(crate) async fn register(shared: &Shared, ident: &Identity) -> queue_core::Result<bool> {
    beat(shared, ident, BeatMode::Register).await
}

/// Renews the lease; returns false when it had expired.
async fn renew(shared: &Shared, ident: &Identity) -> queue_core::Result<bool> {
    beat(shared, ident, BeatMode::Renew).await
}

async fn beat(shared: &Shared, ident: &Identity, mode: BeatMode) -> queue_core::Result<bool> {
    let c = &shared.config;
    let info = serde_json::json!({
        "hostname": crate::membership::host_name(),
        "started_at": shared.membership.started_at,
        "pid": std::process::id(),
        "tag": c.tag.clone().unwrap_or_default(),
        "concurrency": c.concurrency,
        "queues": c.queues.names(),
        "labels": ["rust"],
        "identity": ident.name,
    })
    .to_string();
    let beat = Heartbeat {
        identity: &ident.name,
        mode,
        lease_ttl: c.lease_ttl,
        info: &info,
        busy: shared.busy.load(Ordering::Relaxed),
        quiet: shared.quiet.is_cancelled(),
        rss_kib: rss_kib(),
        processed: shared.finished_since_beat.swap(0, Ordering::Relaxed),
        failed: shared.failed_since_beat.swap(0, Ordering::Relaxed),
    };
    let sent = std::time::Instant::now();
    let reply = heartbeat(&shared.client, &beat).await;
    // Counts the beat did not deliver wait for the next one. (A reply lost after Redis ran
    // the script counts them twice: they only feed a chart.)
    if !matches!(reply, Ok(Beat::Alive(_))) {
        give_back(&shared.finished_since_beat, beat.processed);
        give_back(&shared.failed_since_beat, beat.failed);
    }
    match reply? {
        Beat::Alive(signals) => {
            ident.renewed_at(sent);
            crate::signals::obey(shared, signals);
            Ok(true)
        }
        Beat::LeaseLost => Ok(false),
    }
}

fn give_back(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The lease of `lost` is gone (a renewal found it missing): its jobs are dropped at once,
/// since another process may take them now, and a fresh identity is registered.
pub(crate) async fn lease_lost(shared: &Shared, lost: &Identity) -> bool {
    lost.lost.cancel();
    reregister(shared, lost).await
}

/// Takes a fresh identity in place of `old` (whose lease is gone or may be: `fence.rs`), and
/// registers it; false when that failed (the caller tries again later).
///
/// `old` is fenced first: its jobs stop, and nothing more is taken under it. The new
/// identity is registered before it is installed, so no task ever fetches into, or renews,
/// an identity without a lease; tasks that noticed the same loss wait on the lock and then
/// find the identity already replaced.
pub(crate) async fn reregister(shared: &Shared, old: &Identity) -> bool {
    old.fenced.cancel();
    let _renewing = shared.membership.renewing.lock().await;
    if *shared.membership.current() != *old {
        return true; // another task already replaced and registered it
    }
    let fresh = shared.membership.fresh();
    match retry_transient("registering", || register(shared, &fresh)).await {
        // Already registered: an earlier try that timed out here ran in Redis later. When
        // its lease began is unknown, so the fence could not guard it: leave it to expire,
        // and take another identity next time.
        Ok(false) => {
            tracing::warn!(identity = %fresh.name,
                "a new identity was registered by a try that timed out; taking another");
            false
        }
        Ok(true) => {
            tracing::warn!(old = %old.name, new = %fresh.name,
                "lease lost or fenced (Redis restarted, stalled or unreachable); continuing under a new identity");
            shared.membership.install(fresh);
            // The exchange may be waiting with nothing to do under the fenced identity.
            shared.room.freed();
            true
        }
        Err(e) => {
            tracing::error!(error = %e,
                "could not register a new identity after the lease was lost; will retry");
            false
        }
    }
}

/// The heartbeat loop (asynq calls it the heartbeater): beats every `every` until stopped.
#[derive(Debug)]
pub(crate) struct Heartbeater {
    shared: Arc<Shared>,
    every: std::time::Duration,
}

impl Heartbeater {
    /// Beats for `shared`'s current identity, taking a new one when the lease is lost.
    pub(crate) fn new(shared: Arc<Shared>, every: std::time::Duration) -> Self {
        Self { shared, every }
    }

    /// Beats until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        let shared = &self.shared;
        let mut tick = tokio::time::interval(self.every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                // An operator's signal waits (`signals.rs`): beat now rather than at the tick.
                _ = shared.beat_now.notified() => {
                    let ident = shared.membership.current();
                    match renew(shared, &ident).await {
                        Ok(true) => shared.slot_leases.renew(&shared.client).await,
                        Ok(false) => {
                            lease_lost(shared, &ident).await;
                        }
                        Err(_) => {}
                    }
                }
                _ = tick.tick() => {
                    let ident = shared.membership.current();
                    match renew(shared, &ident).await {
                        Ok(true) => {
                            shared.slot_leases.renew(&shared.client).await;
                            // A reconnect of the shared connection loses its name; set it again.
                            let _ = shared.client.rename_connection().await;
                        }
                        Ok(false) => {
                            lease_lost(shared, &ident).await;
                        }
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed; will retry next beat"),
                    }
                }
            }
        }
    }
}

/// Resident memory of this process in KiB (Sidekiq's `rss`), 0 when unknown.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4)
}
