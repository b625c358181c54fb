//! The sorted sets of jobs: `schedule`, `retry` and `dead` (`Sidekiq::JobSet`).

use super::{Entry, Inspector, Listing, Page, ScoredEntry};
use crate::error::Result;
use crate::keys::Keys;
use crate::timestamp::Timestamp;

/// One of the sorted sets of jobs, each scored by a time (epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobSet {
    /// `schedule`: jobs waiting for their run time (`Sidekiq::ScheduledSet`).
    Schedule,
    /// `retry`: failed jobs waiting for their next attempt (`Sidekiq::RetrySet`).
    Retry,
    /// `dead`: jobs out of retries, scored by time of death (`Sidekiq::DeadSet`).
    Dead,
}

impl JobSet {
    /// All three, in the order jobs usually pass through them.
    pub const ALL: [JobSet; 3] = [JobSet::Schedule, JobSet::Retry, JobSet::Dead];

    /// The set's key.
    ///
    /// ```
    /// use queue_core::{Keys, inspect::JobSet};
    /// assert_eq!(JobSet::Dead.key(&Keys::new("{app}:")), "{app}:dead");
    /// ```
    pub fn key(self, keys: &Keys) -> String {
        match self {
            JobSet::Schedule => keys.schedule(),
            JobSet::Retry => keys.retry(),
            JobSet::Dead => keys.dead(),
        }
    }

    /// Sidekiq's name of the set (`schedule`, `retry`, `dead`).
    pub fn as_str(self) -> &'static str {
        match self {
            JobSet::Schedule => "schedule",
            JobSet::Retry => "retry",
            JobSet::Dead => "dead",
        }
    }
}

impl Inspector<'_> {
    /// Jobs in `set` (`ZCARD`, one round trip), like Sidekiq's `JobSet#size`.
    pub async fn set_size(&self, set: JobSet) -> Result<u64> {
        if self.spread() {
            return self.spread_set_size(set).await;
        }
        let mut pipe = redis::pipe();
        pipe.cmd("ZCARD").arg(set.key(self.client.keys()));
        let (size,): (u64,) = self.query(&pipe).await?;
        Ok(size)
    }

    /// One page of `set`, highest score first (the latest run time, retry time or death),
    /// as `Sidekiq::JobSet#each` walks it, with the set's size. One round trip (`ZCARD`,
    /// `ZREVRANGE … WITHSCORES`), O(log n + page size).
    pub async fn set_page(&self, set: JobSet, page: Page) -> Result<Listing<ScoredEntry>> {
        if self.spread() {
            return self.spread_set_page(set, page).await;
        }
        let (total, items) = self.set_range(set, page.start(), page.stop()).await?;
        Ok(Listing { items, total, page })
    }

    /// The size of `set`, and its entries from rank `start` to `stop` by highest score.
    pub(super) async fn set_range(
        &self,
        set: JobSet,
        start: u64,
        stop: u64,
    ) -> Result<(u64, Vec<ScoredEntry>)> {
        let key = set.key(self.client.keys());
        let mut pipe = redis::pipe();
        // Pipelined, not MULTI: at maxmemory Redis refuses every command queued in a
        // transaction, reads too, and a full Redis is when operators list sets to clear them.
        // The size and the page may then be a moment apart, which a listing can bear.
        pipe.cmd("ZCARD")
            .arg(&key)
            .cmd("ZREVRANGE")
            .arg(&key)
            .arg(start)
            .arg(stop)
            .arg("WITHSCORES");
        let (total, raw): (u64, Vec<(Vec<u8>, f64)>) = self.query(&pipe).await?;
        let items = raw
            .into_iter()
            .map(|(raw, score)| ScoredEntry {
                at: Timestamp::from_secs_f64(score),
                entry: Entry::parse(raw),
            })
            .collect();
        Ok((total, items))
    }
}
