//! Unique jobs: at most one job per uniqueness key, for a lifetime you choose.
//!
//! A unique job takes a lock, `P unique:<key>`, whose value is its job id, in the same script
//! that pushes it (`enqueue_unique.lua`: `SET NX PX`, then the push). A second enqueue with the
//! same key while the lock is held writes nothing and returns the **holder's** id, so a web
//! handler answering `202` points the client at the status URL of the job that will run.
//!
//! The key is, by default, a SHA-256 of the class, the queue and the JSON arguments (the same
//! job twice), or one the caller gives ([`EnqueueOptions::unique_key`], e.g. `"report:42"`).
//! The lock's lifetime:
//! - [`UniqueUntil::Started`]: released when a worker starts the job (a later enqueue queues
//!   a fresh run while this one works);
//! - [`UniqueUntil::Succeeded`]: released when it succeeds (retries keep it);
//! - [`UniqueUntil::Expired`]: held for the TTL whatever happens (a throttle).
//!
//! In every case the TTL bounds the lock (a scheduled job's TTL counts from its run time), and
//! the lock is released when the job dies or is cancelled. A release deletes the lock only
//! while it still names this job (compare and delete in `unique_release.lua`), so a late
//! release never frees a newer job's lock.
//!
//! ```no_run
//! use queue_core::{Client, EnqueueOptions, Job, Unique};
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//!
//! #[derive(Serialize, Deserialize)]
//! struct NightlyReport { account: u64 }
//! impl Job for NightlyReport {
//!     const NAME: &'static str = "NightlyReport";
//!     // One report per account at a time, by class + queue + arguments.
//!     const UNIQUE: Option<Unique> = Some(Unique::until_succeeded(Duration::from_secs(3600)));
//! }
//!
//! # async fn demo(client: Client) -> queue_core::Result<()> {
//! let first = client.enqueue(&NightlyReport { account: 7 }).await?;
//! let again = client.enqueue(&NightlyReport { account: 7 }).await?;
//! assert_eq!(first, again); // the same status URL
//!
//! // An explicit key and lifetime for one enqueue: one resend per user per minute.
//! let opts = EnqueueOptions::new()
//!     .unique_by("resend:user-42", Unique::for_ttl(Duration::from_secs(60)));
//! client.enqueue_with(&NightlyReport { account: 7 }, opts).await?;
//! # Ok(()) }
//! ```
//!
//! [`EnqueueOptions::unique_key`]: crate::EnqueueOptions::unique_key

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

use crate::status::JobState;
use std::time::Duration;

/// When a unique job gives its key back (besides dying, being cancelled, or its TTL passing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniqueUntil {
    /// When a worker starts it (Sidekiq Enterprise's `unique_until: :start`).
    Started,
    /// When it succeeds; its retries keep the key (Sidekiq Enterprise's default).
    Succeeded,
    /// Only when the TTL passes: at most one such job per TTL.
    Expired,
}

impl UniqueUntil {
    /// The value stored in the job's `unique_until` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "start",
            Self::Succeeded => "success",
            Self::Expired => "ttl",
        }
    }

    /// Whether a job in `state` no longer holds its key under this lifetime: it was given
    /// back at the start, the success, the death, the cancel or the expiry that led there.
    /// A key still naming such a job is left over (its release failed, for example while
    /// Redis stalled), and the next enqueue may take it over.
    ///
    /// ```
    /// # use queue_core::unique::UniqueUntil;
    /// # use queue_core::JobState;
    /// assert!(UniqueUntil::Started.released_in(JobState::Running));
    /// assert!(!UniqueUntil::Succeeded.released_in(JobState::Retrying));
    /// assert!(UniqueUntil::Succeeded.released_in(JobState::Dead));
    /// assert!(!UniqueUntil::Expired.released_in(JobState::Succeeded));
    /// ```
    pub fn released_in(self, state: JobState) -> bool {
        match state {
            JobState::Queued | JobState::Scheduled => false,
            JobState::Running | JobState::Retrying => self == Self::Started,
            JobState::Succeeded => self != Self::Expired,
            JobState::Dead | JobState::Cancelled | JobState::Expired => true,
        }
    }

    /// Reads a stored `unique_until` value.
    ///
    /// ```
    /// # use queue_core::unique::UniqueUntil;
    /// assert_eq!(UniqueUntil::parse("start"), Some(UniqueUntil::Started));
    /// assert_eq!(UniqueUntil::parse("later"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "start" => Some(Self::Started),
            "success" => Some(Self::Succeeded),
            "ttl" => Some(Self::Expired),
            _ => None,
        }
    }
}

/// How a job is unique: the lifetime of its key and the TTL that bounds it.
///
/// ```
/// use queue_core::unique::{Unique, UniqueUntil};
/// use std::time::Duration;
/// const NIGHTLY: Unique = Unique::until_succeeded(Duration::from_secs(3600));
/// assert_eq!(NIGHTLY.until, UniqueUntil::Succeeded);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unique {
    /// When the key is given back.
    pub until: UniqueUntil,
    /// The longest the key is held (counted from the run time for a scheduled job).
    pub ttl: Duration,
}

impl Unique {
    /// Unique until a worker starts it, at most `ttl`.
    pub const fn until_started(ttl: Duration) -> Self {
        Self {
            until: UniqueUntil::Started,
            ttl,
        }
    }

    /// Unique until it succeeds, at most `ttl`.
    pub const fn until_succeeded(ttl: Duration) -> Self {
        Self {
            until: UniqueUntil::Succeeded,
            ttl,
        }
    }

    /// Unique for `ttl`, whatever happens to it (unless it dies or is cancelled).
    pub const fn for_ttl(ttl: Duration) -> Self {
        Self {
            until: UniqueUntil::Expired,
            ttl,
        }
    }
}

/// Field of the job JSON naming its uniqueness key.
pub const UNIQUE_KEY_FIELD: &str = "unique_key";
/// Field of the job JSON naming when its key is given back ([`UniqueUntil::as_str`]).
pub const UNIQUE_UNTIL_FIELD: &str = "unique_until";

/// The default uniqueness key: `<class>:<sha256 hex of queue and arguments>`, so the same job
/// (class, queue, arguments) enqueued twice has the same key. The arguments are untrusted, so
/// a cryptographic hash: nobody can craft arguments that collide with another job's key.
///
/// ```
/// # use queue_core::unique::default_key;
/// let a = default_key("Report", "default", &[serde_json::json!(42)]);
/// assert_eq!(a, default_key("Report", "default", &[serde_json::json!(42)]));
/// assert_ne!(a, default_key("Report", "default", &[serde_json::json!(43)]));
/// assert!(a.starts_with("Report:"));
/// ```
pub fn default_key(class: &str, queue: &str, args: &[Value]) -> String {
    let mut hash = Sha256::new();
    hash.update(queue.as_bytes());
    // A separator that cannot appear in a queue name, so ("a", "b…") ≠ ("ab", "…").
    hash.update(b"\0");
    // serde_json writes a Value the same way every time (maps keep their order).
    hash.update(serde_json::to_vec(args).unwrap_or_default());
    let digest = hash.finalize();
    let mut key = String::with_capacity(class.len() + 1 + 64);
    key.push_str(class);
    key.push(':');
    for byte in digest.iter() {
        let _ = write!(key, "{byte:02x}");
    }
    key
}
