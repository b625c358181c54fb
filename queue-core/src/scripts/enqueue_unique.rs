//! `enqueue_unique.lua`: a unique job's key taken and the job pushed, or the holder named.

use crate::client::{Client, secs_str};
use crate::error::Result;
use crate::job_id::JobId;
use crate::options::RunAt;
use crate::scripts::lua;
use crate::timestamp::Timestamp;

lua!(ENQUEUE_UNIQUE, "enqueue_unique.lua");

/// One unique job, encoded.
pub(crate) struct EnqueueUnique<'a> {
    /// Its uniqueness key (without the prefix and `unique:`).
    pub(crate) key: &'a str,
    /// The lock's TTL (a scheduled job's time ahead is added by the script).
    pub(crate) ttl: std::time::Duration,
    /// The queue's name.
    pub(crate) queue: &'a str,
    /// The job id.
    pub(crate) jid: &'a str,
    /// The job's JSON.
    pub(crate) json: &'a [u8],
    /// The status record's fields, or `None` for an untracked job.
    pub(crate) status: Option<&'a [(&'static str, &'a str)]>,
    /// The caller chose the id, so a record may already exist.
    pub(crate) given_id: bool,
    /// When it runs: `None` now.
    pub(crate) run_at: Option<RunAt>,
}

/// What `enqueue_unique.lua` did with a unique job (see `Client::push`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UniqueEnqueued {
    /// The key was free: the job was pushed and holds it.
    Pushed,
    /// Another job holds the key: nothing was written; this is its id.
    Duplicate(JobId),
    /// The job's own id already had a status record (an enqueue sent twice): nothing written.
    Known,
}

/// Takes `job`'s uniqueness key and pushes it, in one script call.
pub(crate) async fn enqueue_unique(
    client: &Client,
    job: &EnqueueUnique<'_>,
) -> Result<UniqueEnqueued> {
    let keys = client.keys();
    let fields = job.status.unwrap_or_default();
    let mode = match (job.status.is_some(), job.given_id) {
        (false, _) => "0",
        (true, true) => "1",
        (true, false) => "2",
    };
    let (when, value) = match job.run_at {
        None => ("now", String::new()),
        Some(RunAt::At(t)) => ("at", secs_str(Timestamp::from_system_time(t))),
        Some(RunAt::Delay(d)) => ("in", d.as_millis().to_string()),
    };
    let ttl_ms = u64::try_from(job.ttl.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut cmd = ENQUEUE_UNIQUE.evalsha(5, 14 + 2 * fields.len(), job.json.len() + 512);
    cmd.arg(keys.unique(job.key))
        .arg(keys.queue(job.queue))
        .arg(keys.queues())
        .arg(keys.schedule())
        .arg(keys.status(job.jid))
        .arg(job.jid)
        .arg(ttl_ms)
        .arg(job.queue)
        .arg(job.json)
        .arg(mode)
        .arg(client.config().status_retention.active.as_secs())
        .arg(keys.wake_channel())
        .arg(when)
        .arg(value);
    for (f, v) in fields {
        cmd.arg(*f).arg(*v);
    }
    let reply: redis::Value = ENQUEUE_UNIQUE.call_cmd(client, cmd).await?;
    if let Some(e) = ENQUEUE_UNIQUE.wrong_type(&reply) {
        return Err(e);
    }
    let redis::Value::Array(items) = &reply else {
        return Err(ENQUEUE_UNIQUE.unexpected(reply));
    };
    match items.as_slice() {
        [redis::Value::Int(1), _] => Ok(UniqueEnqueued::Pushed),
        [redis::Value::Int(0), _] => Ok(UniqueEnqueued::Known),
        [redis::Value::Int(2), redis::Value::BulkString(holder)] => Ok(UniqueEnqueued::Duplicate(
            JobId::from_stored(String::from_utf8_lossy(holder).into_owned()),
        )),
        _ => Err(ENQUEUE_UNIQUE.unexpected(reply)),
    }
}
