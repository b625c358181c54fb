//! The one error type of `queue-core`.

use std::time::Duration;

/// Everything that can go wrong in `queue-core`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The job's arguments could not be turned into JSON; nothing was written.
    #[error("job arguments failed to serialize: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The encoded job is larger than the configured cap; nothing was written.
    #[error("job payload is {size} bytes, over the {limit}-byte limit")]
    PayloadTooLarge {
        /// Size of the encoded job in bytes.
        size: usize,
        /// The configured cap.
        limit: usize,
    },
    /// A queue name that is empty, too long, or has characters outside `[A-Za-z0-9_.-]`.
    #[error("invalid queue name {0:?}: use 1-128 characters from A-Z a-z 0-9 _ . -")]
    InvalidQueueName(String),
    /// A job id that is empty, too long or has characters outside `[A-Za-z0-9_-]`.
    #[error("invalid job id")]
    InvalidJobId,
    /// A worker process identity that is empty or too long to be one.
    #[error("invalid process identity")]
    InvalidIdentity,
    /// A periodic entry's name is empty, too long, or has characters outside `[A-Za-z0-9_-]`.
    #[error("invalid periodic entry name {0:?}")]
    InvalidPeriodicName(String),
    /// A stored job that is not valid Sidekiq job JSON.
    #[error("malformed job payload: {0}")]
    MalformedPayload(#[source] serde_json::Error),
    /// The stored arguments do not match the job type's argument type.
    #[error("arguments of job {class} do not match its type: {source}")]
    ArgumentMismatch {
        /// Sidekiq class name of the job.
        class: String,
        /// Why deserialization failed.
        #[source]
        source: serde_json::Error,
    },
    /// Neither `REDIS_TLS_URL` nor `REDIS_URL` is set.
    #[error("no Redis URL: set REDIS_TLS_URL or REDIS_URL")]
    MissingRedisUrl,
    /// The Redis URL could not be parsed (the URL itself is not repeated: it may hold a password).
    #[error("invalid Redis URL: {0}")]
    InvalidRedisUrl(String),
    /// Cluster mode was asked for with a key prefix that has no hash tag: the app's keys
    /// would spread over slots and its multi-key scripts would be refused.
    #[error("in cluster mode the key prefix must carry a hash tag such as {{app}}:, not {0:?}")]
    ClusterPrefixWithoutHashTag(String),
    /// A configuration value that cannot be used (named, with why).
    #[error("invalid setting {name}: {reason}")]
    InvalidSetting {
        /// The variable or option.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Redis did not answer within the configured timeout.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis could not be reached (refused, reset, or reconnecting).
    #[error("Redis is unreachable: {0}")]
    Unavailable(#[source] redis::RedisError),
    /// The TLS handshake failed: the server's certificate did not verify (a self-signed
    /// one needs [`ClientConfig::accept_invalid_certs`](crate::ClientConfig::accept_invalid_certs)),
    /// or the server does not speak TLS. A configuration problem, so not transient.
    #[error("TLS handshake with Redis failed: {0}")]
    Tls(#[source] redis::RedisError),
    /// Redis is at `maxmemory` under `noeviction` and refuses writes.
    #[error("Redis is out of memory and refused the write: {0}")]
    OutOfMemory(#[source] redis::RedisError),
    /// Any other error reported by Redis.
    #[error("redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// A script answered with something its caller does not understand.
    #[error("script {script} returned unexpected reply {reply}")]
    UnexpectedScriptReply {
        /// The script's file name.
        script: &'static str,
        /// The reply, debug-formatted.
        reply: String,
    },
    /// A key that a script must write holds another type than the script expects (another
    /// app's key under the same prefix, say): the script wrote nothing, so the job is still
    /// where it was. Not transient: someone has to remove or rename the key.
    #[error("script {script}: key {key} holds the wrong type of value; nothing was written")]
    WrongType {
        /// The script's file name.
        script: &'static str,
        /// The key that holds the wrong type.
        key: String,
    },
    /// An extra job field ([`EnqueueOptions::extra`](crate::EnqueueOptions::extra)) named
    /// like one of the job JSON's own fields (`jid`, `args`, `retry_count`, …); nothing was
    /// written.
    #[error("extra job field {0:?} would overwrite a field of the job itself")]
    ReservedField(String),
    /// A client middleware refused the push; nothing was written.
    #[error("push refused by middleware: {0}")]
    Rejected(String),
    /// A job run inline by [`testing::FakeClient`](crate::testing::FakeClient) failed.
    #[error("inline job {class} failed: {message}")]
    InlineJobFailed {
        /// Sidekiq class name of the job.
        class: String,
        /// What the failure said.
        message: String,
    },
    /// A stored result that does not read as the type asked for
    /// ([`JobStatus::result_as`](crate::JobStatus::result_as)).
    #[error("job result does not match the type asked for: {0}")]
    ResultType(#[source] serde_json::Error),
    /// A value read from Redis that is not what its key should hold (a counter that is not
    /// a non-negative integer, say), or counts whose sum overflows.
    #[error("unexpected value at {key}: {value}")]
    UnexpectedValue {
        /// The key it was read from.
        key: String,
        /// The value, debug-formatted.
        value: String,
    },
}

/// Server replies that mean "not now" (a restart loading its data, a failover in progress,
/// a busy script): the same call succeeds later.
const TRANSIENT_SERVER_CODES: [&str; 6] = [
    "LOADING",
    "READONLY",
    "TRYAGAIN",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "BUSY",
];

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        if e.code() == Some("OOM") {
            Error::OutOfMemory(e)
        } else if is_tls_failure(&e) {
            // Checked before the I/O kinds below: a refused certificate arrives as an I/O
            // error, and retrying it can never succeed.
            Error::Tls(e)
        } else if e.kind() == redis::ErrorKind::AuthenticationFailed {
            // A wrong password never fixes itself: not transient.
            Error::Redis(e)
        } else if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error()
            || e.code()
                .is_some_and(|c| TRANSIENT_SERVER_CODES.contains(&c))
        {
            Error::Unavailable(e)
        } else {
            Error::Redis(e)
        }
    }
}

/// Whether `e` is a failed TLS handshake: rustls reports it as an I/O error wrapping a
/// `rustls::Error` (the certificate did not verify, or the peer does not speak TLS).
fn is_tls_failure(e: &redis::RedisError) -> bool {
    use std::error::Error as StdError;
    use std::sync::Arc;
    let Some(source) = StdError::source(e) else {
        return false;
    };
    // redis-rs keeps the I/O error behind an `Arc<dyn Error>`; accept it bare too.
    let io = source.downcast_ref::<std::io::Error>().or_else(|| {
        source
            .downcast_ref::<Arc<dyn StdError + Send + Sync>>()
            .and_then(|inner| inner.downcast_ref::<std::io::Error>())
    });
    io.and_then(std::io::Error::get_ref)
        .is_some_and(|inner| inner.is::<rustls::Error>())
}

impl Error {
    /// Maps an error of a call bounded by `timeout`: redis-rs's own response or connection
    /// timeout (set to the same bound) becomes [`Error::Timeout`], like the outer deadline,
    /// so that callers see one error for "Redis did not answer in time".
    pub fn from_bounded(e: redis::RedisError, timeout: Duration) -> Self {
        if e.is_timeout() {
            Error::Timeout(timeout)
        } else {
            Error::from(e)
        }
    }

    /// Whether retrying the same call later may succeed (Redis down, slow or full).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Timeout(_) | Error::Unavailable(_) | Error::OutOfMemory(_)
        )
    }
}

/// Result alias of `queue-core`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn a_refused_certificate_is_a_tls_error_and_not_transient() {
        let io = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let err = Error::from(redis::RedisError::from(io));
        assert!(matches!(err, Error::Tls(_)), "{err:?}");
        assert!(!err.is_transient());
    }

    #[test]
    fn redis_rs_timeouts_of_a_bounded_call_are_timeouts() {
        let t = Duration::from_millis(300);
        let io = io::Error::new(io::ErrorKind::TimedOut, "timed out");
        let err = Error::from_bounded(redis::RedisError::from(io), t);
        assert!(matches!(err, Error::Timeout(d) if d == t), "{err:?}");
        let io = io::Error::new(io::ErrorKind::ConnectionReset, "reset");
        let err = Error::from_bounded(redis::RedisError::from(io), t);
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    }

    #[test]
    fn other_io_errors_are_unavailable() {
        let io = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        let err = Error::from(redis::RedisError::from(io));
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(err.is_transient());
    }
}
