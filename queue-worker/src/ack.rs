//! The acker: finishes succeeded jobs in batches, one script call per batch.
//!
//! Runners hand their successes over a channel and move on; under load many acks share
//! one round trip, while a lone ack goes out at once. At-least-once: until the ack lands,
//! the job stays in the processing list, so a crash here means it runs again, never that
//! it is lost.

use queue_core::Timestamp;
use queue_core::timestamp::utc_day;
use std::sync::Arc;
use tokio::sync::mpsc;

use crate::membership::Identity;
use crate::settle::daily_stat_ttl_secs;
use crate::shared::{Shared, retry_transient};

/// Most acks sent in one script call.
const ACK_BATCH: usize = 200;

/// One job to finish.
#[derive(Debug)]
pub(crate) struct Ack {
    pub(crate) ident: Arc<Identity>,
    pub(crate) raw: Vec<u8>,
    pub(crate) jid: String,
    pub(crate) tracked: bool,
    /// Whether an earlier attempt failed (its error is cleared from the status record).
    pub(crate) retried: bool,
    /// Result JSON, `""` for none, or `None` when the job was cancelled and did not run.
    pub(crate) result: Option<String>,
}

/// Runs until every sender is dropped and the channel is drained.
pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Ack>) {
    let mut batch = Vec::with_capacity(ACK_BATCH);
    while rx.recv_many(&mut batch, ACK_BATCH).await > 0 {
        // Runners finishing at the same moment send their acks within a few polls: yield
        // once so they share this round trip (no timer, so a lone ack is not delayed).
        if batch.len() < ACK_BATCH {
            tokio::task::yield_now().await;
            while batch.len() < ACK_BATCH {
                match rx.try_recv() {
                    Ok(a) => batch.push(a),
                    Err(_) => break,
                }
            }
        }
        // Acks of one batch may belong to two identities if the lease was renewed meanwhile.
        while !batch.is_empty() {
            let ident = Arc::clone(&batch[0].ident);
            let (mine, rest): (Vec<Ack>, Vec<Ack>) =
                batch.drain(..).partition(|a| a.ident == ident);
            batch = rest;
            if let Err(e) = ack(&shared, &ident, &mine).await {
                tracing::error!(error = %e, jobs = mine.len(),
                    "could not ack jobs; they stay in the processing list and will run again");
            }
            for a in &mine {
                shared.in_flight.remove(&a.raw);
            }
        }
    }
}

async fn ack(shared: &Shared, ident: &Identity, acks: &[Ack]) -> queue_core::Result<()> {
    let k = &shared.keys;
    let now = Timestamp::now();
    let day = utc_day(now.as_secs_f64());
    let finished = shared.client.config().status_retention.finished.as_secs();
    let flags: Vec<i64> = retry_transient("acking jobs", || async {
        let mut conn = shared.client.connection();
        let mut inv = queue_core::scripts::ACK.prepare_invoke();
        inv.key(&ident.processing)
            .key(k.stat_processed())
            .key(k.stat_processed_on(&day));
        for a in acks {
            inv.key(k.status(&a.jid));
        }
        inv.arg(format!("{:.6}", now.as_secs_f64()))
            .arg(finished)
            .arg(daily_stat_ttl_secs());
        for a in acks {
            inv.arg(&a.raw)
                .arg(match (a.tracked, a.retried) {
                    (false, _) => "0",
                    (true, false) => "1",
                    (true, true) => "2",
                })
                .arg(a.result.as_deref().unwrap_or("-"));
        }
        shared.client.bounded(inv.invoke_async(&mut conn)).await
    })
    .await?;
    for (a, flag) in acks.iter().zip(flags) {
        if flag == 0 {
            tracing::warn!(job_id = %a.jid,
                "late result rejected: the job was recovered and handed to another worker");
        }
    }
    Ok(())
}
