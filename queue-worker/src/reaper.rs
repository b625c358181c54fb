//! The reaper: returns the jobs of worker processes that died (their lease expired).
//!
//! Every worker runs it, so recovery does not wait for a restart. A job that keeps killing
//! its process is not recovered forever: after `max_recoveries` it goes to the dead set.
//!
//! Each pass also audits this process's own processing list: entries nobody here holds
//! (a fetch whose reply was lost, a settle call that gave up) go back to their queues.

use queue_core::JobPayload;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::failure::Failure;
use crate::in_flight::Taken;
use crate::settle;
use crate::shared::Shared;

/// Most jobs claimed by one pass (the loop continues until none are left).
const REAP_BATCH: usize = 100;

/// Reaps every `reaper_interval` (jittered so that workers spread out) until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    let mut suspects = HashSet::new();
    loop {
        let every = shared.config.reaper_interval;
        let jitter = Duration::from_millis(fastrand::u64(0..=every.as_millis() as u64 / 4));
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(every - every / 8 + jitter) => {
                // Once quiet, claim nothing more: jobs claimed now could be cut off by the
                // shutdown deadline and counted as one more recovery.
                if shared.quiet.is_cancelled() {
                    continue;
                }
                match reap(&shared).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(jobs = n, "recovered jobs of dead worker processes"),
                    Err(e) => tracing::warn!(error = %e, "reaper pass failed; will retry"),
                }
                match audit(&shared, &mut suspects).await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(jobs = n, "handed back jobs this process had taken but was not running"),
                    Err(e) => tracing::warn!(error = %e, "audit of the processing list failed; will retry"),
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
            .arg(k.prefix())
            .arg(shared.config.lease_ttl.as_millis() as u64);
        let claimed: Vec<Vec<u8>> = {
            let _gate = shared.in_flight.gate.read().await;
            let mut conn = shared.client.connection();
            let reply: Vec<redis::Value> =
                shared.client.bounded(inv.invoke_async(&mut conn)).await?;
            match shared.in_flight.register_taken("reap.lua", reply, false)? {
                Taken::Jobs(claimed) => claimed.into_iter().map(|(raw, _)| raw).collect(),
                Taken::LeaseLost => {
                    drop(_gate);
                    crate::heartbeat::reregister(shared, &ident).await;
                    return Ok(total);
                }
            }
        };
        let n = claimed.len();
        // Every claimed entry leaves the in-flight set, even after an error, so that the
        // audit can hand back whatever this pass could not.
        let mut first_error = None;
        for raw in claimed {
            let recovered = recover(shared, &ident, &raw).await;
            shared.in_flight.remove(&raw);
            if let Err(e) = recovered {
                first_error.get_or_insert(e);
            }
        }
        if let Some(e) = first_error {
            return Err(e);
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
    raw: &[u8],
) -> queue_core::Result<()> {
    let mut job = match JobPayload::from_json(raw) {
        Ok(job) => job,
        Err(e) => {
            settle::bury_malformed(shared, ident, raw, &format!("not valid job JSON: {e}")).await?;
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
        settle::fail(shared, ident, raw, job, &failure).await?;
        return Ok(());
    }
    job.recovered = Some(recovered);
    let pushed = job.to_json()?;
    tracing::warn!(job_id = %job.jid, class = %job.class, recovered, "recovered job of a dead worker process");
    settle::requeue(shared, ident, raw, pushed.as_bytes(), &job).await?;
    Ok(())
}

/// Hands back the entries of this process's processing list that no task here held at two
/// passes in a row (`suspects` carries the first sighting). One sighting is not enough: a
/// runner may have settled an entry (failed, deferred, handed back) between the list read
/// and the in-flight check. Returns how many were handed back.
pub(crate) async fn audit(
    shared: &Shared,
    suspects: &mut HashSet<Vec<u8>>,
) -> queue_core::Result<usize> {
    let ident = shared.membership.current();
    let orphans = {
        let _gate = shared.in_flight.gate.write().await;
        let mut conn = shared.client.connection();
        let listed: Vec<Vec<u8>> = shared
            .client
            .bounded(
                redis::cmd("LRANGE")
                    .arg(&ident.processing)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn),
            )
            .await?;
        let seen_now = shared.in_flight.orphans(listed);
        let (confirmed, fresh): (Vec<_>, Vec<_>) =
            seen_now.into_iter().partition(|raw| suspects.contains(raw));
        *suspects = fresh.into_iter().collect();
        for raw in &confirmed {
            shared.in_flight.add(raw);
        }
        confirmed
    };
    let n = orphans.len();
    let mut first_error = None;
    for raw in orphans {
        let handed = hand_back(shared, &ident, &raw).await;
        shared.in_flight.remove(&raw);
        if let Err(e) = handed {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(n), Err)
}

async fn hand_back(
    shared: &Shared,
    ident: &crate::membership::Identity,
    raw: &[u8],
) -> queue_core::Result<()> {
    match JobPayload::from_json(raw) {
        Ok(job) => {
            tracing::warn!(job_id = %job.jid, "job taken but not running here; handing it back");
            settle::requeue(shared, ident, raw, raw, &job).await?;
        }
        Err(e) => {
            settle::bury_malformed(shared, ident, raw, &format!("not valid job JSON: {e}")).await?;
        }
    }
    Ok(())
}
