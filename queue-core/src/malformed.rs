//! Entries that are not jobs: what is buried in the dead set in their place.

use serde_json::{Map, Value};

use crate::job_id::JobId;
use crate::payload::{JobPayload, Retry};
use crate::timestamp::Timestamp;

/// Class written for queue entries that are not job JSON.
pub const MALFORMED_CLASS: &str = "queue::MalformedJob";
/// Error class written for them.
pub const MALFORMED_ERROR_CLASS: &str = "MalformedPayload";
/// How much of a malformed entry is kept in the dead set.
pub const MALFORMED_RAW_BYTES: usize = 4096;

/// The job buried in the dead set for `raw`, an entry that is not a job: Sidekiq's dead-set
/// tools can show it, with the first [`MALFORMED_RAW_BYTES`] of the entry (as lossy text:
/// it may not even be UTF-8) and `reason`.
///
/// ```
/// use queue_core::malformed::{malformed_wrapper, MALFORMED_CLASS};
/// let job = malformed_wrapper(b"{not json", "not valid job JSON", queue_core::Timestamp::now());
/// assert_eq!(job.class, MALFORMED_CLASS);
/// assert_eq!(job.extra["raw"], "{not json");
/// ```
pub fn malformed_wrapper(raw: &[u8], reason: &str, now: Timestamp) -> JobPayload {
    let cut = raw.len().min(MALFORMED_RAW_BYTES);
    let mut extra = Map::new();
    extra.insert(
        "raw".to_owned(),
        Value::String(String::from_utf8_lossy(&raw[..cut]).into_owned()),
    );
    JobPayload {
        class: MALFORMED_CLASS.to_owned(),
        args: Vec::new(),
        jid: JobId::new(),
        queue: "dead".to_owned(),
        retry: Retry::Disabled,
        created_at: Some(now),
        enqueued_at: None,
        retry_count: Some(0),
        error_message: Some(reason.to_owned()),
        error_class: Some(MALFORMED_ERROR_CLASS.to_owned()),
        failed_at: Some(now),
        retried_at: None,
        recovered: None,
        deferred: None,
        unknown_class: None,
        handed_back: None,
        recovered_from: None,
        extra,
    }
}
