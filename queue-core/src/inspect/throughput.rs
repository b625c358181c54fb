//! Jobs processed and failed per minute over the last hour or two, for the dashboard's chart.

use super::Inspector;
use crate::error::Result;
use crate::timestamp::Timestamp;

/// Most minutes one read covers: the counters live two hours.
pub const MAX_THROUGHPUT_MINUTES: u32 = 120;

/// An `HMGET processed failed` reply, as bytes: a damaged field must not fail the others.
type Counts = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The counts of one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteStats {
    /// The start of the minute.
    pub minute: Timestamp,
    /// Jobs that finished in it, failed ones included (0 when nothing was counted).
    pub processed: u64,
    /// Jobs that failed in it.
    pub failed: u64,
}

impl Inspector<'_> {
    /// Processed and failed counts of the last `minutes` minutes by Redis's clock (capped at
    /// [`MAX_THROUGHPUT_MINUTES`]), oldest first, the current minute last. Workers add
    /// their counts on each heartbeat, so the current minute lags by up to one beat.
    /// One round trip: `TIME`, then one pipeline of `HMGET`s.
    pub async fn recent_throughput(&self, minutes: u32) -> Result<Vec<MinuteStats>> {
        if self.spread() {
            return self.spread_throughput(minutes).await;
        }
        let minutes = minutes.min(MAX_THROUGHPUT_MINUTES);
        if minutes == 0 {
            return Ok(Vec::new());
        }
        let now = self.redis_now().await?.as_secs_f64().max(0.0) as u64 / 60;
        let first = now.saturating_sub(u64::from(minutes) - 1);
        let keys = self.client.keys();
        let mut pipe = redis::pipe();
        // A key of another type must not fail the others: it reads as no counts.
        pipe.ignore_errors();
        for minute in first..=now {
            pipe.cmd("HMGET")
                .arg(keys.stat_minute(minute))
                .arg("processed")
                .arg("failed");
        }
        let replies: Vec<redis::RedisResult<Counts>> = self.query(&pipe).await?;
        let count = |v: Option<Vec<u8>>| {
            v.and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
                .unwrap_or(0)
        };
        Ok((first..=now)
            .zip(replies)
            .map(|(minute, reply)| {
                let (processed, failed) = reply.unwrap_or((None, None));
                MinuteStats {
                    minute: Timestamp::from_secs_f64((minute * 60) as f64),
                    processed: count(processed),
                    failed: count(failed),
                }
            })
            .collect())
    }
}
