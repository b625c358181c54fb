//! `defer.lua`: put a job back for later without counting a failure or using a retry.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;

lua!(DEFER, "defer.lua");

/// Where a deferred job waits, and why.
#[derive(Debug, Clone, Copy)]
pub enum Deferral<'a> {
    /// Its class is at its concurrency limit: the schedule set, shown as `scheduled`.
    OverLimit,
    /// This worker does not know its class: the retry set, shown as `retrying` with `error`.
    UnknownClass {
        /// The error shown in the status record.
        error: &'a str,
    },
}

/// What [`defer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferred {
    /// Waiting in the schedule or retry set.
    Later,
    /// Not in the processing list any more (another worker owns it): nothing was written.
    NotOwned,
    /// Its status record says cancelled: dropped instead.
    Cancelled,
}

/// Moves `raw` from `identity`'s processing list into the set `why` names, stored as
/// `stored`, due after `delay` (Redis's clock). [`Error::WrongType`](crate::Error::WrongType) when that set's key holds
/// another type: nothing was written, the job is still held.
pub async fn defer(
    client: &Client,
    identity: &str,
    raw: &[u8],
    stored: &str,
    jid: &str,
    delay: Duration,
    why: Deferral<'_>,
) -> Result<Deferred> {
    let keys = client.keys();
    let (set, state, error) = match why {
        Deferral::OverLimit => (keys.schedule(), "scheduled", ""),
        Deferral::UnknownClass { error } => (keys.retry(), "retrying", error),
    };
    let mut inv = DEFER.invocation();
    inv.key(keys.processing(identity))
        .key(set)
        .key(keys.status(jid))
        .arg(raw)
        .arg(stored)
        .arg(delay.as_millis() as u64)
        .arg(state)
        .arg(error)
        .arg(client.config().status_retention.active.as_secs())
        .arg(client.keys().status_channel());
    match DEFER.int(DEFER.call(client, inv).await?)? {
        1 => Ok(Deferred::Later),
        0 => Ok(Deferred::NotOwned),
        2 => Ok(Deferred::Cancelled),
        other => Err(DEFER.unexpected(other)),
    }
}
