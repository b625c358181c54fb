//! The loadtest's one error type.

use crate::options::USAGE;
use std::fmt;

/// What went wrong; every variant says where.
#[derive(Debug)]
pub(crate) enum LoadError {
    Usage(String),
    Queue(queue_core::Error),
    Worker(queue_worker::Error),
    Redis(redis::RedisError),
    Io {
        what: &'static str,
        source: std::io::Error,
    },
    WorkerProcess {
        pid: u32,
        expected: &'static str,
        got: String,
    },
    Timeout(&'static str),
    /// `--handoffs`: perf stat failed or printed what cannot be read.
    Perf(String),
    MissingRedisUrl,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(msg) => write!(f, "{msg}\n\n{USAGE}"),
            Self::Queue(e) => write!(f, "queue: {e}"),
            Self::Worker(e) => write!(f, "worker: {e}"),
            Self::Redis(e) => write!(f, "redis: {e}"),
            Self::Io { what, source } => write!(f, "{what}: {source}"),
            Self::WorkerProcess { pid, expected, got } => {
                write!(
                    f,
                    "worker process {pid}: expected {expected:?}, got {got:?}"
                )
            }
            Self::Timeout(what) => write!(f, "timed out: {what}"),
            Self::Perf(msg) => write!(f, "perf: {msg}"),
            Self::MissingRedisUrl => write!(f, "worker mode needs REDIS_URL or REDIS_CLUSTER_URLS"),
        }
    }
}

impl std::error::Error for LoadError {}

impl From<queue_core::Error> for LoadError {
    fn from(e: queue_core::Error) -> Self {
        Self::Queue(e)
    }
}

impl From<queue_worker::Error> for LoadError {
    fn from(e: queue_worker::Error) -> Self {
        Self::Worker(e)
    }
}

impl From<redis::RedisError> for LoadError {
    fn from(e: redis::RedisError) -> Self {
        Self::Redis(e)
    }
}

pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> LoadError {
    move |source| LoadError::Io { what, source }
}

pub(crate) type Result<T, E = LoadError> = std::result::Result<T, E>;
