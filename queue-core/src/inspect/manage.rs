//! The operators' verbs: retry now, kill and delete one entry of a set, retry all or clear
//! a set, pause and resume a queue (Sidekiq's `SortedEntry#retry/#kill/#delete`,
//! `JobSet#retry_all/#clear`, and Sidekiq Pro's `Queue#pause!/#unpause!`).
//!
//! Every write goes through a script of [`crate::scripts`] (`retry_now`, `kill`, `delete`,
//! `pause`), which keeps the job's status record true in the same step.

use super::{Entry, Inspector, JobSet, ScoredEntry};
use crate::error::Result;
use crate::job_id::JobId;
use crate::payload::JobPayload;
use crate::scripts::{self, Acted};
use crate::timestamp::Timestamp;

/// Members read and sent per script call by [`Inspector::retry_all`] and
/// [`Inspector::clear`]: each call stays short however large the set (Redis runs one script
/// at a time, so a long one would stall every worker).
pub const MANAGE_BATCH: usize = 100;

/// What [`Inspector::retry_all`] or [`Inspector::clear`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Entries queued again (retry all) or deleted (clear).
    pub done: u64,
    /// Entries dropped because their record says cancelled.
    pub cancelled: u64,
    /// Entries left in the set: not job JSON, or their queue key holds another type.
    pub left: u64,
}

impl Inspector<'_> {
    /// The entry of `set` with score `at` and job id `jid`, as Sidekiq's API names one
    /// (`JobSet#fetch(score, jid)`): one `ZRANGEBYSCORE at at`, O(log n + entries at that
    /// score). Pass its [`Entry::raw`] to the verbs below.
    pub async fn set_entry(
        &self,
        set: JobSet,
        at: Timestamp,
        jid: &JobId,
    ) -> Result<Option<ScoredEntry>> {
        if self.spread() {
            let slot = self.client.for_job(jid);
            return Box::pin(Inspector::in_slot(&slot).set_entry(set, at, jid)).await;
        }
        // `{}` of an f64 is the shortest text that reads back as the same f64, so Redis
        // compares the exact score that a listing gave out.
        let score = format!("{}", at.as_secs_f64());
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGEBYSCORE")
            .arg(set.key(self.client.keys()))
            .arg(&score)
            .arg(&score);
        let (members,): (Vec<Vec<u8>>,) = self.query(&pipe).await?;
        Ok(members.into_iter().find_map(|raw| {
            let entry = Entry::parse(raw);
            let id = match &entry {
                Entry::Job { job, .. } => Some(job.jid.clone()),
                Entry::Malformed(m) => JobPayload::recover_jid(&m.raw),
            };
            (id.as_ref() == Some(jid)).then_some(ScoredEntry { at, entry })
        }))
    }

    /// Sends entry `raw` of `set` to its queue now; its record says `queued`.
    pub async fn retry_now(&self, set: JobSet, raw: &[u8]) -> Result<Acted> {
        if self.spread() {
            let slot = self.slot_of_entry(raw);
            return Box::pin(Inspector::in_slot(&slot).retry_now(set, raw)).await;
        }
        let now = self.redis_now().await?;
        let acted = scripts::retry_now(self.client, set, &[raw], now).await?;
        Ok(acted.first().copied().unwrap_or(Acted::Gone))
    }

    /// Moves entry `raw` of `set` (`schedule` or `retry`) to the dead set now; its record
    /// says `dead`, and a unique job gives its key back, as a death in a worker does. An entry
    /// of the dead set is left as it is ([`Acted::Done`]).
    pub async fn kill(&self, set: JobSet, raw: &[u8]) -> Result<Acted> {
        if self.spread() {
            let slot = self.slot_of_entry(raw);
            return Box::pin(Inspector::in_slot(&slot).kill(set, raw)).await;
        }
        let now = self.redis_now().await?;
        let acted = scripts::kill(self.client, set, raw, now).await?;
        if acted == Acted::Done {
            self.release_unique(raw).await?;
        }
        Ok(acted)
    }

    /// Removes entry `raw` of `set`, and its status record when the record describes it
    /// (its state is the set's, or cancelled): a status request for the job then answers
    /// "not found", as for a job that never existed. A record that says `queued` or
    /// `running` belongs to a copy of the job that lives elsewhere, and stays. A unique job's
    /// key is kept until its TTL, as in Sidekiq Enterprise (to free it, kill the job).
    pub async fn delete(&self, set: JobSet, raw: &[u8]) -> Result<Acted> {
        if self.spread() {
            let slot = self.slot_of_entry(raw);
            return Box::pin(Inspector::in_slot(&slot).delete(set, raw)).await;
        }
        let acted = scripts::delete(self.client, set, &[raw]).await?;
        Ok(acted.first().copied().unwrap_or(Acted::Gone))
    }

    /// Gives back the unique key of `raw`, a job an operator killed: the key would otherwise
    /// answer equal enqueues with the dead job's id until its TTL. The release
    /// deletes the key only while it names this job (`unique_release.lua`); an entry that is
    /// not job JSON, or has no key, releases nothing.
    async fn release_unique(&self, raw: &[u8]) -> Result<()> {
        let Ok(job) = serde_json::from_slice::<serde_json::Value>(raw) else {
            return Ok(());
        };
        let key = job
            .get(crate::unique::UNIQUE_KEY_FIELD)
            .and_then(|k| k.as_str());
        let jid = job.get("jid").and_then(|j| j.as_str());
        if let (Some(key), Some(jid)) = (key, jid) {
            scripts::unique_release(self.client, key, jid).await?;
        }
        Ok(())
    }

    /// Sends every entry of `set` to its queue ([`Inspector::retry_now`] for each), in
    /// calls of [`MANAGE_BATCH`]; stops once the set holds nothing it can move, or after as
    /// many entries as the set held at the start (so producers adding to the set meanwhile
    /// cannot keep it going).
    pub async fn retry_all(&self, set: JobSet) -> Result<BatchReport> {
        if self.spread() {
            return self.spread_batch(set, true).await;
        }
        let mut report = BatchReport::default();
        let budget = self.set_size(set).await?;
        while report.done + report.cancelled + report.left < budget {
            // Entries left behind stay at the low end: read past them.
            let members = self.lowest(set, report.left).await?;
            if members.is_empty() {
                break;
            }
            let now = self.redis_now().await?;
            let refs: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
            for acted in scripts::retry_now(self.client, set, &refs, now).await? {
                match acted {
                    Acted::Done => report.done += 1,
                    Acted::Cancelled => report.cancelled += 1,
                    Acted::Blocked | Acted::NotAJob => report.left += 1,
                    Acted::Gone => {}
                }
            }
        }
        Ok(report)
    }

    /// Deletes every entry of `set` ([`Inspector::delete`] for each), in calls of
    /// [`MANAGE_BATCH`], until the set is empty or as many entries as it held at the start
    /// are gone.
    pub async fn clear(&self, set: JobSet) -> Result<BatchReport> {
        if self.spread() {
            return self.spread_batch(set, false).await;
        }
        let mut report = BatchReport::default();
        let budget = self.set_size(set).await?;
        while report.done < budget {
            let members = self.lowest(set, 0).await?;
            if members.is_empty() {
                break;
            }
            let refs: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
            let acted = scripts::delete(self.client, set, &refs).await?;
            let deleted = acted.iter().filter(|a| **a == Acted::Done).count() as u64;
            // Zero when someone else emptied this batch first: the next read sees that.
            report.done += deleted;
        }
        Ok(report)
    }

    /// Pauses `queue`: within a second no worker takes a job from it, until
    /// [`Inspector::resume`]. Stored in Redis, so it outlives every worker. `Ok(true)` when it
    /// was not paused.
    pub async fn pause(&self, queue: &str) -> Result<bool> {
        scripts::pause(self.client, queue, true).await
    }

    /// Resumes `queue` after [`Inspector::pause`]. `Ok(true)` when it was paused.
    pub async fn resume(&self, queue: &str) -> Result<bool> {
        scripts::pause(self.client, queue, false).await
    }

    /// Asks worker process `identity` to quiet: it stops fetching, and its running jobs
    /// finish. Sidekiq's "Quiet" button, so Sidekiq processes obey it too. `Ok(false)` when
    /// there is no such process.
    pub async fn quiet(&self, identity: &str) -> Result<bool> {
        self.signal(identity, &scripts::Signal::Quiet).await
    }

    /// Asks worker process `identity` to shut down as on SIGTERM: it stops fetching, waits
    /// for its running jobs up to its shutdown timeout, hands back the rest and exits.
    /// Sidekiq's "Stop" button. `Ok(false)` when there is no such process.
    pub async fn stop(&self, identity: &str) -> Result<bool> {
        self.signal(identity, &scripts::Signal::Stop).await
    }

    /// Sends `signal` to process `identity`, in the slot where it is registered when queues
    /// are spread (a process's signals reach all of its queues' workers).
    async fn signal(&self, identity: &str, signal: &scripts::Signal) -> Result<bool> {
        if self.spread() {
            return match self.slot_of_process(identity).await? {
                Some(slot) => scripts::signal(&slot, identity, signal).await,
                None => Ok(false),
            };
        }
        scripts::signal(self.client, identity, signal).await
    }

    /// The paused queues (`SMEMBERS paused`), in no particular order.
    pub async fn paused(&self) -> Result<Vec<String>> {
        let mut pipe = redis::pipe();
        pipe.cmd("SMEMBERS").arg(self.client.keys().paused());
        let (names,): (Vec<Vec<u8>>,) = self.query(&pipe).await?;
        Ok(names
            .into_iter()
            .filter_map(|n| String::from_utf8(n).ok())
            .collect())
    }

    /// Up to [`MANAGE_BATCH`] members of `set` from the lowest score, after the first `skip`.
    async fn lowest(&self, set: JobSet, skip: u64) -> Result<Vec<Vec<u8>>> {
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGE")
            .arg(set.key(self.client.keys()))
            .arg(skip)
            .arg(skip + MANAGE_BATCH as u64 - 1);
        let (members,): (Vec<Vec<u8>>,) = self.query(&pipe).await?;
        Ok(members)
    }
}
