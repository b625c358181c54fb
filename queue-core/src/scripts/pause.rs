//! `pause.lua`: an operator pauses or resumes a queue.

use crate::client::Client;
use crate::error::Result;
use crate::queue_name::validate_queue_name;
use crate::scripts::{flag, lua};

lua!(PAUSE, "pause.lua");

/// The wake-channel message that tells workers the paused set changed. It cannot be a queue
/// name (`:` is not allowed in one), so no worker mistakes it for an enqueue.
pub const PAUSED_CHANGED: &str = ":paused";

/// Pauses (`paused = true`) or resumes `queue`. `Ok(true)` when that changed something.
pub async fn pause(client: &Client, queue: &str, paused: bool) -> Result<bool> {
    validate_queue_name(queue)?;
    let keys = client.keys();
    let mut inv = PAUSE.invocation();
    inv.key(keys.paused());
    inv.arg(queue)
        .arg(flag(paused))
        .arg(keys.wake_channel())
        .arg(PAUSED_CHANGED);
    let reply: redis::Value = PAUSE.call(client, inv).await?;
    match PAUSE.int(reply)? {
        1 => Ok(true),
        0 => Ok(false),
        other => Err(PAUSE.unexpected(other)),
    }
}
