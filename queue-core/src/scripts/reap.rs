//! `reap.lua`: the jobs of a worker process whose lease expired move into the caller's
//! processing list, one process per call.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;

lua!(REAP, "reap.lua");

/// What [`reap`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaped {
    /// Jobs claimed into the caller's processing list (possibly none); the caller hands each
    /// back (or buries it). Fewer than asked: the reaped process is forgotten.
    Claimed(Vec<Vec<u8>>),
    /// The process is alive: nothing was done.
    Alive,
    /// The caller's own lease had expired: nothing was done.
    LeaseLost,
}

/// Claims up to `batch` jobs of `reaped` for `caller` if `reaped`'s lease has expired;
/// `caller_lease_ttl` renews the caller's own lease. [`Error::WrongType`](crate::Error::WrongType) when the caller's
/// processing list holds another type: nothing was done.
pub async fn reap(
    client: &Client,
    caller: &str,
    reaped: &str,
    batch: usize,
    caller_lease_ttl: Duration,
) -> Result<Reaped> {
    let keys = client.keys();
    let mut inv = REAP.invocation();
    inv.key(keys.workers())
        .key(keys.processing(caller))
        .key(keys.lease(caller))
        .key(keys.processes())
        .key(keys.lease(reaped))
        .key(keys.processing(reaped))
        .key(keys.process(reaped))
        .key(keys.process_work(reaped))
        .arg(reaped)
        .arg(batch)
        .arg(caller_lease_ttl.as_millis() as u64);
    let reply: redis::Value = REAP.call(client, inv).await?;
    if let Some(e) = REAP.wrong_type(&reply) {
        return Err(e);
    }
    let redis::Value::Array(items) = reply else {
        return Err(REAP.unexpected(reply));
    };
    let mut items = items.into_iter();
    match items.next() {
        Some(redis::Value::Int(1)) => Ok(Reaped::Claimed(
            items
                .filter_map(|item| match item {
                    redis::Value::BulkString(raw) => Some(raw),
                    _ => None,
                })
                .collect(),
        )),
        Some(redis::Value::Int(2)) => Ok(Reaped::Alive),
        Some(redis::Value::Int(0)) => Ok(Reaped::LeaseLost),
        other => Err(REAP.unexpected(other)),
    }
}
