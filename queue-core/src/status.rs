//! The job-status store: one Redis hash per live job, read by `Client::status` and the web
//! layer; a succeeded job's record is packed into the finished-record store
//! ([`crate::finished_store`]) when it fits.
//!
//! # Record
//! | field | meaning |
//! |---|---|
//! | `state` | one of [`JobState`] |
//! | `queue`, `class` | where and what (never the arguments) |
//! | `created_at`, `enqueued_at`, `run_at`, `started_at`, `finished_at` | epoch seconds |
//! | `attempt` | 0 before the first run, then 1, 2, … (absent: 0) |
//! | `progress`, `message` | last progress report (percent 0-100, text) |
//! | `result` | JSON value stored on success |
//! | `error` | last error, `"<class>: <message>"` (truncated; the job's own error only, credentials redacted) |
//! | `owner` | who may read it, when recorded at enqueue |
//! | `rev` | incremented by every change, so pollers can tell that something changed (absent: 1) |
//! | `retention` | on a cancelled record: the seconds it is kept once its job is dropped (it does not expire while the job waits) |
//! | `given` | `1` when the caller chose the job's id: the record then stays at its own key once the job succeeds |
//!
//! A queued record as `enqueue.lua` writes it holds only `state`, `queue`, `class`,
//! `created_at`, `enqueued_at` (and `owner` when given): `attempt` and `rev` are left out,
//! since their absence reads as 0 and 1, the values of a record nothing has changed yet.
//! Every writer after the enqueue treats a missing `rev` as 1, so the first change makes it 2.
//!
//! # Retention
//! A record expires [`StatusRetention::finished`] (default 24 h; a job type may set its own,
//! [`Job::STATUS_RETENTION`](crate::Job::STATUS_RETENTION), for its succeeded jobs) after its
//! job reached a terminal state (`succeeded`, `dead`, `cancelled`) and [`StatusRetention::active`]
//! (default 30 days, longer than Sidekiq's 25 retries take) after its last change
//! otherwise, so Redis memory stays bounded even for jobs that vanish.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Default retention of a record after a terminal state.
pub const DEFAULT_FINISHED_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// Default retention of a record of a job that is still alive.
pub const DEFAULT_ACTIVE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// How long status records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRetention {
    /// After `succeeded`, `dead` or `cancelled`.
    pub finished: Duration,
    /// After any other change.
    pub active: Duration,
}

impl Default for StatusRetention {
    fn default() -> Self {
        Self {
            finished: DEFAULT_FINISHED_RETENTION,
            active: DEFAULT_ACTIVE_RETENTION,
        }
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// In a queue list, waiting for a worker.
    Queued,
    /// In the schedule set, waiting for its run time.
    Scheduled,
    /// A worker is running it.
    Running,
    /// It failed and waits in the retry set for its next attempt.
    Retrying,
    /// It finished successfully (terminal).
    Succeeded,
    /// It failed for good and sits in the dead set (terminal).
    Dead,
    /// It was cancelled (terminal): before it ran, or while running (its worker was told
    /// to stop it; a job that still succeeds ends `Succeeded`).
    Cancelled,
    /// It was not started by its deadline and was dropped (terminal; `expires_in`).
    Expired,
}

impl JobState {
    /// The name stored in Redis and shown by the web layer.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Scheduled => "scheduled",
            JobState::Running => "running",
            JobState::Retrying => "retrying",
            JobState::Succeeded => "succeeded",
            JobState::Dead => "dead",
            JobState::Cancelled => "cancelled",
            JobState::Expired => "expired",
        }
    }

    /// Whether the job will not change state again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Dead | JobState::Cancelled | JobState::Expired
        )
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`JobState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?}")]
pub struct UnknownState(String);

impl FromStr for JobState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "queued" => JobState::Queued,
            "scheduled" => JobState::Scheduled,
            "running" => JobState::Running,
            "retrying" => JobState::Retrying,
            "succeeded" => JobState::Succeeded,
            "dead" => JobState::Dead,
            "cancelled" => JobState::Cancelled,
            "expired" => JobState::Expired,
            other => return Err(UnknownState(other.to_owned())),
        })
    }
}

/// Last reported progress of a running job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Progress {
    /// 0 to 100.
    pub percent: u8,
    /// Free text shown to the user.
    pub message: Option<String>,
}

/// One job's status record.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    /// Current state.
    pub state: JobState,
    /// Queue it runs in.
    pub queue: Option<String>,
    /// Job type name.
    pub class: Option<String>,
    /// Attempt number: 0 before the first run.
    pub attempt: u32,
    /// Last progress report.
    pub progress: Progress,
    /// Result stored on success.
    pub result: Option<serde_json::Value>,
    /// Last error message.
    pub error: Option<String>,
    /// Owner recorded at enqueue.
    pub owner: Option<String>,
    /// Creation time, epoch seconds.
    pub created_at: Option<f64>,
    /// Last push into a queue, epoch seconds.
    pub enqueued_at: Option<f64>,
    /// Scheduled run time, epoch seconds.
    pub run_at: Option<f64>,
    /// Start of the latest attempt, epoch seconds.
    pub started_at: Option<f64>,
    /// Time of the terminal state, epoch seconds.
    pub finished_at: Option<f64>,
    /// Change counter: differs whenever anything else differs (1 for a new record).
    pub rev: u64,
}

/// Field names of the status hash, shared by the Rust writers and this reader.
pub mod field {
    /// `state`
    pub const STATE: &str = "state";
    /// `queue`
    pub const QUEUE: &str = "queue";
    /// `class`
    pub const CLASS: &str = "class";
    /// `attempt`
    pub const ATTEMPT: &str = "attempt";
    /// `progress`
    pub const PROGRESS: &str = "progress";
    /// `message`
    pub const MESSAGE: &str = "message";
    /// `result`
    pub const RESULT: &str = "result";
    /// `error`
    pub const ERROR: &str = "error";
    /// `owner`
    pub const OWNER: &str = "owner";
    /// `created_at`
    pub const CREATED_AT: &str = "created_at";
    /// `enqueued_at`
    pub const ENQUEUED_AT: &str = "enqueued_at";
    /// `run_at`
    pub const RUN_AT: &str = "run_at";
    /// `started_at`
    pub const STARTED_AT: &str = "started_at";
    /// `finished_at`
    pub const FINISHED_AT: &str = "finished_at";
    /// `rev`
    pub const REV: &str = "rev";
    /// The uniqueness key a unique job holds (`unique.rs`), so that a cancel can release it.
    pub const UNIQUE: &str = "unique";
    /// Until when (epoch ms, Redis's clock) a long poll watches the record: while it has not
    /// passed, every script that changes the record announces the change on
    /// [`Keys::status_channel`](crate::keys::Keys::status_channel). Not a change itself.
    pub const WATCHED_UNTIL: &str = "watched_until";
    /// Present (`1`) when the caller chose the job's id: the record then stays at its own
    /// key when the job succeeds, where an enqueue with the same id finds it, instead of
    /// being packed into the finished-record store ([`crate::finished_store`]).
    pub const GIVEN_ID: &str = "given";
}

fn num<T: FromStr>(h: &HashMap<String, String>, k: &str) -> Option<T> {
    h.get(k).and_then(|v| v.parse().ok())
}

/// A record's `rev` as every reader takes it: a fresh record is written without one, so its
/// absence means 1, and so does a value that is not a number (a crafted or damaged record),
/// so that the long poll and the record it answers with always agree.
///
/// ```
/// use queue_core::status::read_rev;
/// assert_eq!(read_rev(None), 1);
/// assert_eq!(read_rev(Some("4")), 4);
/// assert_eq!(read_rev(Some(" 5")), 1);
/// assert_eq!(read_rev(Some("-3")), 1);
/// ```
pub fn read_rev(raw: Option<&str>) -> u64 {
    raw.and_then(|v| v.parse().ok()).unwrap_or(1)
}

impl JobStatus {
    /// The stored result read as `R`: `Ok(None)` while there is none (not finished, or the
    /// handler returned `()`), [`Error::ResultType`](crate::Error::ResultType) when it
    /// does not read as `R`.
    ///
    /// ```
    /// # use std::collections::HashMap;
    /// use queue_core::JobStatus;
    /// use serde::Deserialize;
    ///
    /// #[derive(Deserialize, Debug, PartialEq)]
    /// struct Report { rows: u32 }
    ///
    /// # let hash: HashMap<String, String> = [("state", "succeeded"), ("result", r#"{"rows":3}"#)]
    /// #     .into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    /// let status = JobStatus::from_hash(hash).unwrap();
    /// assert_eq!(status.result_as::<Report>().unwrap(), Some(Report { rows: 3 }));
    /// assert!(status.result_as::<Vec<String>>().is_err());
    /// ```
    pub fn result_as<R: serde::de::DeserializeOwned>(&self) -> crate::Result<Option<R>> {
        match &self.result {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(value) => R::deserialize(value)
                .map(Some)
                .map_err(crate::Error::ResultType),
        }
    }

    /// Builds a record from `HGETALL`; `None` when the hash is empty or its state unknown.
    pub fn from_hash(mut h: HashMap<String, String>) -> Option<Self> {
        let state = h.get(field::STATE)?.parse().ok()?;
        Some(Self {
            state,
            attempt: num(&h, field::ATTEMPT).unwrap_or(0),
            progress: Progress {
                percent: num(&h, field::PROGRESS).unwrap_or(0),
                message: h.remove(field::MESSAGE),
            },
            result: h
                .get(field::RESULT)
                .and_then(|r| serde_json::from_str(r).ok()),
            created_at: num(&h, field::CREATED_AT),
            enqueued_at: num(&h, field::ENQUEUED_AT),
            run_at: num(&h, field::RUN_AT),
            started_at: num(&h, field::STARTED_AT),
            finished_at: num(&h, field::FINISHED_AT),
            rev: read_rev(h.get(field::REV).map(String::as_str)),
            queue: h.remove(field::QUEUE),
            class: h.remove(field::CLASS),
            error: h.remove(field::ERROR),
            owner: h.remove(field::OWNER),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_names() {
        for s in [
            JobState::Queued,
            JobState::Scheduled,
            JobState::Running,
            JobState::Retrying,
            JobState::Succeeded,
            JobState::Dead,
            JobState::Cancelled,
        ] {
            assert_eq!(s.as_str().parse::<JobState>().unwrap(), s);
        }
        assert!("nope".parse::<JobState>().is_err());
    }

    #[test]
    fn a_queued_record_without_rev_or_attempt_reads_as_rev_1_attempt_0() {
        let h: HashMap<String, String> = [("state", "queued"), ("created_at", "1760000000.5")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let s = JobStatus::from_hash(h).unwrap();
        assert_eq!((s.state, s.rev, s.attempt), (JobState::Queued, 1, 0));
        assert_eq!(s.created_at, Some(1_760_000_000.5));
    }

    #[test]
    fn empty_hash_is_no_record() {
        assert!(JobStatus::from_hash(HashMap::new()).is_none());
    }
}
