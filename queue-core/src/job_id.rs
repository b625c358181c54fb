//! Job ids: random, unguessable, and safe to put in URLs and Redis keys.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::{Error, Result};
use crate::queue_name::MAX_QUEUE_NAME_LEN;

/// Longest job id we accept from outside (Sidekiq's are 24 characters, ours 32), not
/// counting the queue an id in a queue's own slot carries in front (see
/// [`JobId::in_queue_slot`]), which may be as long as any queue name.
const MAX_JOB_ID_LEN: usize = 64;

/// The id of one job (Sidekiq's `jid`).
///
/// New ids are UUID v4 in simple form (32 hex digits, 122 random bits from `rand`'s
/// thread-local ChaCha CSPRNG, seeded by the operating system), so a status URL that
/// contains one cannot be guessed. Ids written by
/// other clients (Sidekiq makes 24 hex digits) are accepted as they are.
///
/// ```
/// use queue_core::JobId;
/// let id = JobId::new();
/// assert_eq!(id.as_str().len(), 32);
/// assert!(JobId::parse("not a/valid id").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A fresh random id.
    pub fn new() -> Self {
        // Encoding into a stack buffer skips the `fmt` machinery of `to_string` (bulk
        // enqueue makes one id per job).
        let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
        Self(
            uuid::Uuid::new_v4()
                .simple()
                .encode_lower(&mut buf)
                .to_owned(),
        )
    }

    /// Checks an id received from outside (a URL, a payload): 1-64 characters of
    /// `[A-Za-z0-9_-]`, and dots between them; an id in a queue's own slot names its queue
    /// before the last dot (see [`JobId::in_queue_slot`]), and that part may be as long as
    /// a queue name (128 characters).
    pub fn parse(s: &str) -> Result<Self> {
        // The bound applies to each part: a queue slot's ids carry the queue in front, and
        // every queue name the validator accepts must be able to take an id.
        let (queue, own) = s.rsplit_once('.').unwrap_or(("", s));
        let valid = !own.is_empty()
            && own.len() <= MAX_JOB_ID_LEN
            && queue.len() <= MAX_QUEUE_NAME_LEN
            && !s.starts_with('.')
            && !s.contains("..")
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(Error::InvalidJobId)
        }
    }

    /// The id of a job whose queue has its own cluster slot: `QUEUE.ID`, so that the status
    /// URL, a cancel or an inspector find the slot from the id alone. `id` has no dot (a
    /// fresh id or one that passed [`JobId::parse`] with none), so the queue is what comes
    /// before the last dot.
    ///
    /// ```
    /// use queue_core::JobId;
    /// let id = JobId::in_queue_slot("mail.ers", &JobId::parse("abc").unwrap()).unwrap();
    /// assert_eq!(id.as_str(), "mail.ers.abc");
    /// assert_eq!(id.queue_slot(), Some("mail.ers"));
    /// assert!(JobId::in_queue_slot("q", &JobId::parse("a.b").unwrap()).is_err());
    /// ```
    pub fn in_queue_slot(queue: &str, id: &JobId) -> Result<Self> {
        if id.0.contains('.') {
            return Err(Error::InvalidJobId);
        }
        Self::parse(&format!("{queue}.{}", id.0))
    }

    /// The queue named by an id made with [`JobId::in_queue_slot`]: what comes before the
    /// last dot, if there is one.
    pub fn queue_slot(&self) -> Option<&str> {
        queue_slot_of(&self.0)
    }

    /// An id as it was stored in a payload, unchecked, as deserialization takes it: other
    /// clients' ids need not pass [`JobId::parse`], and their status records use them as-is.
    pub(crate) fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// [`JobId::queue_slot`] of an id as text.
pub(crate) fn queue_slot_of(id: &str) -> Option<&str> {
    id.rsplit_once('.').map(|(queue, _)| queue)
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_distinct_uuid_v4() {
        let a = JobId::new();
        let b = JobId::new();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(a.as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn accepts_sidekiq_ids_and_rejects_unsafe_ones() {
        assert!(JobId::parse("b4a577edbccf1d805744efa9").is_ok());
        assert!(JobId::parse("mailers.b4a577ed").is_ok());
        // The longest queue name in front of the longest plain id.
        assert!(JobId::parse(&format!("{}.{}", "q".repeat(128), "a".repeat(64))).is_ok());
        for bad in [
            "",
            "a b",
            "../x",
            "x:y",
            &"a".repeat(65),
            &format!("{}.a", "q".repeat(129)),
            &format!("q.{}", "a".repeat(65)),
            "é",
            ".",
            "..",
            ".a",
            "a.",
            "a..b",
        ] {
            assert!(JobId::parse(bad).is_err(), "{bad}");
        }
    }
}
