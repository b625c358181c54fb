//! `progress.lua`: a running job records how far it got.

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;

lua!(PROGRESS, "progress.lua");

/// What [`progress`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressRecorded {
    /// Stored in the status record.
    Recorded,
    /// The job is not running (no record, or finished): nothing was written.
    NotRunning,
}

/// Records `percent` (clamped to 100) and `message` (`""` keeps the last one) for job `jid`.
pub async fn progress(
    client: &Client,
    jid: &str,
    percent: u8,
    message: &str,
) -> Result<ProgressRecorded> {
    let mut inv = PROGRESS.invocation();
    inv.key(client.keys().status(jid))
        .arg(percent.min(100))
        .arg(message)
        .arg(client.keys().status_channel());
    match PROGRESS.call::<i64>(client, inv).await? {
        1 => Ok(ProgressRecorded::Recorded),
        0 => Ok(ProgressRecorded::NotRunning),
        other => Err(PROGRESS.unexpected(other)),
    }
}
