//! `enqueue.lua`: one job due now onto its queue, idempotently on a caller-given id.

use crate::client::Client;
use crate::error::Result;
use crate::scripts::lua;

lua!(ENQUEUE, "enqueue.lua");

/// One job due now, encoded.
pub(crate) struct Enqueue<'a> {
    /// The queue's name.
    pub(crate) queue: &'a str,
    /// The job id, for its status key.
    pub(crate) jid: &'a str,
    /// The job's JSON.
    pub(crate) json: &'a [u8],
    /// The status record's fields, or `None` for an untracked job.
    pub(crate) status: Option<&'a [(&'static str, &'a str)]>,
    /// The caller chose the id, so a record may already exist (checked with `EXISTS`).
    pub(crate) given_id: bool,
}

/// Pushes `job`; true when it was written, false when its id already had a status record.
pub(crate) async fn enqueue(client: &Client, job: &Enqueue<'_>) -> Result<bool> {
    let keys = client.keys();
    let fields = job.status.unwrap_or_default();
    let tracked = job.status.is_some();
    let mode = match (tracked, job.given_id) {
        (false, _) => "0",
        (true, true) => "1",
        (true, false) => "2",
    };
    let mut cmd = ENQUEUE.evalsha(
        if tracked { 3 } else { 2 },
        8 + 2 * fields.len(),
        job.json.len() + 256,
    );
    cmd.arg(keys.queue(job.queue)).arg(keys.queues());
    if tracked {
        cmd.arg(keys.status(job.jid));
    }
    cmd.arg(job.queue)
        .arg(job.json)
        .arg(mode)
        .arg(client.config().status_retention.active.as_secs())
        .arg(keys.wake_channel());
    for (f, v) in fields {
        cmd.arg(*f).arg(*v);
    }
    match ENQUEUE.int(ENQUEUE.call_cmd(client, cmd).await?)? {
        1 => Ok(true),
        0 => Ok(false),
        other => Err(ENQUEUE.unexpected(other)),
    }
}
