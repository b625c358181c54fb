//! One listed job: parsed, or kept raw when it is not job JSON.

use crate::payload::JobPayload;
use crate::timestamp::Timestamp;

/// A stored entry that is not Sidekiq job JSON, kept as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// The bytes stored in Redis.
    pub raw: Vec<u8>,
    /// Why they did not parse.
    pub reason: String,
}

/// One entry of a queue, set or in-flight list.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A job.
    Job {
        /// The parsed job.
        job: Box<JobPayload>,
        /// The bytes stored in Redis (what `LREM`/`ZREM` would need to remove it).
        raw: Vec<u8>,
    },
    /// Bytes that are not job JSON (written by a foreign tool, or corrupted).
    Malformed(Malformed),
}

impl Entry {
    /// Parses the stored bytes; anything that is not job JSON becomes [`Entry::Malformed`].
    ///
    /// ```
    /// use queue_core::inspect::Entry;
    /// let ok = Entry::parse(br#"{"jid":"a1","class":"X","args":[]}"#.to_vec());
    /// assert_eq!(ok.job().unwrap().class, "X");
    /// let bad = Entry::parse(b"not json".to_vec());
    /// assert!(bad.job().is_none());
    /// assert_eq!(bad.raw(), b"not json");
    /// ```
    pub fn parse(raw: Vec<u8>) -> Self {
        match JobPayload::from_json(&raw) {
            Ok(job) => Entry::Job {
                job: Box::new(job),
                raw,
            },
            Err(e) => Entry::Malformed(Malformed {
                raw,
                reason: e.to_string(),
            }),
        }
    }

    /// The job, unless the entry is malformed.
    pub fn job(&self) -> Option<&JobPayload> {
        match self {
            Entry::Job { job, .. } => Some(job),
            Entry::Malformed(_) => None,
        }
    }

    /// The bytes stored in Redis.
    pub fn raw(&self) -> &[u8] {
        match self {
            Entry::Job { raw, .. } | Entry::Malformed(Malformed { raw, .. }) => raw,
        }
    }
}

/// An entry of a sorted set with its score read as a time.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredEntry {
    /// The score: run-at (`schedule`), next attempt (`retry`) or time of death (`dead`).
    pub at: Timestamp,
    /// The entry.
    pub entry: Entry,
}
