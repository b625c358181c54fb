//! `limit_acquire.lua`: a job class's global concurrency slots, across all processes; and
//! giving a slot back.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::{lua, release_slot};

lua!(LIMIT_ACQUIRE, "limit_acquire.lua");

/// What [`limit_acquire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// A slot is held (newly, or already by this holder).
    Taken,
    /// The class is at its limit.
    Full,
}

/// Takes one of `class`'s `limit` slots for `holder`; the slot expires after `lifetime`, so
/// a process that dies cannot leak it. [`Error::WrongType`](crate::Error::WrongType) when the class's key holds another
/// type.
pub async fn limit_acquire(
    client: &Client,
    class: &str,
    holder: &str,
    limit: u32,
    lifetime: Duration,
) -> Result<Slot> {
    let mut inv = LIMIT_ACQUIRE.invocation();
    inv.key(client.keys().concurrency(class))
        .arg(holder)
        .arg(limit)
        .arg(lifetime.as_millis() as u64);
    match LIMIT_ACQUIRE.int(LIMIT_ACQUIRE.call(client, inv).await?)? {
        1 => Ok(Slot::Taken),
        0 => Ok(Slot::Full),
        other => Err(LIMIT_ACQUIRE.unexpected(other)),
    }
}

/// Gives `holder`'s slot of `class` back (one `ZREM`; no script needed).
pub async fn limit_release(client: &Client, class: &str, holder: &str) -> Result<()> {
    release_slot(client, client.keys().concurrency(class), holder).await
}
