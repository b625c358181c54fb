//! What a handler returns when it fails, and what should happen next.
//!
//! The rule for what is stored and what is only logged is on [`Failure`].

use queue_core::redact::redact_credentials;
use std::fmt;
use std::time::Duration;

/// Class shown for an error of the queue itself (Redis, the worker) that a handler passed on.
pub const QUEUE_ERROR_CLASS: &str = "QueueError";
/// Class shown for a panic.
pub const PANIC_CLASS: &str = "Panic";

/// A job attempt failed. The variant says what happens next.
///
/// Any `std::error::Error` converts into a [`Failure`] ([`Failure::Retry`] for the job's own
/// errors), so handlers can use `?`.
///
/// # What is shown, and what is only logged
/// The status record (read by whoever holds the status URL) and the retry and dead sets
/// show the **job's own error**, as Sidekiq's UI does: `error_class` and `error_message`,
/// and in the status record `"<class>: <message>"`.
/// - A [`Failure`] the handler builds ([`Failure::retry`], [`Failure::dead`],
///   [`Failure::retry_in`]) is shown as given.
/// - An error the handler passes on with `?` is shown with its type's name as the class and
///   its `Display` as the message.
/// - A timeout is shown as class `Timeout` with the limit: that text is the queue's own.
///
/// Internal text is **logged only**, and the stored error says where to look
/// ([`Failure::Internal`]):
/// - a panic (class `Panic`): its payload can quote any value the code held;
/// - an error of the queue itself that the handler passed on with `?` (class
///   [`QUEUE_ERROR_CLASS`]), such as Redis refusing `ctx.progress` at maxmemory: its text
///   names scripts, keys and server state.
///
/// Errors the worker meets while settling a job (Redis unreachable, a script refused) are
/// never written into the job: they are logged, and the job is retried or recovered.
/// Everything stored or logged first goes through
/// [`redact_credentials`](queue_core::redact::redact_credentials), so
/// `redis://user:pass@host` becomes `redis://user:***@host`.
///
/// ```
/// use queue_worker::Failure;
/// fn parse(s: &str) -> Result<u32, Failure> {
///    Ok(s.parse::<u32>()?) // a parse error becomes a retryable failure
/// }
/// assert!(matches!(parse("x"), Err(Failure::Retry { .. })));
/// ```
#[derive(Debug)]
pub enum Failure {
    /// Retry with the usual growing delay (until the job's retries run out).
    Retry {
        /// Error kind, stored as Sidekiq's `error_class`.
        class: String,
        /// Error message.
        message: String,
    },
    /// Retry after this delay instead of the usual one.
    RetryIn {
        /// Delay before the next attempt.
        delay: Duration,
        /// Error message.
        message: String,
    },
    /// Do not retry: the job goes straight to the dead set.
    Dead {
        /// Error message.
        message: String,
    },
    /// Not the job's own error: a panic, or an error of the queue itself passed on with `?`.
    /// Retried like [`Failure::Retry`]; the stored error shows only its class and a fixed
    /// message, and the detail goes to the worker log.
    Internal(InternalFailure),
    /// A limiter (`limiter.rs`) refused the job: it goes back to the schedule set for about
    /// `wait`, without using a retry or counting a failure.
    OverLimit {
        /// The limiter's name.
        limiter: String,
        /// How long until an admission may be free, when the limiter knows.
        wait: Option<Duration>,
        /// `over limiter <name>`.
        message: String,
    },
}

/// What ended an attempt from outside the job's own logic (see [`Failure::Internal`]).
#[derive(Debug)]
pub struct InternalFailure {
    class: &'static str,
    shown: &'static str,
    detail: String,
}

impl InternalFailure {
    /// The detail, for the worker log only (credentials in URLs redacted).
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl Failure {
    /// A retryable failure with a message.
    pub fn retry(message: impl Into<String>) -> Self {
        Failure::Retry {
            class: "Error".to_owned(),
            message: message.into(),
        }
    }

    /// A failure that sends the job to the dead set at once.
    pub fn dead(message: impl Into<String>) -> Self {
        Failure::Dead {
            message: message.into(),
        }
    }

    /// Over limiter `limiter`: rescheduled after about `wait` without using a retry.
    pub fn over_limit(limiter: &str, wait: Option<Duration>) -> Self {
        Failure::OverLimit {
            limiter: limiter.to_owned(),
            wait,
            message: format!("over limiter {limiter}"),
        }
    }

    /// A retryable failure with an explicit delay.
    pub fn retry_in(delay: Duration, message: impl Into<String>) -> Self {
        Failure::RetryIn {
            delay,
            message: message.into(),
        }
    }

    /// Sidekiq's `error_class` for this failure.
    pub fn class(&self) -> &str {
        match self {
            Failure::Retry { class, .. } => class,
            Failure::RetryIn { .. } => "Error",
            Failure::Dead { .. } => "Error",
            Failure::Internal(internal) => internal.class,
            Failure::OverLimit { .. } => "OverLimit",
        }
    }

    /// The message that is stored and shown (for [`Failure::Internal`], a fixed text).
    pub fn message(&self) -> &str {
        match self {
            Failure::Retry { message, .. }
            | Failure::RetryIn { message, .. }
            | Failure::Dead { message }
            | Failure::OverLimit { message, .. } => message,
            Failure::Internal(internal) => internal.shown,
        }
    }

    pub(crate) fn with_class(class: &str, message: impl Into<String>) -> Self {
        Failure::Retry {
            class: class.to_owned(),
            message: message.into(),
        }
    }

    /// A panic: its payload (`detail`) is logged, never stored.
    pub(crate) fn panic(detail: String) -> Self {
        Failure::Internal(InternalFailure {
            class: PANIC_CLASS,
            shown: "the job panicked; the details are in the worker log",
            detail: redact_credentials(&detail).into_owned(),
        })
    }

    /// An error of the queue itself that a handler passed on: logged, never stored.
    fn queue_error(detail: String) -> Self {
        Failure::Internal(InternalFailure {
            class: QUEUE_ERROR_CLASS,
            shown: "the job met a queue or Redis error; the details are in the worker log",
            detail: redact_credentials(&detail).into_owned(),
        })
    }

    /// This failure with credentials in URLs redacted from what is stored.
    pub(crate) fn redacted(self) -> Self {
        let redact = |text: String| match redact_credentials(&text) {
            std::borrow::Cow::Borrowed(_) => text,
            std::borrow::Cow::Owned(clean) => clean,
        };
        match self {
            Failure::Retry { class, message } => Failure::Retry {
                class: redact(class),
                message: redact(message),
            },
            Failure::RetryIn { delay, message } => Failure::RetryIn {
                delay,
                message: redact(message),
            },
            Failure::Dead { message } => Failure::Dead {
                message: redact(message),
            },
            internal @ Failure::Internal(_) => internal,
            over @ Failure::OverLimit { .. } => over,
        }
    }
}

/// Whether `e`, or an error it wraps, is the queue's own (Redis, the worker's setup).
fn is_queue_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if e.is::<crate::Error>() || e.is::<queue_core::Error>() || e.is::<redis::RedisError>() {
            return true;
        }
        next = e.source();
    }
    false
}

impl<E: std::error::Error + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        if is_queue_error(&e) {
            return Failure::queue_error(e.to_string());
        }
        let class = std::any::type_name::<E>()
            .rsplit("::")
            .next()
            .unwrap_or("Error")
            .to_owned();
        Failure::Retry {
            class,
            message: e.to_string(),
        }
    }
}

/// Shown in logs: the detail too, credentials redacted.
pub(crate) struct Shown<'a>(pub(crate) &'a Failure);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.0 {
            Failure::Internal(internal) => internal.detail(),
            other => other.message(),
        };
        write!(
            f,
            "{}: {}",
            redact_credentials(self.0.class()),
            redact_credentials(text)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapper(crate::Error);

    impl fmt::Display for Wrapper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "report failed: {}", self.0)
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_queues_own_errors_are_internal_even_when_wrapped() {
        let core = || queue_core::Error::Timeout(Duration::from_secs(2));
        for failure in [
            Failure::from(core()),
            Failure::from(crate::Error::from(core())),
            Failure::from(Wrapper(crate::Error::from(core()))),
        ] {
            assert_eq!(failure.class(), QUEUE_ERROR_CLASS);
            assert!(!failure.message().contains("2s"), "{}", failure.message());
            assert!(Shown(&failure).to_string().contains("2s"));
        }
        let own = Failure::from("x".parse::<u32>().unwrap_err());
        assert_eq!(own.class(), "ParseIntError");
        assert_eq!(own.message(), "invalid digit found in string");
    }

    #[test]
    fn stored_and_logged_text_has_no_password() {
        let failure = Failure::retry("redis://u:pw@h down").redacted();
        assert_eq!(failure.message(), "redis://u:***@h down");
        let panic = Failure::panic("at redis://u:pw@h".into());
        assert_eq!(Shown(&panic).to_string(), "Panic: at redis://u:***@h");
        assert!(!panic.message().contains("redis"));
    }
}
