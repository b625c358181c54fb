//! `cancel.lua`: a job is cancelled: skipped if it has not started, told to stop if running.

use crate::client::{Client, secs_str};
use crate::error::Result;
use crate::scripts::lua;
use crate::timestamp::Timestamp;

lua!(CANCEL, "cancel.lua");

/// The wake-channel notice that job `<id>` (which follows it) was cancelled while running.
/// It cannot be a queue name (`:` is not allowed in one), so no worker mistakes it for an
/// enqueue.
pub const CANCEL_NOTICE: &str = ":cancel ";

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The record now says `cancelled` and the job had not started: it will not run.
    Cancelled,
    /// The job was running: its record says `cancelled`, and the worker holding it was told,
    /// so its `ctx.cancelled()` fires. It will not run again after it stops.
    Stopping,
    /// No record, or the job has finished: nothing changed.
    TooLate,
}

/// Cancels job `jid` if it is queued, scheduled, waiting for a retry or running.
pub async fn cancel(client: &Client, jid: &str) -> Result<Cancelled> {
    let keys = client.keys();
    let mut inv = CANCEL.invocation();
    inv.key(keys.status(jid))
        .arg(secs_str(Timestamp::now()))
        .arg(client.config().status_retention.finished.as_secs())
        .arg(keys.status_channel())
        .arg(keys.wake_channel())
        .arg(CANCEL_NOTICE)
        .arg(jid);
    match CANCEL.call::<i64>(client, inv).await? {
        1 => Ok(Cancelled::Cancelled),
        2 => Ok(Cancelled::Stopping),
        0 => Ok(Cancelled::TooLate),
        other => Err(CANCEL.unexpected(other)),
    }
}
