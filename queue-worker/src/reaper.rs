//! The reaper: returns the jobs of worker processes that died (their lease expired).
//!
//! Every worker runs it, so recovery does not wait for a restart. A job that keeps killing
//! its process is not recovered forever: after `max_recoveries` it goes to the dead set.

use queue_core::JobPayload;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::failure::Failure;
use crate::settle::{self, Count};
use crate::shared::Shared;

/// Most jobs claimed by one pass (the loop continues until none are left).
const REAP_BATCH: usize = 100;

/// Reaps every `reaper_interval` (jittered so that workers spread out) until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let every = shared.config.reaper_interval;
        let jitter = Duration::from_millis(fastrand::u64(0..=every.as_millis() as u64 / 4));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every - every / 8 + jitter) => {
                match reap(&shared).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(jobs = n, "recovered jobs of dead worker processes"),
                    Err(e) => tracing::warn!(error = %e, "reaper pass failed; will retry"),
                }
            }
        }
    }
}

/// One full pass: claims and requeues every job of every dead process. Returns how many.
pub(crate) async fn reap(shared: &Shared) -> queue_core::Result<usize> {
    let mut total = 0;
    loop {
        let ident = shared.membership.current();
        let k = &shared.keys;
        let mut inv = queue_core::scripts::REAP.prepare_invoke();
        inv.key(k.workers())
            .key(&ident.processing)
            .key(&ident.lease)
            .key(k.processes())
            .arg(k.lease_prefix())
            .arg(k.processing_prefix())
            .arg(REAP_BATCH)
            .arg(k.prefix());
        let mut conn = shared.client.connection();
        let reply: Vec<redis::Value> = shared.client.bounded(inv.invoke_async(&mut conn)).await?;
        let mut items = reply.into_iter();
        if !matches!(items.next(), Some(redis::Value::Int(1))) {
            crate::heartbeat::reregister(shared, &ident).await;
            return Ok(total);
        }
        let claimed: Vec<String> = items
            .filter_map(|v| match v {
                redis::Value::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                _ => None,
            })
            .collect();
        let n = claimed.len();
        for raw in claimed {
            recover(shared, &ident, raw).await?;
        }
        total += n;
        if n < REAP_BATCH {
            return Ok(total);
        }
    }
}

async fn recover(
    shared: &Shared,
    ident: &crate::membership::Identity,
    raw: String,
) -> queue_core::Result<()> {
    let mut job = match JobPayload::from_json(raw.as_bytes()) {
        Ok(job) => job,
        Err(e) => {
            settle::bury_malformed(shared, ident, &raw, &format!("not valid job JSON: {e}"))
                .await?;
            return Ok(());
        }
    };
    let recovered = job.recovered.unwrap_or(0) + 1;
    if recovered > shared.config.max_recoveries {
        let failure = Failure::dead(format!(
            "recovered {} times: its worker process died each time it ran this job (killed, out of memory, or crashed)",
            recovered - 1
        ));
        tracing::error!(job_id = %job.jid, class = %job.class, "job keeps killing its worker; moved to the dead set");
        settle::fail(shared, ident, &raw, job, &failure, Count::Yes).await?;
        return Ok(());
    }
    job.recovered = Some(recovered);
    let pushed = job.to_json()?;
    tracing::warn!(job_id = %job.jid, class = %job.class, recovered, "recovered job of a dead worker process");
    settle::requeue(shared, ident, &raw, &pushed, &job).await?;
    Ok(())
}
