//! `periodic_tick.lua`: one tick of a periodic entry pushed, exactly once across processes.

use crate::client::Client;
use crate::error::Result;
use crate::periodic::{TickKind, Ticked};
use crate::scripts::{flag, lua};

lua!(PERIODIC_TICK, "periodic_tick.lua");

/// One tick, encoded.
pub(crate) struct PeriodicTick<'a> {
    pub(crate) name: &'a str,
    pub(crate) digest: &'a str,
    pub(crate) tick: i64,
    pub(crate) next: i64,
    pub(crate) kind: TickKind,
    pub(crate) jid: &'a str,
    pub(crate) queue: &'a str,
    pub(crate) json: &'a [u8],
    pub(crate) status: Option<&'a [(&'static str, &'a str)]>,
    pub(crate) clock_offset_ms: i64,
    /// Refuse a `due` tick more than this late by Redis's clock (0: never).
    pub(crate) stale_after_ms: u64,
    /// A stale tick may still run when the tick after it is not due yet (run-once policy).
    pub(crate) newest_may_run: bool,
}

/// Offers the tick; see [`Ticked`] for the replies.
pub(crate) async fn periodic_tick(client: &Client, t: &PeriodicTick<'_>) -> Result<Ticked> {
    let keys = client.keys();
    let mut inv = PERIODIC_TICK.invocation();
    inv.key(keys.periodic_entry(t.name))
        .key(keys.queue(t.queue))
        .key(keys.queues())
        .key(keys.status(t.jid))
        .arg(t.digest)
        .arg(t.tick)
        .arg(t.next)
        .arg(match t.kind {
            TickKind::Due => "due",
            TickKind::Missed => "missed",
        })
        .arg(t.jid)
        .arg(t.queue)
        .arg(t.json)
        .arg(flag(t.status.is_some()))
        .arg(client.config().status_retention.active.as_secs())
        .arg(keys.wake_channel())
        .arg(t.clock_offset_ms)
        .arg(t.stale_after_ms)
        .arg(flag(t.newest_may_run));
    for (f, v) in t.status.unwrap_or_default() {
        inv.arg(*f).arg(*v);
    }
    let reply: redis::Value = PERIODIC_TICK.call(client, inv).await?;
    if let Some(e) = PERIODIC_TICK.wrong_type(&reply) {
        return Err(e);
    }
    let redis::Value::Array(items) = &reply else {
        return Err(PERIODIC_TICK.unexpected(reply));
    };
    match items.as_slice() {
        [redis::Value::Int(1), redis::Value::Int(late_ms)] => {
            Ok(Ticked::Pushed { late_ms: *late_ms })
        }
        [
            redis::Value::Int(6),
            redis::Value::Int(late_ms),
            redis::Value::Int(last),
        ] => Ok(Ticked::PushedOverFuture {
            late_ms: *late_ms,
            last: *last,
        }),
        [redis::Value::Int(0)] => Ok(Ticked::AlreadyDone),
        [redis::Value::Int(3)] => Ok(Ticked::NotRegistered),
        [redis::Value::Int(4)] => Ok(Ticked::Early),
        [redis::Value::Int(5), redis::Value::Int(late_ms)] => {
            Ok(Ticked::Stale { late_ms: *late_ms })
        }
        _ => Err(PERIODIC_TICK.unexpected(reply)),
    }
}
