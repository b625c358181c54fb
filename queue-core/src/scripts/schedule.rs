//! `schedule.lua`: one job into the schedule set, idempotently on a caller-given id.

use crate::client::{Client, secs_str};
use crate::error::Result;
use crate::options::RunAt;
use crate::scripts::{flag, lua};
use crate::timestamp::Timestamp;

lua!(SCHEDULE, "schedule.lua");

/// One job with a run time, encoded.
pub(crate) struct Schedule<'a> {
    /// The job id, for its status key.
    pub(crate) jid: &'a str,
    /// The job's JSON (without `enqueued_at`).
    pub(crate) json: &'a [u8],
    /// The status record's fields, or `None` for an untracked job.
    pub(crate) status: Option<&'a [(&'static str, &'a str)]>,
    /// When it runs: a time, or a delay measured by Redis's clock.
    pub(crate) run_at: RunAt,
}

/// Schedules `job`; true when it was written, false when its id already had a record.
pub(crate) async fn schedule(client: &Client, job: &Schedule<'_>) -> Result<bool> {
    let keys = client.keys();
    let fields = job.status.unwrap_or_default();
    let (at, delay_ms) = match job.run_at {
        RunAt::At(t) => (secs_str(Timestamp::from_system_time(t)), 0),
        RunAt::Delay(d) => (String::new(), d.as_millis()),
    };
    let mut cmd = SCHEDULE.evalsha(2, 7 + 2 * fields.len(), job.json.len() + 256);
    cmd.arg(keys.schedule())
        .arg(keys.status(job.jid))
        .arg(job.json)
        .arg(flag(job.status.is_some()))
        .arg(client.config().status_retention.active.as_secs())
        .arg(at)
        .arg(delay_ms.to_string());
    for (f, v) in fields {
        cmd.arg(*f).arg(*v);
    }
    // The run-at score as a string when written, 0 when the id was known.
    let reply = SCHEDULE.call_cmd::<redis::Value>(client, cmd).await?;
    if let Some(e) = SCHEDULE.wrong_type(&reply) {
        return Err(e);
    }
    match reply {
        redis::Value::Int(0) => Ok(false),
        redis::Value::BulkString(_) | redis::Value::SimpleString(_) => Ok(true),
        other => Err(SCHEDULE.unexpected(other)),
    }
}
