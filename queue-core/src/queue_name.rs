//! Queue-name validation, shared by enqueue and the worker's configuration.

use crate::error::{Error, Result};

/// Longest queue name accepted.
pub(crate) const MAX_QUEUE_NAME_LEN: usize = 128;

/// Checks that `name` is 1-128 characters from `[A-Za-z0-9_.-]`.
///
/// Queue names end up in Redis keys, metrics labels and URLs, so anything else is refused.
///
/// ```
/// use queue_core::validate_queue_name;
/// assert!(validate_queue_name("critical").is_ok());
/// assert!(validate_queue_name("bad name").is_err());
/// ```
pub fn validate_queue_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_QUEUE_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidQueueName(name.to_owned()))
    }
}
