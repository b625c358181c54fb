//! Read-only inspection: queues, the schedule/retry/dead sets, processes, counters and
//! status revisions, the read side Sidekiq keeps in `api.rb` and asynq in its `Inspector`.
//!
//! ```no_run
//! use queue_core::Client;
//! use queue_core::inspect::{Inspector, JobSet, Page};
//!
//! # async fn run() -> queue_core::Result<()> {
//! let client = Client::from_env().await?;
//! let inspect = Inspector::new(&client);
//! for q in inspect.queues().await? {
//!     println!("{}: {} waiting, oldest {:?}", q.name, q.size, q.latency);
//! }
//! let dead = inspect.set_page(JobSet::Dead, Page::first()).await?;
//! for e in &dead.items {
//!     println!("died at {:?}: {:?}", e.at, e.entry.job().map(|j| &j.class));
//! }
//! # Ok(()) }
//! ```
//!
//! The readers write nothing. The operators' verbs ([`Inspector::retry_now`],
//! [`Inspector::kill`], [`Inspector::delete`], [`Inspector::retry_all`],
//! [`Inspector::clear`], [`Inspector::pause`], [`Inspector::resume`]) write only through the
//! scripts of [`crate::scripts`], which keep each job's status record true in the same step.
//! Every key comes from [`Keys`](crate::Keys), so a prefixed client inspects its own prefix,
//! and the empty prefix reads what Sidekiq's Ruby API reads.
//!
//! # Order
//! Listings follow Sidekiq's `each`: a queue ([`Inspector::queue_page`], like
//! `Sidekiq::Queue#each`) and an in-flight list ([`Inspector::in_flight`]) from the head of
//! the list, which is the **newest** job (jobs are pushed on the left and taken from the
//! right); a sorted set ([`Inspector::set_page`], like `Sidekiq::JobSet#each`) from the
//! **highest score**: the latest run time, retry time or time of death first. Each page is
//! one read: when the list changes between two pages, jobs may show twice or be skipped.
//!
//! Entries that are not job JSON do not fail a listing: they come back as
//! [`Entry::Malformed`] with their raw bytes.
//!
//! # Cost
//! | reader | round trips | Redis work |
//! |---|---|---|
//! | [`Inspector::stats`] | 2 | O(queues + processes): `TIME`, `SMEMBERS`, `GET`, `ZCARD`, then `LLEN` + `LINDEX -1` per queue, `HGET busy` per process |
//! | [`Inspector::totals`] | 1 | O(1) |
//! | [`Inspector::queues`] | 2 | O(queues) |
//! | [`Inspector::queue`] | 1 | O(1) |
//! | [`Inspector::queue_page`], [`Inspector::in_flight`] | 1 | O(offset + page size) (`LRANGE`) |
//! | [`Inspector::set_page`] | 1 | O(log n + page size) (`ZREVRANGE`) |
//! | [`Inspector::processes`] | 2 | O(processes) |
//! | [`Inspector::history`] | 1 | O(days) (two `MGET`s) |
//! | [`Inspector::periodic`] | 2 | O(entries) (`SMEMBERS`, `HGETALL` each) |
//! | [`Inspector::limiters`] | 2 | O(limiters × log n) (`HGETALL`, `ZCOUNT` each) |
//! | [`Inspector::status_revs`] | 1 per [`MAX_STATUS_PER_ROUND_TRIP`] ids | O(ids) |
//! | [`Inspector::find_job`] | many | O(every job): see its docs |
//! | [`Inspector::set_entry`] | 1 | O(log n + entries at that score) |
//! | [`Inspector::retry_now`], [`Inspector::kill`] | 2 (`TIME`, the script) | O(log n) |
//! | [`Inspector::delete`], [`Inspector::pause`], [`Inspector::resume`], [`Inspector::paused`] | 1 | O(log n) |
//! | [`Inspector::retry_all`], [`Inspector::clear`] | 2–3 per [`MANAGE_BATCH`] entries | O(n log n) in all, each call O([`MANAGE_BATCH`] log n) |
//!
//! Times (latency) are measured against Redis's clock (`TIME`, read in the same round
//! trip), the one clock every dyno shares.

mod entry;
mod find;
mod history;
mod limiters;
mod manage;
mod page;
mod periodic;
mod processes;
mod queues;
mod sets;
mod spread;
mod stats;
mod status;
mod throughput;

pub use crate::scripts::Acted;
pub use entry::{Entry, Malformed, ScoredEntry};
pub use find::{Found, Location};
pub use history::{DayStats, MAX_HISTORY_DAYS};
pub use limiters::LimiterInfo;
pub use manage::{BatchReport, MANAGE_BATCH};
pub use page::{DEFAULT_PAGE_SIZE, Listing, MAX_PAGE_SIZE, Page};
pub use periodic::PeriodicInfo;
pub use processes::{Info, ProcessInfo};
pub use queues::QueueInfo;
pub use sets::JobSet;
pub use stats::{Stats, Totals};
pub use status::{MAX_STATUS_PER_ROUND_TRIP, StatusRev};
pub use throughput::{MAX_THROUGHPUT_MINUTES, MinuteStats};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::timestamp::Timestamp;
use redis::Value;

/// Reads queues, sets, processes and counters through a [`Client`]'s shared connection;
/// every call is bounded by the client's timeout.
#[derive(Debug, Clone, Copy)]
pub struct Inspector<'c> {
    client: &'c Client,
    /// Reads only `client`'s own slot, even when queues are spread (`spread.rs` reads each
    /// slot through such an inspector).
    in_slot: bool,
}

impl<'c> Inspector<'c> {
    /// An inspector reading through `client` (and under its key prefix). When queues are
    /// spread over a cluster's slots, it reads the whole app: every queue's slot.
    pub fn new(client: &'c Client) -> Self {
        Self {
            client,
            in_slot: false,
        }
    }

    /// An inspector of `client`'s own slot only (see [`Client::for_queue`]).
    pub fn in_slot(client: &'c Client) -> Self {
        Self {
            client,
            in_slot: true,
        }
    }

    /// Whether this inspector reads every queue's slot and adds them up.
    fn spread(&self) -> bool {
        !self.in_slot && self.client.config().spread_queues
    }

    /// Redis's clock (`TIME`), the one every dyno shares.
    pub async fn redis_now(&self) -> Result<Timestamp> {
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        let (time,): ((u64, u64),) = self.query(&pipe).await?;
        Ok(redis_time(time))
    }

    /// A client aimed at each queue's slot, when queues are spread over a cluster's slots:
    /// the queues of the app's own `queues` set (see [`Client::note_queue`]), sorted.
    async fn queue_slots(&self) -> Result<Vec<Client>> {
        Ok(self
            .spread_queue_names()
            .await?
            .iter()
            .map(|queue| self.client.for_queue(queue).into_owned())
            .collect())
    }

    /// The names in the app's own `queues` set, sorted: where queues spread over a
    /// cluster's slots are listed (see [`Client::note_queue`]).
    async fn spread_queue_names(&self) -> Result<Vec<String>> {
        let mut pipe = redis::pipe();
        pipe.cmd("SMEMBERS").arg(self.client.keys().home().queues());
        let (raw,): (Vec<Vec<u8>>,) = self.query(&pipe).await?;
        Ok(queues::names(raw, "queues"))
    }

    /// Sends `pipe` on the shared connection under the client's timeout.
    async fn query<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Result<T> {
        let mut conn = self.client.connection();
        self.client.bounded(pipe.query_async(&mut conn)).await
    }
}

/// Redis's `TIME` reply (seconds, microseconds) as a timestamp.
fn redis_time((secs, micros): (u64, u64)) -> Timestamp {
    // Both fit an f64 exactly for any real clock (seconds < 2^53, micros < 10^6).
    Timestamp::from_secs_f64(secs as f64 + micros as f64 / 1e6)
}

/// A counter read with `GET`/`MGET`: nil is 0, anything but a non-negative integer is an error.
fn counter(value: &Value, key: &str) -> Result<u64> {
    redis::from_redis_value_ref::<Option<u64>>(value)
        .map(Option::unwrap_or_default)
        .map_err(|_| unexpected(key, value))
}

/// An integer reply (`LLEN`, `ZCARD`), which Redis never makes negative.
fn count(value: &Value, key: &str) -> Result<u64> {
    parse(value, key)
}

/// One reply of a pipeline as `T`; `key` names what was read, for the error.
fn parse<T: redis::FromRedisValue>(value: &Value, key: &str) -> Result<T> {
    redis::from_redis_value_ref(value).map_err(|_| unexpected(key, value))
}

/// The error for `value`, read at `key`, not being what the key should hold.
fn unexpected(key: &str, value: &impl std::fmt::Debug) -> Error {
    Error::UnexpectedValue {
        key: key.to_owned(),
        value: format!("{value:?}"),
    }
}

/// `a + b`, or an error naming `key` when the sum of values read from Redis overflows.
fn checked_sum(a: u64, b: u64, key: &str) -> Result<u64> {
    a.checked_add(b)
        .ok_or_else(|| unexpected(key, &format!("{a} + {b} overflows")))
}

/// Lenient integer field of a foreign hash (Sidekiq's `to_i`): missing or unreadable is 0.
fn lenient_u64(value: Option<&str>) -> u64 {
    value.and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_strict_and_nil_is_zero() {
        assert_eq!(counter(&Value::Nil, "k").unwrap(), 0);
        assert_eq!(
            counter(&Value::BulkString(b"12".to_vec()), "k").unwrap(),
            12
        );
        let err = counter(&Value::BulkString(b"-1".to_vec()), "stat:x").unwrap_err();
        assert!(
            matches!(&err, Error::UnexpectedValue { key, .. } if key == "stat:x"),
            "{err:?}"
        );
        assert!(counter(&Value::BulkString(b"abc".to_vec()), "k").is_err());
    }

    #[test]
    fn sums_are_checked() {
        assert_eq!(checked_sum(2, 3, "k").unwrap(), 5);
        assert!(checked_sum(u64::MAX, 1, "k").is_err());
    }

    #[test]
    fn lenient_fields_read_as_zero() {
        assert_eq!(lenient_u64(Some("7")), 7);
        assert_eq!(lenient_u64(Some("-7")), 0);
        assert_eq!(lenient_u64(Some("x")), 0);
        assert_eq!(lenient_u64(None), 0);
    }

    #[test]
    fn redis_time_keeps_microseconds() {
        let t = redis_time((1_760_000_000, 250_000));
        assert_eq!(t.as_secs_f64(), 1_760_000_000.25);
    }
}
