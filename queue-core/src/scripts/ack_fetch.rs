//! `ack_fetch.lua`: the worker's one round trip per cycle. Finishes the jobs that succeeded,
//! then takes the next ones into the processing list and marks them running.
//!
//! The status hashes of the jobs taken are the only keys the script names itself (from the
//! status prefix): their ids are known only once the jobs are taken. Under a `{app}:` prefix
//! they share the hash slot of every other key, which is what Redis Cluster needs.

use crate::client::Client;
use crate::error::Result;
use crate::scripts::{DAILY_STAT_TTL_SECS, lua};
use crate::timestamp::{Timestamp, utc_day};

lua!(ACK_FETCH, "ack_fetch.lua");

/// How an acked job's status record is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckTracking {
    /// No status record.
    Untracked,
    /// A record; this was the first attempt.
    Tracked,
    /// A record; an earlier attempt failed, so its error is cleared.
    TrackedAfterRetry,
}

/// One job to finish: it succeeded, or it was cancelled before it started.
#[derive(Debug, Clone, Copy)]
pub struct Ack<'a> {
    /// The job exactly as it sits in the processing list.
    pub raw: &'a [u8],
    /// Its id, for its status key.
    pub jid: &'a str,
    /// How its status record is finished.
    pub tracking: AckTracking,
    /// Its result JSON (`""` for none), or `None` when it was cancelled and did not run.
    pub result: Option<&'a str>,
}

/// One call: acks out, up to `want` jobs in.
#[derive(Debug, Clone, Copy)]
pub struct AckFetch<'a> {
    /// The calling process's identity (its lease and processing list).
    pub identity: &'a str,
    /// Jobs to finish.
    pub acks: &'a [Ack<'a>],
    /// Most jobs to take (0: only ack).
    pub want: usize,
    /// Queue names, in the order to try them.
    pub queues: &'a [&'a str],
    /// The lease's lifetime, renewed by a call that takes jobs.
    pub lease_ttl: std::time::Duration,
    /// The time written as `finished_at` and `started_at`, and whose day the daily counter
    /// counts ([`Timestamp::now`] but in tests).
    pub now: Timestamp,
}

/// What the script says of a job it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Its status record now says `running`.
    Running,
    /// Its status record says `cancelled`: skip it and ack it.
    Cancelled,
    /// No status record (the caller creates one if the job type keeps status).
    NoRecord,
    /// Not a JSON object with a job id (the caller parses it, and buries it if it cannot).
    NotJob,
}

/// A job taken into the processing list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenJob {
    /// The job exactly as it sits in the processing list.
    pub raw: Vec<u8>,
    /// What the script made of its status record.
    pub mark: Mark,
}

/// The fetch half of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The jobs taken (possibly none), oldest first.
    Jobs(Vec<TakenJob>),
    /// The lease had expired: nothing was taken (the reaper may own the list already).
    /// The acks were still applied.
    LeaseLost,
}

/// The reply of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckFetched {
    /// Per ack: true when it landed; false when the job was no longer in the processing list
    /// (the reaper handed it to another worker, or an earlier call acked it already).
    pub acked: Vec<bool>,
    /// What was taken.
    pub taken: Taken,
}

/// Sends `call`.
///
/// At-least-once: if the reply is lost after Redis ran the script, the jobs it took sit in
/// the processing list, where the caller's audit finds them; acks may be sent again.
pub async fn ack_fetch(client: &Client, call: &AckFetch<'_>) -> Result<AckFetched> {
    let keys = client.keys();
    let now = call.now.as_secs_f64();
    let mut inv = ACK_FETCH.invocation();
    inv.key(keys.lease(call.identity))
        .key(keys.processing(call.identity))
        .key(keys.stat_processed())
        .key(keys.stat_processed_on(&utc_day(now)));
    for a in call.acks {
        inv.key(keys.status(a.jid));
    }
    if call.want > 0 {
        for q in call.queues {
            inv.key(keys.queue(q));
        }
    }
    inv.arg(call.acks.len())
        .arg(call.want)
        .arg(call.lease_ttl.as_millis() as u64)
        .arg(keys.status_prefix())
        .arg(format!("{now:.6}"))
        .arg(client.config().status_retention.finished.as_secs())
        .arg(DAILY_STAT_TTL_SECS);
    for a in call.acks {
        inv.arg(a.raw)
            .arg(match a.tracking {
                AckTracking::Untracked => "0",
                AckTracking::Tracked => "1",
                AckTracking::TrackedAfterRetry => "2",
            })
            .arg(a.result.unwrap_or("-"));
    }
    let reply: Vec<redis::Value> = ACK_FETCH.call(client, inv).await?;
    parse(reply, call.acks.len())
}

fn parse(reply: Vec<redis::Value>, acks: usize) -> Result<AckFetched> {
    use redis::Value;
    let mut items = reply.into_iter();
    let lease = match items.next() {
        Some(Value::Int(1)) => true,
        Some(Value::Int(0)) => false,
        other => return Err(ACK_FETCH.unexpected(other)),
    };
    let mut acked = Vec::with_capacity(acks);
    for _ in 0..acks {
        match items.next() {
            Some(Value::Int(flag)) => acked.push(flag == 1),
            other => return Err(ACK_FETCH.unexpected(("ack flag", other))),
        }
    }
    if !lease {
        return Ok(AckFetched {
            acked,
            taken: Taken::LeaseLost,
        });
    }
    let mut jobs = Vec::with_capacity(items.len() / 2);
    while let Some(item) = items.next() {
        let Value::BulkString(raw) = item else {
            // Not a job (the script only returns jobs and marks): nothing to hold.
            continue;
        };
        // A job without its mark is still taken: it is in the processing list, so it must be
        // handled (run or handed back), never dropped from memory.
        let mark = match items.next() {
            Some(Value::Int(1)) => Mark::Running,
            Some(Value::Int(0)) => Mark::Cancelled,
            Some(Value::Int(2)) => Mark::NoRecord,
            _ => Mark::NotJob,
        };
        jobs.push(TakenJob { raw, mark });
    }
    Ok(AckFetched {
        acked,
        taken: Taken::Jobs(jobs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    #[test]
    fn replies_map_to_acks_and_marks() {
        let reply = vec![
            Value::Int(1),
            Value::Int(1),
            Value::Int(0),
            Value::BulkString(b"a".to_vec()),
            Value::Int(1),
            Value::BulkString(b"b".to_vec()),
            Value::Int(3),
        ];
        let got = parse(reply, 2).unwrap();
        assert_eq!(got.acked, [true, false]);
        assert_eq!(
            got.taken,
            Taken::Jobs(vec![
                TakenJob {
                    raw: b"a".to_vec(),
                    mark: Mark::Running
                },
                TakenJob {
                    raw: b"b".to_vec(),
                    mark: Mark::NotJob
                },
            ])
        );
        let lost = parse(vec![Value::Int(0), Value::Int(1)], 1).unwrap();
        assert_eq!((lost.acked, lost.taken), (vec![true], Taken::LeaseLost));
        assert!(parse(vec![Value::Int(1)], 1).is_err());
        assert!(parse(vec![Value::Nil], 0).is_err());
    }
}
