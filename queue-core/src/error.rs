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
    /// Redis did not answer within the configured timeout.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis could not be reached (refused, reset, or reconnecting).
    #[error("Redis is unreachable: {0}")]
    Unavailable(#[source] redis::RedisError),
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
}

impl From<redis::RedisError> for Error {
    fn from(e: redis::RedisError) -> Self {
        if e.code() == Some("OOM") {
            Error::OutOfMemory(e)
        } else if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_unrecoverable_error()
        {
            Error::Unavailable(e)
        } else {
            Error::Redis(e)
        }
    }
}

impl Error {
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
