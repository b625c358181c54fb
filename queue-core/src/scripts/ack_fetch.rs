//! `ack_fetch.lua`: the worker's one round trip per cycle. Finishes the jobs that succeeded,
//! then takes the next ones into the processing list.
//!
//! The jobs taken are marked running by [`start`](super::start) once the worker has read
//! their ids, because a script may touch only the keys it is given.

use crate::client::Client;
use crate::error::Result;
use crate::finished_store;
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
    /// How long its finished record is kept ([`Job::STATUS_RETENTION`](crate::Job::STATUS_RETENTION),
    /// else [`StatusRetention::finished`](crate::status::StatusRetention::finished));
    /// zero drops the record at once.
    pub retention: std::time::Duration,
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

/// The fetch half of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The jobs taken (possibly none), oldest first, exactly as they sit in the processing
    /// list.
    Jobs(Vec<Vec<u8>>),
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
        .key(keys.stat_processed_on(&utc_day(now)))
        .key(keys.finished_keeps());
    let spots: Vec<finished_store::Spot> = call
        .acks
        .iter()
        .map(|a| finished_store::spot(keys, a.jid, a.retention.as_secs(), now))
        .collect();
    for (a, spot) in call.acks.iter().zip(&spots) {
        inv.key(keys.status(a.jid)).key(&spot.key);
    }
    if call.want > 0 {
        for q in call.queues {
            inv.key(keys.queue(q));
        }
    }
    let pack_limit = if client.config().packed_finished_records {
        finished_store::LISTPACK_VALUE_LIMIT
    } else {
        0
    };
    inv.arg(call.acks.len())
        .arg(call.want)
        .arg(call.lease_ttl.as_millis() as u64)
        .arg(format!("{now:.6}"))
        .arg(pack_limit)
        .arg(DAILY_STAT_TTL_SECS)
        .arg(client.keys().status_channel());
    for (a, spot) in call.acks.iter().zip(&spots) {
        inv.arg(a.raw)
            .arg(match a.tracking {
                AckTracking::Untracked => "0",
                AckTracking::Tracked => "1",
                AckTracking::TrackedAfterRetry => "2",
            })
            .arg(a.result.unwrap_or("-"))
            .arg(a.jid)
            .arg(a.retention.as_secs().min(finished_store::MAX_KEEP_SECS))
            .arg(spot.expire_at)
            .arg(spot.clock_tolerance);
    }
    let reply: redis::Value = ACK_FETCH.call(client, inv).await?;
    parse(reply, call.acks.len())
}

fn parse(reply: redis::Value, acks: usize) -> Result<AckFetched> {
    use redis::Value;
    if let Some(e) = ACK_FETCH.wrong_type(&reply) {
        return Err(e);
    }
    let Value::Array(reply) = reply else {
        return Err(ACK_FETCH.unexpected(reply));
    };
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
    let mut jobs = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::BulkString(raw) => jobs.push(raw),
            // The script returns only jobs here; anything else is not one, so nothing to hold.
            other => {
                tracing::error!(reply = ?other, "ack_fetch.lua returned a job that is not a string")
            }
        }
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
    fn replies_map_to_acks_and_jobs() {
        let reply = vec![
            Value::Int(1),
            Value::Int(1),
            Value::Int(0),
            Value::BulkString(b"a".to_vec()),
            Value::BulkString(b"b".to_vec()),
        ];
        let got = parse(Value::Array(reply), 2).unwrap();
        assert_eq!(got.acked, [true, false]);
        assert_eq!(got.taken, Taken::Jobs(vec![b"a".to_vec(), b"b".to_vec()]));
        let lost = parse(Value::Array(vec![Value::Int(0), Value::Int(1)]), 1).unwrap();
        assert_eq!((lost.acked, lost.taken), (vec![true], Taken::LeaseLost));
        assert!(parse(Value::Array(vec![Value::Int(1)]), 1).is_err());
        assert!(parse(Value::Array(vec![Value::Nil]), 0).is_err());
        let wrong = Value::Array(vec![Value::Int(-1), Value::BulkString(b"k".to_vec())]);
        assert!(matches!(
            parse(wrong, 0),
            Err(crate::Error::WrongType { .. })
        ));
    }
}
