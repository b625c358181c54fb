//! `status_read.lua`: a job's status record wherever it is (its own hash, or packed in the
//! finished-record store), read in one call; a long poll's read also marks it watched.

use std::collections::HashMap;
use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::finished_store;
use crate::scripts::lua;
use crate::status::JobStatus;
use crate::timestamp::Timestamp;

lua!(STATUS_READ, "status_read.lua");

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

/// Reads job `jid`'s status record; `None` when there is none.
pub async fn status_read(client: &Client, jid: &str) -> Result<Option<JobStatus>> {
    Ok(read_anywhere(client, jid, Duration::ZERO)
        .await?
        .map(|w| w.status))
}

/// Reads job `jid`'s status record and marks it watched for `wait` (plus a second for the
/// round trip), so that the scripts that change it announce each change; `None` when there
/// is no record.
pub async fn watch(client: &Client, jid: &str, wait: Duration) -> Result<Option<Watched>> {
    read_anywhere(client, jid, wait + WATCH_SLACK).await
}

/// Added to the mark's lifetime: the caller's wait starts a round trip after Redis marks.
const WATCH_SLACK: Duration = Duration::from_secs(1);

/// One read with the retention periods this process knows; when it finds nothing and they
/// came from its copy, a second with the periods read afresh, if they changed (a job type
/// with a retention of its own may have packed its first record since).
async fn read_anywhere(client: &Client, jid: &str, mark: Duration) -> Result<Option<Watched>> {
    let client = client.for_job_id(jid);
    let client = client.as_ref();
    let known = client.finished_keeps(false).await?;
    let found = read_once(client, jid, &known.keeps, mark).await?;
    if found.is_some() || !known.cached {
        return Ok(found);
    }
    let fresh = client.finished_keeps(true).await?;
    if fresh.keeps == known.keeps {
        return Ok(None);
    }
    read_once(client, jid, &fresh.keeps, mark).await
}

async fn read_once(
    client: &Client,
    jid: &str,
    keeps: &[u64],
    mark: Duration,
) -> Result<Option<Watched>> {
    let keys = client.keys();
    let mut inv = STATUS_READ.invocation();
    inv.key(keys.status(jid));
    for shard in finished_store::candidates(keys, jid, keeps, Timestamp::now().as_secs_f64()) {
        inv.key(shard);
    }
    inv.arg(jid).arg(mark.as_millis() as u64);
    let reply: Vec<redis::Value> = STATUS_READ.call(client, inv).await?;
    let Some((kind, fields)) = reply.split_first() else {
        return Ok(None);
    };
    let announced = match kind {
        redis::Value::Int(1) => true,
        redis::Value::Int(0) => false,
        redis::Value::Int(2) => {
            let [packed] = fields else {
                return Err(STATUS_READ.unexpected(fields));
            };
            let Ok(packed) = redis::from_redis_value_ref::<String>(packed) else {
                return Err(STATUS_READ.unexpected(packed));
            };
            return Ok(finished_store::unpack(&packed).map(|status| Watched {
                status,
                announced: false,
            }));
        }
        other => return Err(STATUS_READ.unexpected(other)),
    };
    let mut hash = HashMap::with_capacity(fields.len() / 2);
    for pair in fields.chunks(2) {
        let [field, value] = pair else {
            return Err(STATUS_READ.unexpected(pair));
        };
        let (Ok(field), Ok(value)) = (
            redis::from_redis_value_ref::<String>(field),
            redis::from_redis_value_ref::<String>(value),
        ) else {
            return Err(STATUS_READ.unexpected(pair));
        };
        hash.insert(field, value);
    }
    Ok(JobStatus::from_hash(hash).map(|status| Watched { status, announced }))
}
