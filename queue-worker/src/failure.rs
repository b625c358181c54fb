//! What a handler returns when it fails, and what should happen next.

use std::fmt;
use std::time::Duration;

/// A job attempt failed. The variant says what happens next.
///
/// Any `std::error::Error` converts into [`Failure::Retry`], so handlers can use `?`.
///
/// ```
/// use queue_worker::Failure;
/// fn parse(s: &str) -> Result<u32, Failure> {
///     Ok(s.parse::<u32>()?) // a parse error becomes a retryable failure
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
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Retry { message, .. }
            | Failure::RetryIn { message, .. }
            | Failure::Dead { message } => message,
        }
    }

    pub(crate) fn with_class(class: &str, message: impl Into<String>) -> Self {
        Failure::Retry {
            class: class.to_owned(),
            message: message.into(),
        }
    }
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Self {
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

/// Shown in logs.
pub(crate) struct Shown<'a>(pub(crate) &'a Failure);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.class(), self.0.message())
    }
}
