//! The heartbeat: renews this process's lease and its Sidekiq process record.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

use crate::membership::Identity;
use crate::shared::{Shared, retry_transient};

/// Sidekiq's process records live 60 s; `Sidekiq::ProcessSet` drops expired ones.
const SIDEKIQ_PROCESS_TTL_SECS: u64 = 60;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Register,
    Renew,
}

/// Registers `ident` (a fresh identity). Returns false if it already was registered.
pub(crate) async fn register(shared: &Shared, ident: &Identity) -> queue_core::Result<bool> {
    beat(shared, ident, Mode::Register).await
}

/// Renews the lease; returns false when it had expired.
async fn renew(shared: &Shared, ident: &Identity) -> queue_core::Result<bool> {
    beat(shared, ident, Mode::Renew).await
}

async fn beat(shared: &Shared, ident: &Identity, mode: Mode) -> queue_core::Result<bool> {
    let k = &shared.keys;
    let c = &shared.config;
    let info = serde_json::json!({
        "hostname": crate::membership::host_name(),
        "started_at": shared.started_at,
        "pid": std::process::id(),
        "tag": c.tag.clone().unwrap_or_default(),
        "concurrency": c.concurrency,
        "queues": c.queues.names(),
        "labels": ["rust"],
        "identity": ident.name,
    })
    .to_string();
    let now = queue_core::Timestamp::now().as_secs_f64();
    let mut inv = queue_core::scripts::HEARTBEAT.prepare_invoke();
    inv.key(&ident.lease)
        .key(k.workers())
        .key(k.processes())
        .key(k.process(&ident.name))
        .arg(c.lease_ttl.as_millis() as u64)
        .arg(if mode == Mode::Register {
            "register"
        } else {
            "renew"
        })
        .arg(&ident.name)
        .arg(info)
        .arg(shared.busy.load(Ordering::Relaxed))
        .arg(format!("{now:.6}"))
        .arg(if shared.quiet.is_cancelled() {
            "true"
        } else {
            "false"
        })
        .arg(rss_kib())
        .arg(SIDEKIQ_PROCESS_TTL_SECS);
    let mut conn = shared.client.connection();
    let alive: i64 = shared.client.bounded(inv.invoke_async(&mut conn)).await?;
    Ok(alive == 1)
}

/// Takes a fresh identity after `lost`'s lease expired, and registers it.
///
/// The new identity is registered before it is installed, so no task ever fetches into, or
/// renews, an identity without a lease; tasks that noticed the same loss wait on the lock
/// and then find the identity already replaced.
pub(crate) async fn reregister(shared: &Shared, lost: &Identity) {
    let _renewing = shared.membership.renewing.lock().await;
    if *shared.membership.current() != *lost {
        return; // another task already replaced and registered it
    }
    let fresh = shared.membership.fresh();
    match retry_transient("registering", || register(shared, &fresh)).await {
        Ok(_) => {
            tracing::warn!(old = %lost.name, new = %fresh.name,
                "lease lost (Redis restarted or this process stalled); continuing under a new identity");
            shared.membership.install(fresh);
        }
        Err(e) => tracing::error!(error = %e,
            "could not register a new identity after the lease was lost; will retry"),
    }
}

/// Beats every `heartbeat_interval` until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(shared.config.heartbeat_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {
                let ident = shared.membership.current();
                match renew(&shared, &ident).await {
                    Ok(true) => {
                        // A reconnect of the shared connection loses its name; set it again.
                        let mut conn = shared.client.connection();
                        let _ = queue_core::connection::name_connection(&mut conn, shared.client.config()).await;
                    }
                    Ok(false) => reregister(&shared, &ident).await,
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed; will retry next beat"),
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
