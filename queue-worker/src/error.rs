//! The one error type of `queue-worker`.

/// What can stop a worker from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A Redis or configuration error from `queue-core`.
    #[error(transparent)]
    Core(#[from] queue_core::Error),
    /// An environment variable has a value the worker cannot use.
    #[error("invalid {name}: {reason}")]
    InvalidSetting {
        /// The variable or setting.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The worker was built without any queue to work on.
    #[error("no queues to work on")]
    NoQueues,
    /// Queues spread over a cluster's slots: the worker could register in none of its queues'
    /// slots (each holds a key of another type where the registry belongs; the log names them).
    #[error("could register in none of the queues' slots")]
    NoQueueSlot,
    /// The Redis server is older than the worker's scripts need (6.2: `LMOVE`, `ZRANGE BYSCORE`).
    #[error("Redis {version} is too old: the worker needs Redis 6.2 or newer")]
    UnsupportedRedis {
        /// The server's `redis_version`.
        version: String,
    },
    /// The metrics listener could not bind its address (`WORKER_METRICS_ADDR`).
    #[error("cannot listen for metrics on {addr}: {source}")]
    MetricsListener {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// Installing the signal handlers failed.
    #[error("cannot listen for signals: {0}")]
    Signals(#[source] std::io::Error),
}

/// Result alias of `queue-worker`.
pub type Result<T, E = Error> = std::result::Result<T, E>;
