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
    /// Its deadline has not passed on Redis's clock: nothing written, the job may run.
    NotDue,
}

/// Drops `raw` (job `jid`) from `identity`'s processing list as expired if its `deadline`
/// (epoch s) has passed on Redis's clock, shifted by `clock_offset_ms` (0 outside tests).
pub async fn expire(
    client: &Client,
    identity: &str,
    raw: &[u8],
    jid: &str,
    deadline: f64,
    clock_offset_ms: i64,
) -> Result<Expired> {
    let keys = client.keys();
    let mut inv = EXPIRE.invocation();
    inv.key(keys.processing(identity))
        .key(keys.status(jid))
        .arg(raw)
        .arg(client.config().status_retention.finished.as_secs())
        .arg(keys.status_channel())
        .arg(format!("{deadline:.6}"))
        .arg(clock_offset_ms);
    match EXPIRE.int(EXPIRE.call(client, inv).await?)? {
        1 => Ok(Expired::Expired),
        0 => Ok(Expired::NotOwned),
        2 => Ok(Expired::Cancelled),
        3 => Ok(Expired::NotDue),
        other => Err(EXPIRE.unexpected(other)),
    }
}
