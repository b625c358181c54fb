//! The scheduler: promotes due jobs from the schedule and retry sets into their queues.
//!
//! Due-ness is judged by Redis's clock inside `promote.lua`, so dynos with drifting clocks
//! agree, and the move is atomic, so any number of workers can run it at once. The script
//! also says when the next job is due, so the loop sleeps exactly that long (capped by
//! `scheduler_interval`): due jobs start on time without polling Redis in a tight loop.

use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::shared::Shared;

/// Most jobs moved by one script call.
const PROMOTE_BATCH: usize = 100;
/// Shortest pause between passes, so a set full of due jobs cannot spin the loop.
const MIN_PAUSE: Duration = Duration::from_millis(5);

/// Promotes until `stop`.
pub(crate) async fn run(shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let pause = match promote_all(&shared).await {
            Ok(next_due) => next_due
                .unwrap_or(shared.config.scheduler_interval)
                .min(shared.config.scheduler_interval)
                .max(MIN_PAUSE),
            Err(e) => {
                tracing::warn!(error = %e, "scheduler pass failed; will retry");
                shared.config.scheduler_interval
            }
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// One pass over both sets. Returns how long until the next job is due, if any is waiting.
pub(crate) async fn promote_all(shared: &Shared) -> queue_core::Result<Option<Duration>> {
    let mut next: Option<Duration> = None;
    for set in [shared.keys.schedule(), shared.keys.retry()] {
        loop {
            let (moved, wait_ms) = promote(shared, &set).await?;
            if moved > 0 {
                tracing::debug!(set = %set, jobs = moved, "promoted due jobs");
            }
            if moved < PROMOTE_BATCH as i64 {
                if wait_ms >= 0 {
                    let wait = Duration::from_millis(wait_ms as u64);
                    next = Some(next.map_or(wait, |n| n.min(wait)));
                }
                break;
            }
        }
    }
    Ok(next)
}

async fn promote(shared: &Shared, set: &str) -> queue_core::Result<(i64, i64)> {
    let k = &shared.keys;
    let mut inv = queue_core::scripts::PROMOTE.prepare_invoke();
    inv.key(set)
        .key(k.queues())
        .key(k.dead())
        .arg(k.queue_prefix())
        .arg(k.status_prefix())
        .arg(shared.config.clock_offset_ms)
        .arg(PROMOTE_BATCH)
        .arg(k.wake_channel());
    let mut conn = shared.client.connection();
    shared.client.bounded(inv.invoke_async(&mut conn)).await
}
