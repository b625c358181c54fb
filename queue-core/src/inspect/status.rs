//! Revisions of many status records at once, for the long poll.

use super::Inspector;
use crate::error::Result;
use crate::job_id::JobId;
use crate::status::{JobState, field, read_rev};

/// Most status records read in one pipeline; more ids take more (still batched) round trips.
pub const MAX_STATUS_PER_ROUND_TRIP: usize = 1000;

/// How far a job's status record has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusRev {
    /// The record's `rev`, read as [`JobStatus`](crate::JobStatus) reads it
    /// ([`read_rev`]: missing or not a number means 1). Every writer increments it.
    Rev(u64),
    /// There is no record (no `state`): never tracked, expired or deleted.
    Gone,
}

impl StatusRev {
    /// Reads an `HMGET state rev` reply.
    ///
    /// ```
    /// use queue_core::inspect::StatusRev;
    /// assert_eq!(StatusRev::from_fields(Some("queued"), None), StatusRev::Rev(1));
    /// assert_eq!(StatusRev::from_fields(Some("running"), Some("3")), StatusRev::Rev(3));
    /// assert_eq!(StatusRev::from_fields(None, Some("3")), StatusRev::Gone);
    /// assert_eq!(StatusRev::from_fields(Some("running"), Some("x")), StatusRev::Rev(1));
    /// ```
    pub fn from_fields(state: Option<&str>, rev: Option<&str>) -> Self {
        match state {
            None => StatusRev::Gone,
            Some(_) => StatusRev::Rev(read_rev(rev)),
        }
    }
}

/// An `HMGET state rev` reply, as bytes: a bad `rev` must not fail the other records.
type StateAndRev = (Option<Vec<u8>>, Option<Vec<u8>>);

impl Inspector<'_> {
    /// The [`StatusRev`] of each job of `ids`, in the same order: one pipeline of
    /// `HMGET jobstatus:ID state rev` per [`MAX_STATUS_PER_ROUND_TRIP`] ids (and per queue
    /// slot when queues are spread over a cluster, which refuses a pipeline across slots),
    /// O(ids).
    ///
    /// A succeeded job whose record was packed into the finished-record store
    /// ([`crate::finished_store`]) reads as [`StatusRev::Gone`]: it changes no more, and a
    /// long poll woken by `Gone` reads the record again with [`Client::status`](crate::Client::status),
    /// which finds it.
    ///
    /// A damaged record does not fail the others: its `rev` reads as [`read_rev`] reads it,
    /// and a key of another type where a record belongs reads as [`StatusRev::Gone`] (there
    /// is no record), so one planted key cannot stop every other job's read.
    pub async fn status_revs(&self, ids: &[JobId]) -> Result<Vec<StatusRev>> {
        let mut revs = vec![StatusRev::Gone; ids.len()];
        for chunk in self.chunks_by_slot(ids) {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for &i in &chunk {
                pipe.cmd("HMGET")
                    .arg(self.client.status_key(ids[i].as_str()))
                    .arg(field::STATE)
                    .arg(field::REV);
            }
            let replies: Vec<redis::RedisResult<StateAndRev>> = self.query(&pipe).await?;
            for (&i, reply) in chunk.iter().zip(&replies) {
                revs[i] = match reply {
                    Ok((state, rev)) => {
                        let state = state.as_ref().map(|_| "");
                        // Not UTF-8 is not a number either: read as 1, like any other bad `rev`.
                        let rev = rev.as_deref().and_then(|r| std::str::from_utf8(r).ok());
                        StatusRev::from_fields(state, rev)
                    }
                    Err(_) => StatusRev::Gone,
                };
            }
        }
        Ok(revs)
    }

    /// The state of each job of `ids`, in the same order (`None`: no record, a key of another
    /// type, or a state this version does not know, and a succeeded job whose record was
    /// packed into the finished-record store: [`Client::status`](crate::Client::status) reads
    /// those): pipelines of `HGET jobstatus:ID state`,
    /// [`MAX_STATUS_PER_ROUND_TRIP`] ids per round trip (and per queue slot).
    pub async fn states(&self, ids: &[JobId]) -> Result<Vec<Option<JobState>>> {
        let mut states = vec![None; ids.len()];
        for chunk in self.chunks_by_slot(ids) {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for &i in &chunk {
                pipe.cmd("HGET")
                    .arg(self.client.status_key(ids[i].as_str()))
                    .arg(field::STATE);
            }
            let replies: Vec<redis::RedisResult<Option<Vec<u8>>>> = self.query(&pipe).await?;
            for (&i, reply) in chunk.iter().zip(replies) {
                states[i] = reply
                    .ok()
                    .flatten()
                    .and_then(|state| std::str::from_utf8(&state).ok()?.parse().ok());
            }
        }
        Ok(states)
    }

    /// The indices of `ids` in pipelines of at most [`MAX_STATUS_PER_ROUND_TRIP`] whose
    /// records share a slot: all of them together unless queues are spread.
    fn chunks_by_slot(&self, ids: &[JobId]) -> Vec<Vec<usize>> {
        let spread = self.spread();
        let mut slots: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let slot = if spread { id.queue_slot() } else { None };
            match slots.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, members)) => members.push(i),
                None => slots.push((slot, vec![i])),
            }
        }
        slots
            .into_iter()
            .flat_map(|(_, members)| {
                members
                    .chunks(MAX_STATUS_PER_ROUND_TRIP)
                    .map(<[usize]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}
