//! The finished-record store: where a succeeded job's status record lives once it can no
//! longer change, packed into a field of a shared hash instead of a key of its own.
//!
//! # Why
//! A key costs Redis about 100 bytes before it holds anything (its name, its dictionary
//! entries, its expiry), which made a finished record cost 373 bytes, most of it the key.
//! A field of a small hash that Redis keeps as a listpack costs its bytes plus two or three:
//! a packed record of a no-op job costs about 90 bytes (`docs/benchmarks.md`, "Status
//! store"), so a 25 MB plan keeps a day's records of several hundred thousand jobs.
//!
//! # Layout
//! A record kept `keep` seconds that finished at `t` goes to
//! [`Keys::finished_shard`]`(keep, bucket, shard)`:
//! - `bucket` is `t` divided by the bucket width, [`bucket_width`] (`keep / 24`, at least a
//!   minute), so a day's records fill 24 buckets and Redis drops each bucket whole, with
//!   `EXPIREAT` at the bucket's end plus `keep`: no key per job, no sweeper, and nothing
//!   that needs `HEXPIRE` (Redis 7.4).
//! - `shard` is one of [`SHARDS`], picked from the job id ([`shard_of`]), so that a shard
//!   holds few enough records to stay a listpack (Redis's `hash-max-listpack-entries`, 512
//!   by default) up to about 260,000 records per bucket, 6 million per `keep` window. More
//!   shards cost little: a shard key's own ~100 bytes are shared by its records, and a
//!   bucket uses only as many shards as it has records.
//!
//! A record is kept at least `keep` and at most `keep` plus one bucket width. Readers find
//! it from the id alone: [`candidates`] lists the shards it can be in, newest first, for
//! every retention period that [`Keys::finished_keeps`] names (the packing script adds its
//! own there), and `status_read.lua` stops at the first that holds the id.
//!
//! # What is packed, and what is not
//! Only succeeded jobs' records, and only when every part fits: the packed value and the id
//! must each fit in [`LISTPACK_VALUE_LIMIT`] bytes (a longer one would turn the whole shard
//! into a hashtable, costing every record in it), and no text field but the result may
//! hold the separator `|`. A record that does not fit, a record of a job whose id the
//! caller chose (so that an enqueue with that id stays refused for as long as the record
//! lasts, which needs the record at its own key), a record acked by a worker whose clock is
//! off Redis's by more than half a bucket width (its shard, picked by that clock, would be
//! one no reader looks in), and the records of dead, cancelled and expired jobs stay in
//! their own hashes and expire as before. Readers look at the job's
//! own key first, so they find those, and records written before this store existed.
//!
//! # Format
//! `S|<rev>|<attempt>|<finished>|<started>|<enqueued>|<created>|<run at>|<queue>|<class>|<owner>|<message>|<result>`:
//! - `S` names both the format and the state (succeeded, so progress 100); another state or
//!   a later format would start with another letter;
//! - `finished` is epoch milliseconds;
//! - each other time is the milliseconds before the last time present before it in that
//!   order (empty: none), so a job that waited a week pays for the week once;
//! - the result is last and may hold `|`; the other text fields may not, nor be empty.
//!
//! The packing is done by `pack_finished` in `scripts/prelude.lua`; [`unpack`] reads it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::keys::Keys;
use crate::status::{JobState, JobStatus, Progress};

/// Shards per time bucket.
pub const SHARDS: u32 = 512;

/// The longest id or packed value a record may have to be packed: Redis's default
/// `hash-max-listpack-value`, past which a hash stops being a listpack.
pub const LISTPACK_VALUE_LIMIT: usize = 64;

/// The narrowest time bucket.
const MIN_BUCKET_SECS: u64 = 60;

/// Buckets per retention period.
const BUCKETS_PER_KEEP: u64 = 24;

/// The longest retention a record may ask for (ten years), as the other scripts bound it.
pub const MAX_KEEP_SECS: u64 = 315_360_000;

/// How long a reader trusts its copy of [`Keys::finished_keeps`] before it reads it again.
const KEEPS_FRESH_FOR: Duration = Duration::from_secs(30);

/// The width in seconds of the time buckets of records kept `keep_secs`.
///
/// ```
/// use queue_core::finished_store::bucket_width;
/// assert_eq!(bucket_width(86_400), 3_600);
/// assert_eq!(bucket_width(300), 60);
/// ```
pub fn bucket_width(keep_secs: u64) -> u64 {
    (keep_secs / BUCKETS_PER_KEEP).max(MIN_BUCKET_SECS)
}

/// The shard of job `jid`: FNV-1a of the id, so that every process, whatever its version
/// of Rust's hasher, picks the same.
///
/// ```
/// use queue_core::finished_store::{shard_of, SHARDS};
/// assert_eq!(shard_of("abc"), shard_of("abc"));
/// assert!(shard_of("abc") < SHARDS);
/// ```
pub fn shard_of(jid: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in jid.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % SHARDS
}

/// Where a record that finishes now goes, and until when that shard is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    /// The shard's key.
    pub key: String,
    /// Epoch seconds at which Redis drops the shard: its bucket's end plus the retention.
    pub expire_at: u64,
    /// The most a packing process's clock may be off Redis's for the record to go here:
    /// half a bucket width, past which readers, who look around Redis's time, might miss it.
    pub clock_tolerance: u64,
}

/// The spot of job `jid`'s record, kept `keep_secs` (at least 1, at most
/// [`MAX_KEEP_SECS`]), finished at `finished_secs` (epoch seconds).
pub fn spot(keys: &Keys, jid: &str, keep_secs: u64, finished_secs: f64) -> Spot {
    let keep = keep_secs.clamp(1, MAX_KEEP_SECS);
    let width = bucket_width(keep);
    let bucket = finished_secs.max(0.0) as u64 / width;
    Spot {
        key: keys.finished_shard(keep, bucket, shard_of(jid)),
        expire_at: (bucket + 1) * width + keep,
        clock_tolerance: width / 2,
    }
}

/// Every shard job `jid`'s record can be in at `now_secs`, for records kept any of `keeps`
/// seconds, the newest buckets first: from one bucket ahead (a packing process whose clock
/// runs ahead) back to the oldest bucket Redis may still hold.
///
/// ```
/// use queue_core::finished_store::{candidates, spot};
/// use queue_core::keys::Keys;
/// let keys = Keys::new("{app}:");
/// let written = spot(&keys, "j1", 86_400, 1_000_000.0);
/// let found = candidates(&keys, "j1", &[86_400], 1_000_000.0 + 80_000.0);
/// assert!(found.contains(&written.key));
/// assert!(!candidates(&keys, "j1", &[86_400], 1_000_000.0 + 95_000.0).contains(&written.key));
/// ```
pub fn candidates(keys: &Keys, jid: &str, keeps: &[u64], now_secs: f64) -> Vec<String> {
    let shard = shard_of(jid);
    let now = now_secs.max(0.0) as u64;
    let mut found: Vec<(u64, String)> = Vec::new();
    for &keep in keeps {
        let keep = keep.clamp(1, MAX_KEEP_SECS);
        let width = bucket_width(keep);
        let newest = now / width + 1;
        // A bucket is dropped at its end plus `keep`: the oldest still held ends after
        // `now - keep`.
        let oldest = now.saturating_sub(keep) / width;
        for bucket in (oldest..=newest).rev() {
            found.push((bucket * width, keys.finished_shard(keep, bucket, shard)));
        }
    }
    // Newest first across retention periods too: most reads are of jobs that just finished.
    found.sort_by_key(|(start, _)| std::cmp::Reverse(*start));
    found.into_iter().map(|(_, key)| key).collect()
}

/// The separator of the packed fields.
const SEP: char = '|';

/// Reads a packed record ([format](self#format)); `None` when it is not one this
/// version knows (a crafted or damaged value reads as no record, like a damaged hash).
///
/// ```
/// use queue_core::finished_store::unpack;
/// use queue_core::JobState;
/// // Finished at 1764650000123 ms, started 20 ms before, enqueued 1 s before that, created
/// // when enqueued.
/// let status = unpack("S|3|1|1764650000123|20|1000|0||default|Report||done|{\"rows\":2}").unwrap();
/// assert_eq!(status.state, JobState::Succeeded);
/// assert_eq!((status.rev, status.attempt, status.progress.percent), (3, 1, 100));
/// assert_eq!(status.finished_at, Some(1_764_650_000.123));
/// assert_eq!(status.started_at, Some(1_764_650_000.103));
/// assert_eq!(status.enqueued_at, Some(1_764_649_999.103));
/// assert_eq!(status.created_at, status.enqueued_at);
/// assert_eq!(status.run_at, None);
/// assert_eq!(status.progress.message.as_deref(), Some("done"));
/// assert_eq!(status.result, Some(serde_json::json!({"rows": 2})));
/// assert!(unpack("T|3").is_none());
/// ```
pub fn unpack(packed: &str) -> Option<JobStatus> {
    let mut parts = packed.splitn(13, SEP);
    let mut next = || parts.next();
    let state = match next()? {
        "S" => JobState::Succeeded,
        _ => return None,
    };
    let rev = crate::status::read_rev(Some(next()?));
    let attempt = next()?.parse().unwrap_or(0);
    let finished_ms: i64 = next()?.parse().ok()?;
    // Each time is milliseconds before the last one present before it in the chain.
    let mut anchor = finished_ms;
    let mut before = || -> Option<Option<f64>> {
        let delta = next()?;
        Some(delta.parse::<i64>().ok().map(|d| {
            anchor = anchor.saturating_sub(d);
            anchor as f64 / 1000.0
        }))
    };
    let started_at = before()?;
    let enqueued_at = before()?;
    let created_at = before()?;
    let run_at = before()?;
    let text = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let queue = text(next()?);
    let class = text(next()?);
    let owner = text(next()?);
    let message = text(next()?);
    let result = next()?;
    Some(JobStatus {
        state,
        queue,
        class,
        attempt,
        progress: Progress {
            percent: 100,
            message,
        },
        result: (!result.is_empty())
            .then(|| serde_json::from_str(result).ok())
            .flatten(),
        error: None,
        owner,
        created_at,
        enqueued_at,
        run_at,
        started_at,
        finished_at: Some(finished_ms as f64 / 1000.0),
        rev,
    })
}

/// A process's copy of each slot's [`Keys::finished_keeps`], shared by a client's clones.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeepsCache {
    read: Arc<Mutex<HashMap<String, ReadAt>>>,
}

/// When a slot's periods were read, and what they were.
type ReadAt = (Instant, Vec<u64>);

impl KeepsCache {
    /// The copy of `key` if it is fresh.
    pub(crate) fn fresh(&self, key: &str) -> Option<Vec<u64>> {
        let read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        read.get(key)
            .filter(|(at, _)| at.elapsed() < KEEPS_FRESH_FOR)
            .map(|(_, keeps)| keeps.clone())
    }

    /// Stores what was just read of `key`.
    pub(crate) fn store(&self, key: &str, keeps: Vec<u64>) {
        let mut read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        // Bounded by the number of queue slots; a crafted id names a queue that may not
        // exist, so the map is cleared rather than let grow.
        if read.len() >= 4096 {
            read.clear();
        }
        read.insert(key.to_owned(), (Instant::now(), keeps));
    }
}

/// The retention periods to look in: those `members` of [`Keys::finished_keeps`] that read
/// as a period, and `default_keep`, which the process's own workers use for every job type
/// that sets none (so that a deleted or damaged set cannot hide today's records).
pub(crate) fn keeps_from(members: &[String], default_keep: u64) -> Vec<u64> {
    let mut keeps: Vec<u64> = members
        .iter()
        .filter_map(|m| m.parse::<u64>().ok())
        .filter(|k| (1..=MAX_KEEP_SECS).contains(k))
        .collect();
    keeps.sort_unstable();
    keeps.dedup();
    // A set stuffed with periods would make every read probe thousands of keys.
    keeps.truncate(MAX_KEEPS - 1);
    let default_keep = default_keep.clamp(1, MAX_KEEP_SECS);
    if !keeps.contains(&default_keep) {
        keeps.push(default_keep);
    }
    keeps
}

/// Most retention periods a reader looks in.
const MAX_KEEPS: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_found_for_its_whole_retention_and_not_much_longer() {
        let keys = Keys::new("{app}:");
        for keep in [60, 300, 3_600, 86_400, 30 * 86_400] {
            let width = bucket_width(keep);
            for finished in [1_000_000.0, 1_000_000.0 + width as f64 - 0.5] {
                let at = spot(&keys, "job", keep, finished);
                assert!(at.expire_at as f64 >= finished + keep as f64);
                assert!(at.expire_at as f64 <= finished + (keep + width) as f64 + 1.0);
                for later in [0.0, keep as f64 / 2.0, keep as f64] {
                    let found = candidates(&keys, "job", &[keep], finished + later);
                    assert!(found.contains(&at.key), "keep {keep} at +{later}");
                }
                // A reader whose clock is a bucket behind the packer's still finds it.
                let found = candidates(&keys, "job", &[keep], finished - width as f64);
                assert!(found.contains(&at.key), "keep {keep}, reader behind");
                let gone = (at.expire_at + width + 1) as f64;
                assert!(!candidates(&keys, "job", &[keep], gone).contains(&at.key));
            }
        }
    }

    #[test]
    fn candidates_are_newest_first_across_periods() {
        let keys = Keys::new("");
        let found = candidates(&keys, "j", &[3_600, 86_400], 100_000.0);
        let starts: Vec<u64> = found
            .iter()
            .map(|k| {
                let mut parts = k.split(':').skip(1);
                let keep: u64 = parts.next().unwrap().parse().unwrap();
                let bucket: u64 = parts.next().unwrap().parse().unwrap();
                bucket * bucket_width(keep)
            })
            .collect();
        assert!(starts.windows(2).all(|w| w[0] >= w[1]));
        assert_eq!(found.len(), 26 + 26);
    }

    #[test]
    fn keeps_read_from_the_set_ignore_junk_and_always_hold_the_default() {
        let members = ["3600", "x", "0", "-5", "99999999999", "3600"].map(str::to_owned);
        assert_eq!(keeps_from(&members, 86_400), vec![3_600, 86_400]);
        let many: Vec<String> = (1..100).map(|k| k.to_string()).collect();
        let bounded = keeps_from(&many, 86_400);
        assert_eq!(bounded.len(), MAX_KEEPS);
        assert!(bounded.contains(&86_400));
    }

    #[test]
    fn damaged_values_read_as_no_record() {
        for bad in ["", "S", "S|1", "Q|1|1|5||||||||||", "S|1|1|!||||||||||"] {
            assert!(unpack(bad).is_none(), "{bad:?}");
        }
        let odd = unpack("S|x|y|5|!|||||||||not json").unwrap();
        assert_eq!((odd.rev, odd.attempt, odd.started_at), (1, 0, None));
        assert_eq!(odd.result, None);
    }
}
