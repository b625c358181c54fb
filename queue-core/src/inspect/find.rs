//! Finding one job by id wherever it waits (`Sidekiq::Queue#find_job`, `JobSet#find_job`).

use super::queues::names;
use super::{Inspector, JobSet, MAX_PAGE_SIZE, Page};
use crate::error::Result;
use crate::job_id::JobId;
use crate::payload::JobPayload;
use crate::timestamp::Timestamp;

/// `COUNT` hint of each `ZSCAN` call: how many members Redis looks at per call (Sidekiq's).
const SCAN_COUNT: u64 = 100;

/// A `ZSCAN` page: members with their scores.
type Scored = Vec<(Vec<u8>, f64)>;

/// Where a job was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Waiting in this queue.
    Queue(String),
    /// In the `schedule`, `retry` or `dead` set.
    Set(JobSet),
    /// Fetched by this process (its identity) and not yet settled.
    InFlight(String),
}

/// A job found by [`Inspector::find_job`].
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// Where it is.
    pub location: Location,
    /// Its score as a time, when it is in a sorted set.
    pub at: Option<Timestamp>,
    /// The job.
    pub job: Box<JobPayload>,
    /// The bytes stored in Redis.
    pub raw: Vec<u8>,
}

/// The job in `raw` when it is job JSON with id `id`. The byte search first keeps the cost
/// of a miss at a scan, not a JSON parse.
fn matching(raw: &[u8], id: &JobId) -> Option<JobPayload> {
    let needle = id.as_str().as_bytes();
    if !raw.windows(needle.len()).any(|w| w == needle) {
        return None;
    }
    JobPayload::from_json(raw).ok().filter(|job| job.jid == *id)
}

impl Inspector<'_> {
    /// Finds job `id` in the `schedule`, `retry` and `dead` sets, then in every queue of
    /// `queues`, then in the in-flight lists of our worker processes (`workers`); `None`
    /// when it is in none of them (it may be finished, or only a status record remains:
    /// [`Client::status`](crate::Client::status) is O(1) for tracked jobs).
    ///
    /// # Cost
    /// O(every job stored), for a troubleshooting tool, not for application logic. Each
    /// call to Redis is bounded: the sets are walked with `ZSCAN … MATCH *ID* COUNT 100`
    /// (Redis filters, so only matches travel, but it visits every member: about n / 100
    /// round trips); lists are read [`MAX_PAGE_SIZE`] entries per `LRANGE`, so every queued
    /// job travels once (n / 1,000 round trips). A job that moves while the search runs
    /// (promoted, fetched, retried) can be missed: search again.
    ///
    /// When queues are spread over a cluster's slots, only the slot the id names is searched.
    pub async fn find_job(&self, id: &JobId) -> Result<Option<Found>> {
        match self.client.for_job(id) {
            std::borrow::Cow::Owned(slot) if self.spread() => {
                Inspector::in_slot(&slot).find_job_in_slot(id).await
            }
            _ => self.find_job_in_slot(id).await,
        }
    }

    /// [`Inspector::find_job`] in this inspector's slot.
    async fn find_job_in_slot(&self, id: &JobId) -> Result<Option<Found>> {
        for set in JobSet::ALL {
            if let Some(found) = self.find_in_set(set, id).await? {
                return Ok(Some(found));
            }
        }
        let keys = self.client.keys();
        let mut pipe = redis::pipe();
        pipe.cmd("SMEMBERS")
            .arg(keys.queues())
            .cmd("SMEMBERS")
            .arg(keys.workers());
        let (queues, workers): (Vec<Vec<u8>>, Vec<Vec<u8>>) = self.query(&pipe).await?;
        for queue in names(queues, "queues") {
            if let Some((job, raw)) = self.find_in_list(&keys.queue(&queue), id).await? {
                let location = Location::Queue(queue);
                return Ok(Some(Found {
                    location,
                    at: None,
                    job,
                    raw,
                }));
            }
        }
        for identity in names(workers, "workers") {
            if let Some((job, raw)) = self.find_in_list(&keys.processing(&identity), id).await? {
                let location = Location::InFlight(identity);
                return Ok(Some(Found {
                    location,
                    at: None,
                    job,
                    raw,
                }));
            }
        }
        Ok(None)
    }

    /// Walks `set` with `ZSCAN MATCH *ID*` until Redis's cursor comes back to 0.
    async fn find_in_set(&self, set: JobSet, id: &JobId) -> Result<Option<Found>> {
        let key = set.key(self.client.keys());
        // Job ids hold only [A-Za-z0-9_.-], so the id needs no glob escaping.
        let pattern = format!("*{}*", id.as_str());
        let mut cursor: u64 = 0;
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("ZSCAN")
                .arg(&key)
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let ((next, members),): ((u64, Scored),) = self.query(&pipe).await?;
            for (raw, score) in members {
                if let Some(job) = matching(&raw, id) {
                    return Ok(Some(Found {
                        location: Location::Set(set),
                        at: Some(Timestamp::from_secs_f64(score)),
                        job: Box::new(job),
                        raw,
                    }));
                }
            }
            if next == 0 {
                return Ok(None);
            }
            cursor = next;
        }
    }

    /// Reads the list at `key` from its head, [`MAX_PAGE_SIZE`] entries per round trip,
    /// until a short page (the end of the list).
    async fn find_in_list(
        &self,
        key: &str,
        id: &JobId,
    ) -> Result<Option<(Box<JobPayload>, Vec<u8>)>> {
        let mut page = Page::new(0, MAX_PAGE_SIZE);
        loop {
            let mut pipe = redis::pipe();
            pipe.cmd("LRANGE")
                .arg(key)
                .arg(page.start())
                .arg(page.stop());
            let (entries,): (Vec<Vec<u8>>,) = self.query(&pipe).await?;
            let full = entries.len() >= MAX_PAGE_SIZE as usize;
            for raw in entries {
                if let Some(job) = matching(&raw, id) {
                    return Ok(Some((Box::new(job), raw)));
                }
            }
            match page.next() {
                Some(next) if full => page = next,
                _ => return Ok(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_job_json_with_that_id_matches() {
        let id = JobId::parse("abc123").unwrap();
        let job = br#"{"jid":"abc123","class":"X","args":[]}"#;
        assert!(matching(job, &id).is_some());
        let other = br#"{"jid":"abc1234","class":"X","args":["abc123"]}"#;
        assert!(
            matching(other, &id).is_none(),
            "the id in the args is not the jid"
        );
        assert!(matching(b"abc123 not json", &id).is_none());
        assert!(matching(br#"{"jid":"zzz","class":"X","args":[]}"#, &id).is_none());
    }
}
