//! `expire.lua`: a taken job past its deadline dropped, with status `expired`.

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;

lua!(EXPIRE, "expire.lua");

/// What [`expire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Dropped; its record says `expired`.
    Expired,
    /// It was no longer in this process's processing list: nothing written.
    NotOwned,
    /// Its record said cancelled: dropped as cancelled.
    Cancelled,
}

/// Drops `raw` (job `jid`) from `identity`'s processing list as expired.
pub async fn expire(client: &Client, identity: &str, raw: &[u8], jid: &str) -> Result<Expired> {
    let keys = client.keys();
    let mut inv = EXPIRE.invocation();
    inv.key(keys.processing(identity))
        .key(keys.status(jid))
        .arg(raw)
        .arg(client.config().status_retention.finished.as_secs())
        .arg(keys.status_channel());
    match EXPIRE.int(EXPIRE.call(client, inv).await?)? {
        1 => Ok(Expired::Expired),
        0 => Ok(Expired::NotOwned),
        2 => Ok(Expired::Cancelled),
        other => Err(EXPIRE.unexpected(other)),
    }
}
