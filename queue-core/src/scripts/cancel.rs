//! `cancel.lua`: a job that has not started is marked cancelled; workers then skip it.

use crate::client::{Client, secs_str};
use crate::error::Result;
use crate::scripts::lua;
use crate::timestamp::Timestamp;

lua!(CANCEL, "cancel.lua");

/// What a cancel did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The record now says `cancelled`: the job will not run.
    Cancelled,
    /// No record, or the job is running or finished: nothing changed.
    TooLate,
}

/// Cancels job `jid` if it is queued, scheduled or waiting for a retry.
pub async fn cancel(client: &Client, jid: &str) -> Result<Cancelled> {
    let mut inv = CANCEL.invocation();
    inv.key(client.keys().status(jid))
        .arg(secs_str(Timestamp::now()))
        .arg(client.config().status_retention.finished.as_secs())
        .arg(client.keys().status_channel());
    match CANCEL.call::<i64>(client, inv).await? {
        1 => Ok(Cancelled::Cancelled),
        0 => Ok(Cancelled::TooLate),
        other => Err(CANCEL.unexpected(other)),
    }
}
