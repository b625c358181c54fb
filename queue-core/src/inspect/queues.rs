//! Queues: names, sizes, latency (`Sidekiq::Queue`) and paged listing.

use redis::Value;
use serde::Deserialize;
use std::time::Duration;

use super::{Entry, Inspector, Listing, Page, count, redis_time};
use crate::error::Result;
use crate::timestamp::Timestamp;

/// Size and latency of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueInfo {
    /// Queue name (without the `queue:` key prefix).
    pub name: String,
    /// Jobs waiting (`LLEN`).
    pub size: u64,
    /// Time since the oldest waiting job entered the queue, by Redis's clock: its
    /// `enqueued_at`, else `created_at` (Sidekiq 6's `Queue#latency` has no such fallback),
    /// in either Sidekiq unit. Zero when the queue is empty, when the oldest entry has
    /// neither timestamp or is not JSON, and when it is stamped in the future.
    pub latency: Duration,
}

/// The two timestamps latency is computed from; everything else in the job is skipped.
#[derive(Deserialize)]
struct EnqueueTimes {
    enqueued_at: Option<Timestamp>,
    created_at: Option<Timestamp>,
}

/// Time from the job in `raw` entering its queue until `now`: `enqueued_at`, else
/// `created_at`, in either Sidekiq unit ([`Timestamp`]). Zero when the job has neither, is
/// not JSON, or is stamped after `now` (the enqueuer's clock ran ahead).
///
/// Sidekiq 6 falls back to "now" (latency 0) without `enqueued_at`; a job pushed without it
/// has still waited since it was created, so `created_at` is the better answer.
pub(super) fn latency_of(raw: &[u8], now: Timestamp) -> Duration {
    match serde_json::from_slice::<EnqueueTimes>(raw) {
        Ok(t) => t.enqueued_at.or(t.created_at).map_or(Duration::ZERO, |at| {
            Duration::try_from_secs_f64(now.as_secs_f64() - at.as_secs_f64())
                .unwrap_or(Duration::ZERO)
        }),
        Err(e) => {
            tracing::debug!(error = %e, "oldest job has no readable timestamps; latency 0");
            Duration::ZERO
        }
    }
}

/// Adds the two commands [`queue_info`] reads: `LLEN` and `LINDEX -1` (the oldest job,
/// since jobs are pushed on the left). Both are O(1) in the queue's length.
pub(super) fn add_queue_commands(pipe: &mut redis::Pipeline, key: &str) {
    pipe.cmd("LLEN").arg(key);
    pipe.cmd("LINDEX").arg(key).arg(-1);
}

/// Reads the replies of [`add_queue_commands`].
pub(super) fn queue_info(
    name: String,
    key: &str,
    replies: &[Value],
    now: Timestamp,
) -> Result<QueueInfo> {
    let size = match replies.first() {
        // A key of another type (written by something else) must not fail every page that
        // lists queues: it reads as empty.
        Some(Value::ServerError(e)) => {
            tracing::warn!(key, error = ?e, "a queue key is not a list; read as empty");
            0
        }
        Some(v) => count(v, key)?,
        None => 0,
    };
    let latency = match replies.get(1) {
        Some(Value::BulkString(raw)) => latency_of(raw, now),
        _ => Duration::ZERO,
    };
    Ok(QueueInfo {
        name,
        size,
        latency,
    })
}

/// Decodes a set of names, leaving out (and logging) any that is not UTF-8: keys are built
/// from `&str`, so such a name could not be read anyway.
pub(super) fn names(raw: Vec<Vec<u8>>, set: &str) -> Vec<String> {
    let mut names: Vec<String> = raw
        .into_iter()
        .filter_map(|n| match String::from_utf8(n) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(set, name = ?e.as_bytes(), "skipping a name that is not UTF-8");
                None
            }
        })
        .collect();
    names.sort_unstable();
    names
}

impl Inspector<'_> {
    /// Every queue of the `queues` set, sorted by name, with its size and latency, like
    /// `Sidekiq::Queue.all` with `#size` and `#latency`.
    ///
    /// Two round trips: `TIME` + `SMEMBERS queues`, then `LLEN` + `LINDEX -1` per queue. A
    /// queue key of another type reads as an empty queue.
    ///
    /// When queues are spread over a cluster's slots, the names come from the app's own
    /// `queues` set (each client adds a queue there at its first push to it, and each worker
    /// its queues at start), and each queue is read in its slot, concurrently.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>> {
        if self.spread() {
            return self.spread_queues().await;
        }
        let keys = self.client.keys();
        let mut pipe = redis::pipe();
        pipe.cmd("TIME").cmd("SMEMBERS").arg(keys.queues());
        let (time, raw): ((u64, u64), Vec<Vec<u8>>) = self.query(&pipe).await?;
        let now = redis_time(time);
        let names = names(raw, "queues");
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        // One queue key of another type must not fail the others (see `queue_info`).
        pipe.ignore_errors();
        for name in &names {
            add_queue_commands(&mut pipe, &keys.queue(name));
        }
        let replies: Vec<Value> = self.query(&pipe).await?;
        names
            .into_iter()
            .zip(replies.chunks(2))
            .map(|(name, pair)| {
                let key = keys.queue(&name);
                queue_info(name, &key, pair, now)
            })
            .collect()
    }

    /// [`Inspector::queues`] when queues are spread.
    async fn spread_queues(&self) -> Result<Vec<QueueInfo>> {
        let names = self.spread_queue_names().await?;
        futures_util::future::try_join_all(names.iter().map(|name| self.queue(name))).await
    }

    /// Size and latency of queue `name` (zero and zero when it does not exist), in one round
    /// trip: `TIME`, `LLEN`, `LINDEX -1`.
    pub async fn queue(&self, name: &str) -> Result<QueueInfo> {
        let key = self.client.for_queue(name).keys().queue(name);
        let mut pipe = redis::pipe();
        pipe.cmd("TIME");
        add_queue_commands(&mut pipe, &key);
        let mut replies: Vec<Value> = self.query(&pipe).await?;
        let rest = replies.split_off(1.min(replies.len()));
        let time = match replies.first() {
            Some(v) => super::parse(v, "TIME")?,
            None => return Err(super::unexpected("TIME", &replies)),
        };
        queue_info(name.to_owned(), &key, &rest, redis_time(time))
    }

    /// One page of queue `name`, newest job first, as `Sidekiq::Queue#each` walks it (from
    /// the head of the list), with the queue's size. One round trip (`LLEN`, `LRANGE`),
    /// O(start + page size).
    pub async fn queue_page(&self, name: &str, page: Page) -> Result<Listing<Entry>> {
        self.list_page(&self.client.for_queue(name).keys().queue(name), page)
            .await
    }

    /// A page of the list at `key`, from its head, with its length.
    pub(super) async fn list_page(&self, key: &str, page: Page) -> Result<Listing<Entry>> {
        let mut pipe = redis::pipe();
        // Not MULTI, which Redis refuses at maxmemory even for reads (see `set_page`).
        pipe.cmd("LLEN")
            .arg(key)
            .cmd("LRANGE")
            .arg(key)
            .arg(page.start())
            .arg(page.stop());
        let (total, raw): (u64, Vec<Vec<u8>>) = self.query(&pipe).await?;
        Ok(Listing {
            items: raw.into_iter().map(Entry::parse).collect(),
            total,
            page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_reads_both_sidekiq_units_and_prefers_enqueued_at() {
        let now = Timestamp::from_secs_f64(1_760_000_010.0);
        let secs = br#"{"class":"X","args":[],"jid":"a","created_at":1760000000.0,"enqueued_at":1760000005.0}"#;
        assert_eq!(latency_of(secs, now), Duration::from_secs(5));
        let millis = br#"{"class":"X","args":[],"jid":"a","created_at":1760000000000}"#;
        assert_eq!(latency_of(millis, now), Duration::from_secs(10));
        assert_eq!(latency_of(b"not json", now), Duration::ZERO);
        let future = br#"{"enqueued_at":1760000020.0}"#;
        assert_eq!(latency_of(future, now), Duration::ZERO);
        assert_eq!(latency_of(br#"{"class":"X"}"#, now), Duration::ZERO);
    }

    #[test]
    fn names_are_sorted_and_non_utf8_names_skipped() {
        let raw = vec![b"b".to_vec(), vec![0xff, 0xfe], b"a".to_vec()];
        assert_eq!(names(raw, "queues"), ["a", "b"]);
    }
}
