//! The scheduler: promotes due jobs from the schedule and retry sets into their queues.
//!
//! Due-ness is judged by Redis's clock (`due.lua`), so dynos with drifting clocks agree, and
//! `promote.lua` moves a job only if it is still in the set, so any number of workers can
//! run it at once. The script
//! also says when the next job is due, so the loop sleeps exactly that long (capped by
//! `scheduler_interval`): due jobs start on time without polling Redis in a tight loop.

use queue_core::Client;
use queue_core::scripts::{PromoteFrom, promote};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Most jobs moved by one script call.
const PROMOTE_BATCH: usize = 100;
/// Shortest pause between passes, so a set full of due jobs cannot spin the loop.
const MIN_PAUSE: Duration = Duration::from_millis(5);

/// The scheduler loop and what it needs: nothing of the rest of the worker.
#[derive(Debug)]
pub(crate) struct Scheduler {
    client: Client,
    /// Longest pause between passes (`WorkerConfig::scheduler_interval`).
    every: Duration,
    /// Added to Redis's clock (tests move time with it; 0 otherwise).
    clock_offset_ms: i64,
}

impl Scheduler {
    pub(crate) fn new(client: Client, every: Duration, clock_offset_ms: i64) -> Self {
        Self {
            client,
            every,
            clock_offset_ms,
        }
    }

    /// Promotes until `stop`.
    pub(crate) async fn run(self, stop: CancellationToken) {
        loop {
            let pause = match self.promote_all().await {
                Ok(next_due) => next_due
                    .unwrap_or(self.every)
                    .min(self.every)
                    .max(MIN_PAUSE),
                Err(e) => {
                    tracing::warn!(error = %e, "scheduler pass failed; will retry");
                    self.every
                }
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One pass over both sets. Returns how long until the next job is due, if any waits.
    async fn promote_all(&self) -> queue_core::Result<Option<Duration>> {
        let mut next: Option<Duration> = None;
        for from in [PromoteFrom::Schedule, PromoteFrom::Retry] {
            loop {
                let promoted =
                    promote(&self.client, from, PROMOTE_BATCH, self.clock_offset_ms).await?;
                if promoted.moved > 0 {
                    tracing::debug!(set = ?from, jobs = promoted.moved, "promoted due jobs");
                }
                if promoted.stuck > 0 {
                    tracing::error!(set = ?from, jobs = promoted.stuck,
                        "due jobs left in place: their queue's key holds another type");
                    // They stay due: look again at the next regular pass, not in 5 ms.
                    next = Some(next.map_or(self.every, |n| n.min(self.every)));
                    break;
                }
                if promoted.moved < PROMOTE_BATCH {
                    if let Some(wait) = promoted.next_due {
                        next = Some(next.map_or(wait, |n| n.min(wait)));
                    }
                    break;
                }
            }
        }
        Ok(next)
    }
}
