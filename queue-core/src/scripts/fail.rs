//! `fail.lua`: a failed attempt moves its job from the processing list to the retry set or
//! the dead set, with its status record and Sidekiq's failure counters.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::{DAILY_STAT_TTL_SECS, flag, lua};
use crate::timestamp::{Timestamp, utc_day};

lua!(FAIL, "fail.lua");

/// Where a failed job goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailTo {
    /// The retry set, due after `delay` (measured by Redis's clock).
    Retry {
        /// How long until the next attempt.
        delay: Duration,
    },
    /// The dead set, trimmed by count and age.
    Dead,
}

/// One failed attempt.
#[derive(Debug, Clone, Copy)]
pub struct FailedAttempt<'a> {
    /// The identity whose processing list holds the job.
    pub identity: &'a str,
    /// The job exactly as it sits in the processing list.
    pub raw: &'a [u8],
    /// The job rewritten with Sidekiq's error fields, as it is stored.
    pub rewritten: &'a str,
    /// Its id, for its status key.
    pub jid: &'a str,
    /// Where it goes.
    pub to: FailTo,
    /// Whether it has a status record to update.
    pub tracked: bool,
    /// The error shown in the status record.
    pub error: &'a str,
    /// Added to Redis's clock (tests move time with it; 0 otherwise).
    pub clock_offset_ms: i64,
    /// Most jobs kept in the dead set.
    pub dead_max_jobs: u64,
    /// Oldest death kept in the dead set.
    pub dead_max_age: Duration,
}

/// What [`fail`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// In the retry set.
    Retrying,
    /// In the dead set.
    Dead,
    /// Not in the processing list any more (another worker owns it): nothing was written.
    NotOwned,
    /// Its status record says cancelled: the job was dropped and the record left cancelled,
    /// so that it does not run again.
    Cancelled,
}

/// Records `attempt`. [`Error::WrongType`](crate::Error::WrongType) when the retry or dead
/// set it goes to holds another type: nothing was written, the job is still held.
pub async fn fail(client: &Client, attempt: &FailedAttempt<'_>) -> Result<Failed> {
    let keys = client.keys();
    let day = utc_day(Timestamp::now().as_secs_f64());
    let retention = client.config().status_retention;
    let (to, delay) = match attempt.to {
        FailTo::Retry { delay } => ("retry", delay.as_secs_f64()),
        FailTo::Dead => ("dead", 0.0),
    };
    let mut inv = FAIL.invocation();
    inv.key(keys.processing(attempt.identity))
        .key(keys.retry())
        .key(keys.dead())
        .key(keys.status(attempt.jid))
        .key(keys.stat_processed())
        .key(keys.stat_failed())
        .key(keys.stat_processed_on(&day))
        .key(keys.stat_failed_on(&day))
        .arg(attempt.raw)
        .arg(attempt.rewritten)
        .arg(to)
        .arg(format!("{delay:.3}"))
        .arg(attempt.clock_offset_ms)
        .arg(flag(attempt.tracked))
        .arg(attempt.error)
        .arg(retention.active.as_secs())
        .arg(retention.finished.as_secs())
        .arg(attempt.dead_max_jobs)
        .arg(attempt.dead_max_age.as_secs())
        .arg(DAILY_STAT_TTL_SECS)
        .arg(client.keys().status_channel());
    // The score of the retry or death (a string) when moved, 0 when not owned, 2 cancelled.
    let reply = FAIL.call::<redis::Value>(client, inv).await?;
    if let Some(e) = FAIL.wrong_type(&reply) {
        return Err(e);
    }
    match reply {
        redis::Value::Int(0) => Ok(Failed::NotOwned),
        redis::Value::Int(2) => Ok(Failed::Cancelled),
        redis::Value::BulkString(_) | redis::Value::SimpleString(_) => Ok(match attempt.to {
            FailTo::Retry { .. } => Failed::Retrying,
            FailTo::Dead => Failed::Dead,
        }),
        other => Err(FAIL.unexpected(other)),
    }
}
