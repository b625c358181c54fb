//! Retry delays and the truncation of stored error text.

use std::time::Duration;

/// Longest error message stored with a job (the rest is cut so a noisy failure cannot fill Redis).
pub const MAX_ERROR_BYTES: usize = 4096;

/// Delay before retry number `retry_count` (0 for the first retry), without jitter:
/// Sidekiq's `count⁴ + 15` seconds, so 25 retries span about three weeks.
///
/// ```
/// use queue_worker::retry::backoff;
/// assert_eq!(backoff(0).as_secs(), 15);
/// assert_eq!(backoff(2).as_secs(), 31);
/// ```
pub fn backoff(retry_count: u32) -> Duration {
    let n = u64::from(retry_count);
    Duration::from_secs(n.saturating_pow(4).saturating_add(15))
}

/// Longest wait before a retry: a week, above Sidekiq's longest (about four and a half days
/// before the 25th retry) and well inside a live status record's 30 days, so a job with a
/// huge `retry` limit still comes due and keeps its record.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);

/// [`backoff`] plus random jitter of up to `10 × (count + 1)` seconds, so that jobs that
/// failed together do not all retry together; at most [`MAX_RETRY_DELAY`].
///
/// The count comes from the job's payload, which anyone with Redis access can write: the
/// sum saturates instead of panicking (a count of 70,000 is already past `u64` seconds).
///
/// ```
/// use queue_worker::retry::{backoff_with_jitter, MAX_RETRY_DELAY};
/// assert_eq!(backoff_with_jitter(u32::MAX), MAX_RETRY_DELAY);
/// ```
pub fn backoff_with_jitter(retry_count: u32) -> Duration {
    // At most 10,000 × 2³² ms: no overflow in u64.
    let spread_ms = 10_000 * (u64::from(retry_count) + 1);
    backoff(retry_count)
        .saturating_add(Duration::from_millis(fastrand::u64(0..spread_ms)))
        .min(MAX_RETRY_DELAY)
}

/// Longest class name a log line quotes: a crafted entry may carry a megabyte.
const MAX_LOGGED_NAME_BYTES: usize = 200;

/// `name` (a class read from a queue entry) cut for a log line, on a character boundary.
pub(crate) fn for_log(name: &str) -> &str {
    if name.len() <= MAX_LOGGED_NAME_BYTES {
        return name;
    }
    let mut end = MAX_LOGGED_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Cuts `text` to at most [`MAX_ERROR_BYTES`] bytes on a character boundary.
///
/// ```
/// use queue_worker::retry::truncate_error;
/// assert_eq!(truncate_error("short"), "short");
/// assert!(truncate_error(&"é".repeat(5000)).len() <= 4096 + 3);
/// ```
pub fn truncate_error(text: &str) -> String {
    if text.len() <= MAX_ERROR_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_ERROR_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_spread() {
        for count in [0, 3, 24] {
            let d = backoff_with_jitter(count);
            assert!(d >= backoff(count));
            assert!(d < backoff(count) + Duration::from_secs(10 * (u64::from(count) + 1)));
        }
    }

    /// Counts read from a crafted payload: the delay saturates rather than panic.
    #[test]
    fn logged_names_are_cut_on_a_character_boundary() {
        assert_eq!(for_log("Short"), "Short");
        let long = "é".repeat(1 << 19);
        let cut = for_log(&long);
        assert!(cut.len() <= MAX_LOGGED_NAME_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn huge_counts_saturate_at_the_longest_delay() {
        for count in [70_000, u32::MAX] {
            assert_eq!(backoff(count).as_secs(), u64::MAX);
            assert_eq!(backoff_with_jitter(count), MAX_RETRY_DELAY);
        }
        // Sidekiq's own schedule is untouched: the 25th retry waits about 4.5 days.
        assert!(backoff_with_jitter(24) < MAX_RETRY_DELAY);
    }
}
