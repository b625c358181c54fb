//! The registered periodic (cron) entries, each with its last and next run.

use std::collections::HashMap;

use super::Inspector;
use crate::error::Result;

/// One registered periodic entry, as its hash (`P periodic:NAME`) holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodicInfo {
    /// The entry's name.
    pub name: String,
    /// The cron expression.
    pub cron: String,
    /// The time zone.
    pub tz: String,
    /// The class each tick pushes.
    pub class: String,
    /// The queue it is pushed to.
    pub queue: String,
    /// Policy for missed ticks (`skip` or `once`).
    pub missed: String,
    /// The last tick pushed (epoch s), if any.
    pub last: Option<i64>,
    /// The job id of the last tick pushed.
    pub last_job_id: Option<String>,
    /// How late the last tick was pushed (ms, Redis's clock).
    pub last_late_ms: Option<i64>,
    /// The next tick (epoch s), as the process that pushed the last one computed it.
    pub next: Option<i64>,
}

impl Inspector<'_> {
    /// Every registered periodic entry, by name: two round trips (`SMEMBERS`, then one
    /// `HGETALL` per entry, pipelined).
    pub async fn periodic(&self) -> Result<Vec<PeriodicInfo>> {
        if self.spread() {
            return self.spread_periodic().await;
        }
        let keys = self.client.keys();
        let mut pipe = redis::pipe();
        pipe.cmd("SMEMBERS").arg(keys.periodic());
        let (mut names,): (Vec<String>,) = self.query(&pipe).await?;
        names.sort();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for name in &names {
            pipe.cmd("HGETALL").arg(keys.periodic_entry(name));
        }
        let hashes: Vec<HashMap<String, String>> = self.query(&pipe).await?;
        Ok(names
            .into_iter()
            .zip(hashes)
            .filter(|(_, h)| !h.is_empty())
            .map(|(name, mut h)| {
                let mut take = |f: &str| h.remove(f).unwrap_or_default();
                let (cron, tz, class, queue, missed) = (
                    take("cron"),
                    take("tz"),
                    take("class"),
                    take("queue"),
                    take("missed"),
                );
                let number = |v: String| v.parse::<i64>().ok();
                PeriodicInfo {
                    name,
                    cron,
                    tz,
                    class,
                    queue,
                    missed,
                    last: number(take("last")),
                    last_job_id: Some(take("last_jid")).filter(|s| !s.is_empty()),
                    last_late_ms: number(take("last_late_ms")),
                    next: number(take("next")),
                }
            })
            .collect())
    }
}
