//! Bulk enqueue: many jobs in chunked script calls, validated and encoded before anything
//! is sent, with a few chunks in flight at once.

use futures_util::StreamExt;
use std::collections::HashMap;
use std::ops::Range;
use std::task::Poll;

use crate::client::{Client, NewJob, Prepared, new_status, secs_str};
use crate::error::Result;
use crate::job::Job;
use crate::job_id::JobId;
use crate::options::EnqueueOptions;
use crate::queue_name::validate_queue_name;
use crate::scripts;
use crate::status::JobState;
use crate::timestamp::Timestamp;

/// Bulk chunks sent before the first of them has answered.
const BULK_IN_FLIGHT: usize = 4;
/// Jobs per script call in bulk enqueue (Sidekiq pushes bulk in batches of 1,000 too).
const BULK_CHUNK: usize = 1000;

/// One job of a bulk push that is due now: where its id and its JSON are.
struct BulkMember {
    /// Index into the ids of the call (the order of the input).
    index: usize,
    /// Its JSON in the call's shared buffer.
    json: Range<usize>,
    /// Whether the caller chose the id (the script then checks that it is new).
    given_id: bool,
}

/// Jobs that go out in the same `enqueue_bulk.lua` calls: one queue and, when tracked, one
/// set of shared status fields (class, owner).
struct BulkGroup {
    queue: String,
    track: bool,
    class: String,
    owner: Option<String>,
    /// Whether the members' ids are the callers' (their records say so, `field::GIVEN_ID`).
    given_ids: bool,
    members: Vec<BulkMember>,
}

/// What identifies a [`BulkGroup`], borrowed from the input while it is encoded: queue,
/// tracked, class, owner, caller-given ids. Untracked jobs have no status fields, so their
/// class, owner and ids do not split them.
type BulkGroupKey<'a> = (&'a str, bool, &'a str, Option<&'a str>, bool);

/// A bulk push, validated and encoded, before anything is sent.
struct EncodedBulk {
    /// Every job's id, in input order (the call's return value).
    ids: Vec<JobId>,
    /// The JSON of every job due now, back to back (one allocation for the whole call).
    json: Vec<u8>,
    /// Jobs due now, grouped; groups in first-seen order, members in input order.
    groups: Vec<BulkGroup>,
    /// Jobs with a run time, and unique jobs, one call each: their index and the job.
    one_by_one: Vec<(usize, Prepared)>,
}

/// Polls `stream` once without waiting: sends what was just pushed into a set of futures.
async fn poll_once<S: futures_util::Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
    std::future::poll_fn(|cx| Poll::Ready(stream.poll_next_unpin(cx))).await
}

impl Client {
    /// Enqueues many jobs of one type with their type's defaults, in chunked script calls.
    pub async fn enqueue_bulk<J: Job>(&self, jobs: &[J]) -> Result<Vec<JobId>> {
        let new_jobs = jobs
            .iter()
            .map(|j| NewJob::typed(j, EnqueueOptions::default()))
            .collect::<Result<Vec<_>>>()?;
        self.push_bulk(new_jobs).await
    }

    /// Pushes many untyped jobs, in chunks of 1,000 per script call.
    ///
    /// Everything is validated and encoded before anything is sent: one bad job fails the
    /// whole call with nothing written. Jobs due now are grouped by queue and, when tracked,
    /// status record (class, owner), since one script call writes one queue and one set of
    /// shared status fields; jobs of one group keep their order. The chunks are then sent
    /// one after another with up to four in flight on the shared connection, each bounded
    /// by the client timeout from its own send, so encoding the next chunk overlaps Redis
    /// running the previous ones. Jobs with a run time go to the schedule set, and unique jobs
    /// through `enqueue_unique.lua`, one call each; a unique job whose key another job holds
    /// gets that job's id in the returned list.
    /// Caller-given ids are idempotent as with [`Client::push`].
    pub async fn push_bulk(&self, jobs: Vec<NewJob>) -> Result<Vec<JobId>> {
        let now = Timestamp::now();
        let now_s = secs_str(now);
        let bulk = self.encode_bulk(&jobs, now)?;
        // The input is freed once the first chunk is on its way, while Redis works.
        let mut input = Some(jobs);
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        for group in &bulk.groups {
            let status = group.track.then(|| {
                new_status(
                    JobState::Queued,
                    &group.queue,
                    &group.class,
                    &now_s,
                    group.owner.as_deref(),
                    group.given_ids,
                )
            });
            let slot = self.for_queue(&group.queue);
            for chunk in group.members.chunks(BULK_CHUNK) {
                // Built while earlier chunks are in flight.
                let cmd = scripts::BulkChunk {
                    queue: &group.queue,
                    status: status.as_deref(),
                    jobs: chunk.iter().map(|m| {
                        (
                            bulk.ids[m.index].as_str(),
                            &bulk.json[m.json.clone()],
                            m.given_id,
                        )
                    }),
                }
                .command(&slot);
                if in_flight.len() >= BULK_IN_FLIGHT
                    && let Some(done) = in_flight.next().await
                {
                    done?;
                }
                // The timeout of a chunk starts at its first poll, which sends it.
                in_flight.push(scripts::send_bulk_chunk(self, cmd));
                if let Poll::Ready(Some(done)) = poll_once(&mut in_flight).await {
                    done?;
                }
                drop(input.take());
            }
        }
        while let Some(done) = in_flight.next().await {
            done?;
        }
        for group in &bulk.groups {
            self.note_queue(&group.queue).await;
        }
        let sent = futures_util::future::try_join_all(bulk.one_by_one.iter().map(|(_, p)| async {
            let id = self.for_queue(&p.queue).push_prepared(p, &now_s).await?;
            self.note_queue(&p.queue).await;
            Ok::<_, crate::Error>(id)
        }))
        .await?;
        let mut ids = bulk.ids;
        // A unique job whose key another job holds reports that job's id.
        for ((index, _), id) in bulk.one_by_one.iter().zip(sent) {
            ids[*index] = id;
        }
        Ok(ids)
    }

    /// Validates and encodes every job of a bulk push, and groups the ones due now.
    fn encode_bulk(&self, jobs: &[NewJob], now: Timestamp) -> Result<EncodedBulk> {
        let mut bulk = EncodedBulk {
            ids: Vec::with_capacity(jobs.len()),
            json: Vec::new(),
            groups: Vec::new(),
            one_by_one: Vec::new(),
        };
        let mut group_of: HashMap<BulkGroupKey<'_>, usize> = HashMap::new();
        // Consecutive jobs mostly share a group: compare with the last one before hashing.
        let mut last: Option<(BulkGroupKey<'_>, usize)> = None;
        for (index, job) in jobs.iter().enumerate() {
            if job.options.run_at.is_some() || job.options.unique.is_some() {
                let p = self.prepare(job, now)?;
                bulk.ids.push(p.jid.clone());
                bulk.one_by_one.push((index, p));
                continue;
            }
            let queue = job.options.queue.as_deref().unwrap_or(&job.queue);
            validate_queue_name(queue)?;
            let given_id = job.options.job_id.is_some();
            let jid = self.job_id_for(queue, job.options.job_id.as_ref())?;
            if bulk.json.is_empty() {
                // The first job's size, times the number of jobs: one allocation, usually.
                bulk.json.reserve(jobs.len().saturating_mul(256));
            }
            let json = self.encode(&mut bulk.json, job, queue, &jid, now, None)?;
            bulk.ids.push(jid);
            let key: BulkGroupKey<'_> = if job.track_status {
                (
                    queue,
                    true,
                    &job.class,
                    job.options.owner.as_deref(),
                    given_id,
                )
            } else {
                (queue, false, "", None, false)
            };
            let group = match last {
                Some((k, g)) if k == key => g,
                _ => *group_of.entry(key).or_insert_with(|| {
                    bulk.groups.push(BulkGroup {
                        queue: queue.to_owned(),
                        track: key.1,
                        class: key.2.to_owned(),
                        owner: key.3.map(str::to_owned),
                        given_ids: key.4,
                        members: Vec::new(),
                    });
                    bulk.groups.len() - 1
                }),
            };
            last = Some((key, group));
            bulk.groups[group].members.push(BulkMember {
                index,
                json,
                given_id,
            });
        }
        Ok(bulk)
    }
}
