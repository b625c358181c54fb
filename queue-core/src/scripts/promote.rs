//! `promote.lua`: due jobs of the schedule or retry set move into their queues.
//!
//! Two calls, because a script may touch only the keys it is given: [`due`](super::due)
//! reads which members are due by Redis's clock; this process reads each one's queue and id,
//! and `promote.lua` then moves them, checking that each is still in the set.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::malformed::{MALFORMED_ERROR_CLASS, malformed_wrapper};
use crate::payload::JobPayload;
use crate::scripts::due::{PromoteFrom, due};
use crate::scripts::{flag, lua};
use crate::timestamp::Timestamp;

lua!(PROMOTE, "promote.lua");

/// What one [`promote`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promoted {
    /// Members taken out of the set (queued, dropped as cancelled, or buried as malformed).
    pub moved: usize,
    /// Due members left in the set because where they go holds a key of another type.
    pub stuck: usize,
    /// How long until the next member is due; `None` when the set is empty.
    pub next_due: Option<Duration>,
}

/// Where one due member goes.
enum Destination {
    /// Its queue, written with `enqueued_at`.
    Queue {
        payload: Vec<u8>,
        queue: String,
        jid: String,
    },
    /// The dead set, in this wrapper: it is not a job. `jid` is the entry's own id when one
    /// can be read: the wrapper keeps it, and its status record is marked dead.
    Dead {
        wrapper: String,
        jid: Option<String>,
        reason: String,
    },
}

/// Moves up to `batch` due members of `from` into their queues. `clock_offset_ms` is added to
/// Redis's clock (tests move time with it; 0 otherwise).
pub async fn promote(
    client: &Client,
    from: PromoteFrom,
    batch: usize,
    clock_offset_ms: i64,
) -> Result<Promoted> {
    let due = due(client, from, batch, clock_offset_ms).await?;
    if due.members.is_empty() {
        return Ok(Promoted {
            moved: 0,
            stuck: 0,
            next_due: due.next_due,
        });
    }
    let keys = client.keys();
    let mut inv = PROMOTE.invocation();
    inv.key(from.key(keys)).key(keys.queues());
    inv.arg(&due.now)
        .arg(clock_offset_ms)
        .arg(keys.wake_channel())
        .arg(client.config().status_retention.finished.as_secs())
        .arg(keys.status_channel());
    for member in &due.members {
        match destination(member, &due.now)? {
            Destination::Queue {
                payload,
                queue,
                jid,
            } => {
                inv.key(keys.queue(&queue)).key(keys.status(&jid));
                inv.arg(member.as_slice())
                    .arg(payload)
                    .arg(queue)
                    .arg(flag(true))
                    .arg("");
            }
            Destination::Dead {
                wrapper,
                jid,
                reason,
            } => {
                tracing::error!(set = ?from, job_id = jid.as_deref().unwrap_or(""), %reason,
                    "malformed entry in a sorted set; burying it in the dead set");
                let status = jid
                    .as_deref()
                    .map_or_else(|| keys.dead(), |j| keys.status(j));
                inv.key(keys.dead()).key(status);
                inv.arg(member.as_slice())
                    .arg(wrapper)
                    .arg("")
                    .arg(flag(jid.is_some()))
                    .arg(format!("{MALFORMED_ERROR_CLASS}: {reason}"));
            }
        }
    }
    let (moved, wait_ms, stuck): (i64, i64, i64) = PROMOTE.call(client, inv).await?;
    let count =
        |n: i64| usize::try_from(n).map_err(|_| PROMOTE.unexpected((moved, wait_ms, stuck)));
    Ok(Promoted {
        moved: count(moved)?,
        stuck: count(stuck)?,
        next_due: u64::try_from(wait_ms).ok().map(Duration::from_millis),
    })
}

/// Reads `member` as a job, or as something to bury.
fn destination(member: &[u8], now: &str) -> Result<Destination> {
    match JobPayload::from_json(member) {
        Ok(job) => Ok(Destination::Queue {
            payload: with_enqueued_at(member, job.enqueued_at.is_some(), now),
            // As Sidekiq reads a job without a queue.
            queue: if job.queue.is_empty() {
                "default".to_owned()
            } else {
                job.queue
            },
            jid: job.jid.to_string(),
        }),
        Err(e) => {
            let reason = format!("not valid job JSON in a sorted set: {e}");
            let jid = JobPayload::recover_jid(member);
            let mut wrapper = malformed_wrapper(member, &reason, Timestamp::now());
            if let Some(jid) = &jid {
                wrapper.jid = jid.clone();
            }
            Ok(Destination::Dead {
                wrapper: wrapper.to_json()?,
                jid: jid.map(|j| j.to_string()),
                reason,
            })
        }
    }
}

/// The job as its queue gets it: with `enqueued_at`, added as text before the closing brace
/// when missing, so the rest of the JSON stays byte for byte what its writer wrote.
pub(crate) fn with_enqueued_at(member: &[u8], has_it: bool, now: &str) -> Vec<u8> {
    let close = member.iter().rposition(|&b| b == b'}');
    match close {
        Some(close) if !has_it => {
            let field = format!(",\"enqueued_at\":{now}");
            let mut out = Vec::with_capacity(member.len() + field.len());
            out.extend_from_slice(&member[..close]);
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(&member[close..]);
            out
        }
        _ => member.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::with_enqueued_at;

    #[test]
    fn enqueued_at_goes_before_the_closing_brace() {
        let got = with_enqueued_at(br#"{"jid":"a","args":[]} "#, false, "12.5");
        assert_eq!(got, br#"{"jid":"a","args":[],"enqueued_at":12.5} "#);
        let kept = br#"{"jid":"a","enqueued_at":1}"#;
        assert_eq!(with_enqueued_at(kept, true, "12.5"), kept);
    }
}
