//! `watch.lua`: a long poll reads a status record and marks it watched, in one call.

use std::collections::HashMap;
use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;
use crate::status::JobStatus;

lua!(WATCH, "watch.lua");

/// A status record read by [`watch`].
#[derive(Debug, Clone)]
pub struct Watched {
    /// The record as it was when marked.
    pub status: JobStatus,
    /// Whether every change for at least the wait asked for will be announced on
    /// [`Keys::status_channel`](crate::Keys::status_channel). `false` for a terminal state,
    /// and when Redis refused the mark (at maxmemory): the caller should not wait for an
    /// announcement then.
    pub announced: bool,
}

/// Reads job `jid`'s status record and marks it watched for `wait` (plus a second for the
/// round trip), so that the scripts that change it announce each change; `None` when there
/// is no record.
pub async fn watch(client: &Client, jid: &str, wait: Duration) -> Result<Option<Watched>> {
    let mut inv = WATCH.invocation();
    inv.key(client.status_key(jid))
        .arg((wait + WATCH_SLACK).as_millis() as u64);
    let reply: Vec<redis::Value> = WATCH.call(client, inv).await?;
    let Some((marked, fields)) = reply.split_first() else {
        return Ok(None);
    };
    let announced = match marked {
        redis::Value::Int(1) => true,
        redis::Value::Int(0) => false,
        other => return Err(WATCH.unexpected(other)),
    };
    let mut hash = HashMap::with_capacity(fields.len() / 2);
    for pair in fields.chunks(2) {
        let [field, value] = pair else {
            return Err(WATCH.unexpected(pair));
        };
        let (Ok(field), Ok(value)) = (
            redis::from_redis_value_ref::<String>(field),
            redis::from_redis_value_ref::<String>(value),
        ) else {
            return Err(WATCH.unexpected(pair));
        };
        hash.insert(field, value);
    }
    Ok(JobStatus::from_hash(hash).map(|status| Watched { status, announced }))
}

/// Added to the mark's lifetime: the caller's wait starts a round trip after Redis marks.
const WATCH_SLACK: Duration = Duration::from_secs(1);
