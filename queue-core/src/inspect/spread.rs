//! The whole-app views when queues are spread over a cluster's slots
//! ([`ClientConfig::spread_queues`](crate::ClientConfig::spread_queues)): every queue's slot
//! has its own sets, counters, processes and periodic entries, so each view reads them all
//! (concurrently, one inspector per slot) and adds them up or merges them. The slots are
//! the queues of the app's own `queues` set.
//!
//! Costs grow with the number of queues: a view costs what it costs in one slot, once per
//! queue. A set page merges the first `start + size` entries of every slot, so deep pages
//! cost more than on one server.

use std::borrow::Cow;

use futures_util::future::try_join_all;

use super::{BatchReport, DayStats, Inspector, JobSet, Listing, MinuteStats, Page, ProcessInfo};
use super::{PeriodicInfo, ScoredEntry, checked_sum};
use crate::client::Client;
use crate::error::Result;
use crate::timestamp::Timestamp;

impl Inspector<'_> {
    /// [`Inspector::set_size`] summed over every queue's slot.
    pub(super) async fn spread_set_size(&self, set: JobSet) -> Result<u64> {
        let slots = self.queue_slots().await?;
        let sizes = try_join_all(
            slots
                .iter()
                .map(|slot| async move { Box::pin(Inspector::in_slot(slot).set_size(set)).await }),
        )
        .await?;
        sizes
            .into_iter()
            .try_fold(0, |sum, n| checked_sum(sum, n, set.as_str()))
    }

    /// [`Inspector::set_page`] over every queue's slot: the first `page.stop() + 1` entries
    /// of each, merged by score (highest first), cut to the page.
    pub(super) async fn spread_set_page(
        &self,
        set: JobSet,
        page: Page,
    ) -> Result<Listing<ScoredEntry>> {
        let slots = self.queue_slots().await?;
        let tops = try_join_all(slots.iter().map(|slot| async move {
            Inspector::in_slot(slot)
                .set_range(set, 0, page.stop())
                .await
        }))
        .await?;
        let mut total = 0;
        let mut items = Vec::new();
        for (size, top) in tops {
            total = checked_sum(total, size, set.as_str())?;
            items.extend(top);
        }
        items.sort_by(|a, b| b.at.as_secs_f64().total_cmp(&a.at.as_secs_f64()));
        let items = items
            .into_iter()
            .skip(usize::try_from(page.start()).unwrap_or(usize::MAX))
            .take(page.size() as usize)
            .collect();
        Ok(Listing { items, total, page })
    }

    /// The client of the slot holding set entry `raw`: its job's queue's. An entry that is
    /// not job JSON names no queue; it is looked for in the app's own slot.
    pub(super) fn slot_of_entry(&self, raw: &[u8]) -> Cow<'_, Client> {
        #[derive(serde::Deserialize)]
        struct Queue<'a> {
            #[serde(borrow)]
            queue: Cow<'a, str>,
        }
        match serde_json::from_slice::<Queue<'_>>(raw) {
            Ok(job) => Cow::Owned(self.client.for_queue(&job.queue).into_owned()),
            Err(_) => Cow::Borrowed(self.client),
        }
    }

    /// [`Inspector::retry_all`] or [`Inspector::clear`] in every queue's slot, added up.
    pub(super) async fn spread_batch(&self, set: JobSet, retry: bool) -> Result<BatchReport> {
        let mut sum = BatchReport::default();
        for slot in self.queue_slots().await? {
            let inspector = Inspector::in_slot(&slot);
            let report = if retry {
                Box::pin(inspector.retry_all(set)).await?
            } else {
                Box::pin(inspector.clear(set)).await?
            };
            sum.done += report.done;
            sum.cancelled += report.cancelled;
            sum.left += report.left;
        }
        Ok(sum)
    }

    /// Every process of every queue's slot, sorted by identity. A process working several
    /// queues has one identity in each of their slots.
    pub(super) async fn spread_processes(&self) -> Result<Vec<ProcessInfo>> {
        let slots = self.queue_slots().await?;
        let each = try_join_all(
            slots
                .iter()
                .map(|slot| async move { Box::pin(Inspector::in_slot(slot).processes()).await }),
        )
        .await?;
        let mut all: Vec<ProcessInfo> = each.into_iter().flatten().collect();
        all.sort_by(|a, b| a.identity.cmp(&b.identity));
        Ok(all)
    }

    /// The client of the slot where process `identity` is registered, if any.
    pub(super) async fn slot_of_process(&self, identity: &str) -> Result<Option<Client>> {
        for slot in self.queue_slots().await? {
            let mut pipe = redis::pipe();
            pipe.cmd("SISMEMBER")
                .arg(slot.keys().processes())
                .arg(identity);
            let (member,): (bool,) = Inspector::in_slot(&slot).query(&pipe).await?;
            if member {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// [`Inspector::history`] summed day by day over every queue's slot.
    pub(super) async fn spread_history(&self, days: u32, end: Timestamp) -> Result<Vec<DayStats>> {
        let slots = self.queue_slots().await?;
        let each = try_join_all(slots.iter().map(|slot| async move {
            Box::pin(Inspector::in_slot(slot).history(days, end)).await
        }))
        .await?;
        let mut sum: Vec<DayStats> = Vec::new();
        for days in each {
            if sum.is_empty() {
                sum = days;
                continue;
            }
            for (total, day) in sum.iter_mut().zip(days) {
                total.processed = checked_sum(total.processed, day.processed, "stat:processed")?;
                total.failed = checked_sum(total.failed, day.failed, "stat:failed")?;
            }
        }
        Ok(sum)
    }

    /// [`Inspector::recent_throughput`] summed minute by minute over every queue's slot.
    pub(super) async fn spread_throughput(&self, minutes: u32) -> Result<Vec<MinuteStats>> {
        let slots = self.queue_slots().await?;
        let each = try_join_all(slots.iter().map(|slot| async move {
            Box::pin(Inspector::in_slot(slot).recent_throughput(minutes)).await
        }))
        .await?;
        let mut sum: Vec<MinuteStats> = Vec::new();
        for minutes in each {
            for minute in minutes {
                match sum.iter_mut().find(|m| m.minute == minute.minute) {
                    Some(total) => {
                        total.processed =
                            checked_sum(total.processed, minute.processed, "stat:minute")?;
                        total.failed = checked_sum(total.failed, minute.failed, "stat:minute")?;
                    }
                    None => sum.push(minute),
                }
            }
        }
        sum.sort_by(|a, b| a.minute.as_secs_f64().total_cmp(&b.minute.as_secs_f64()));
        Ok(sum)
    }

    /// Every periodic entry of every queue's slot, by name.
    pub(super) async fn spread_periodic(&self) -> Result<Vec<PeriodicInfo>> {
        let slots = self.queue_slots().await?;
        let each = try_join_all(
            slots
                .iter()
                .map(|slot| async move { Box::pin(Inspector::in_slot(slot).periodic()).await }),
        )
        .await?;
        let mut all: Vec<PeriodicInfo> = each.into_iter().flatten().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }
}
