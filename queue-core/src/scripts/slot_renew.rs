//! `slot_renew.lua`: extending the concurrency slots a live worker process holds, so that
//! they last about as long as its lease.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;

lua!(SLOT_RENEW, "slot_renew.lua");

/// The sorted set a concurrency slot lives in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SlotSet {
    /// A job class's `Job::CONCURRENCY_LIMIT` slots (`concurrency:<class>`).
    Class(String),
    /// A named concurrent limiter's slots (`limiter:<name>`).
    Limiter(String),
}

/// One slot held: its set and its holder (the member).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HeldSlot {
    /// The set the slot is in.
    pub set: SlotSet,
    /// The member naming its holder.
    pub holder: String,
}

/// Sets every slot of `slots` still held to expire `lifetime` from now (Redis's clock); one
/// round trip. Returns how many were still held.
pub async fn slot_renew(client: &Client, slots: &[HeldSlot], lifetime: Duration) -> Result<u64> {
    if slots.is_empty() {
        return Ok(0);
    }
    let keys = client.keys();
    let mut inv = SLOT_RENEW.invocation();
    inv.arg(
        u64::try_from(lifetime.as_millis())
            .unwrap_or(u64::MAX)
            .max(1),
    );
    for slot in slots {
        let key = match &slot.set {
            SlotSet::Class(class) => keys.concurrency(class),
            SlotSet::Limiter(name) => keys.limiter(name),
        };
        inv.key(key).arg(&slot.holder);
    }
    let renewed = SLOT_RENEW.int(SLOT_RENEW.call(client, inv).await?)?;
    Ok(u64::try_from(renewed).unwrap_or(0))
}
