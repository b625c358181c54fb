//! `promote.lua`: due jobs of the schedule or retry set move into their queues.
//!
//! Which members are due, and so which queues and status hashes they touch, is known only
//! inside the script (by Redis's clock): the script names those keys from the queue and
//! status prefixes. Under a `{app}:` prefix they share one hash slot, as Redis Cluster needs.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;

lua!(PROMOTE, "promote.lua");

/// The sorted set to promote from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromoteFrom {
    /// `schedule`: jobs enqueued to run later.
    Schedule,
    /// `retry`: failed jobs waiting for their next attempt.
    Retry,
}

/// What one [`promote`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promoted {
    /// Members taken out of the set (queued, dropped as cancelled, or buried as malformed).
    pub moved: usize,
    /// How long until the next member is due; `None` when the set is empty.
    pub next_due: Option<Duration>,
}

/// Moves up to `batch` due members of `from` into their queues. `clock_offset_ms` is added to
/// Redis's clock (tests move time with it; 0 otherwise).
pub async fn promote(
    client: &Client,
    from: PromoteFrom,
    batch: usize,
    clock_offset_ms: i64,
) -> Result<Promoted> {
    let keys = client.keys();
    let set = match from {
        PromoteFrom::Schedule => keys.schedule(),
        PromoteFrom::Retry => keys.retry(),
    };
    let mut inv = PROMOTE.invocation();
    inv.key(set)
        .key(keys.queues())
        .key(keys.dead())
        .arg(keys.queue_prefix())
        .arg(keys.status_prefix())
        .arg(clock_offset_ms)
        .arg(batch)
        .arg(keys.wake_channel());
    let (moved, wait_ms): (i64, i64) = PROMOTE.call(client, inv).await?;
    let moved = usize::try_from(moved).map_err(|_| PROMOTE.unexpected((moved, wait_ms)))?;
    let next_due = u64::try_from(wait_ms).ok().map(Duration::from_millis);
    Ok(Promoted { moved, next_due })
}
