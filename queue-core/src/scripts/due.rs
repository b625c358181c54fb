//! `due.lua`: which members of the schedule or retry set are due, by Redis's clock.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::keys::Keys;
use crate::scripts::lua;

lua!(DUE, "due.lua");

/// The sorted set to promote from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromoteFrom {
    /// `schedule`: jobs enqueued to run later.
    Schedule,
    /// `retry`: failed jobs waiting for their next attempt.
    Retry,
}

impl PromoteFrom {
    /// The set's key.
    pub(crate) fn key(self, keys: &Keys) -> String {
        match self {
            PromoteFrom::Schedule => keys.schedule(),
            PromoteFrom::Retry => keys.retry(),
        }
    }
}

/// The due members of a set.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Due {
    /// Redis's time (plus the offset) when they were read, as the scripts write it.
    pub(crate) now: String,
    /// When none is due: how long until the first one is; `None` when the set is empty.
    pub(crate) next_due: Option<Duration>,
    /// The members, most overdue first.
    pub(crate) members: Vec<Vec<u8>>,
}

/// Reads up to `batch` due members of `from`. `clock_offset_ms` is added to Redis's clock.
pub(crate) async fn due(
    client: &Client,
    from: PromoteFrom,
    batch: usize,
    clock_offset_ms: i64,
) -> Result<Due> {
    let mut inv = DUE.invocation();
    inv.key(from.key(client.keys()))
        .arg(clock_offset_ms)
        .arg(batch);
    let reply: redis::Value = DUE.call(client, inv).await?;
    if let Some(e) = DUE.wrong_type(&reply) {
        return Err(e);
    }
    let redis::Value::Array(reply) = reply else {
        return Err(DUE.unexpected(reply));
    };
    let mut items = reply.into_iter();
    let (Some(redis::Value::BulkString(now)), Some(redis::Value::Int(wait_ms))) =
        (items.next(), items.next())
    else {
        return Err(DUE.unexpected("a reply without the time and the wait"));
    };
    let now = String::from_utf8(now).map_err(|e| DUE.unexpected(e))?;
    let mut members = Vec::with_capacity(items.len());
    for item in items {
        match item {
            redis::Value::BulkString(member) => members.push(member),
            other => return Err(DUE.unexpected(other)),
        }
    }
    Ok(Due {
        now,
        next_due: u64::try_from(wait_ms).ok().map(Duration::from_millis),
        members,
    })
}
