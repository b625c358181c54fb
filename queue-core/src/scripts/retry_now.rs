//! `retry_now.lua`: an operator sends members of the schedule, retry or dead set to their
//! queues at once.

use crate::client::{Client, secs_str};
use crate::error::Result;
use crate::inspect::JobSet;
use crate::payload::JobPayload;
use crate::scripts::promote::with_enqueued_at;
use crate::scripts::{Acted, lua};
use crate::timestamp::Timestamp;

lua!(RETRY_NOW, "retry_now.lua");

/// Sends each of `members` (exact members of `set`) to its queue now, with `enqueued_at` =
/// `now` (Redis's clock) where the job has none. One code per member, in order; a member
/// that is not job JSON has no queue to go to and is left where it is ([`Acted::NotAJob`]).
pub async fn retry_now(
    client: &Client,
    set: JobSet,
    members: &[&[u8]],
    now: Timestamp,
) -> Result<Vec<Acted>> {
    let keys = client.keys();
    let now = secs_str(now);
    let mut out = vec![Acted::NotAJob; members.len()];
    let mut sent = Vec::with_capacity(members.len());
    let mut inv = RETRY_NOW.invocation();
    inv.key(set.key(keys)).key(keys.queues());
    inv.arg(&now)
        .arg(keys.wake_channel())
        .arg(keys.status_channel())
        .arg(client.config().status_retention.active.as_secs());
    for (i, member) in members.iter().enumerate() {
        let Ok(job) = JobPayload::from_json(member) else {
            continue;
        };
        // As Sidekiq reads a job without a queue.
        let queue = if job.queue.is_empty() {
            "default".to_owned()
        } else {
            job.queue.clone()
        };
        inv.key(keys.queue(&queue))
            .key(keys.status(job.jid.as_str()));
        inv.arg(*member)
            .arg(with_enqueued_at(member, job.enqueued_at.is_some(), &now))
            .arg(queue);
        sent.push(i);
    }
    if sent.is_empty() {
        return Ok(out);
    }
    let reply: redis::Value = RETRY_NOW.call(client, inv).await?;
    let codes = RETRY_NOW.codes(reply, sent.len())?;
    for (i, code) in sent.into_iter().zip(codes) {
        out[i] = match code {
            1 => Acted::Done,
            0 => Acted::Gone,
            2 => Acted::Cancelled,
            -1 => Acted::Blocked,
            other => return Err(RETRY_NOW.unexpected(other)),
        };
    }
    Ok(out)
}
