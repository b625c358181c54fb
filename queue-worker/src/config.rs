//! Worker settings, with the platform-driven defaults.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::queues::Queues;

/// Default time running jobs get to finish after SIGTERM (the platform kills at 30 s).
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);
/// Longest shutdown timeout accepted: after it come up to 2 s of hand-back, 2 s of last
/// acks and the final clean-up, all before the platform's SIGKILL at 30 s.
pub const MAX_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(25);

/// Most jobs one fetch may take: one script call moves them all, and Redis serves nobody
/// else meanwhile.
pub const MAX_FETCH_BATCH: usize = 1000;
/// Most jobs a worker process may take ahead of a free slot.
pub const MAX_PREFETCH: usize = 10_000;
/// Most jobs a worker process may run at once.
pub const MAX_CONCURRENCY: usize = 100_000;

/// How a worker process behaves.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Queues to take jobs from.
    pub queues: Queues,
    /// Jobs run at once in this process. Redis connections do not grow with it.
    pub concurrency: usize,
    /// Time running jobs get to finish after SIGTERM before they are handed back.
    pub shutdown_timeout: Duration,
    /// Longest attempt of a job type that sets no timeout of its own.
    pub default_job_timeout: Duration,
    /// How long a job an operator cancelled while it ran may take to stop after its
    /// `ctx.cancelled()` fires; then it is dropped at its next await (like a timeout).
    pub cancel_grace: Duration,
    /// Most jobs taken by one fetch.
    pub fetch_batch: usize,
    /// Most jobs taken ahead of a free slot (`None`: `fetch_batch` or `concurrency`, whichever
    /// is larger; `Some(0)`: no prefetch). How many are actually taken adapts: twice as many as
    /// finished since the last fetch, so slots held by long jobs get none queued behind them.
    /// A prefetched job waits at most a second for a slot, then goes back to the front of its
    /// queue. Set by `WORKER_PREFETCH`.
    pub prefetch: Option<usize>,
    /// Longest time a prefetched job waits for a free slot before it goes back to the front
    /// of its queue for another worker.
    pub prefetch_max_wait: Duration,
    /// When idle, how often to look for jobs pushed by clients that do not publish a wake-up
    /// (Sidekiq's Ruby client): their worst-case pickup delay.
    pub idle_poll: Duration,
    /// How often the lease and the Sidekiq process record are renewed.
    pub heartbeat_interval: Duration,
    /// How long a lease outlives its last renewal: a killed process's jobs are recovered
    /// between `lease_ttl` and `lease_ttl + reaper_interval` after the kill.
    pub lease_ttl: Duration,
    /// How often the reaper looks for expired leases.
    pub reaper_interval: Duration,
    /// Longest pause between two passes of the scheduler (it wakes sooner for due jobs).
    pub scheduler_interval: Duration,
    /// Recoveries after which a job that keeps killing its worker goes to the dead set.
    pub max_recoveries: u32,
    /// Most jobs kept in the dead set.
    pub dead_max_jobs: u64,
    /// Oldest job kept in the dead set.
    pub dead_max_age: Duration,
    /// Label shown by Sidekiq's process list.
    pub tag: Option<String>,
    /// Shifts Redis's clock as the scripts see it (tests only; 0 in production).
    pub clock_offset_ms: i64,
    /// Where to serve `/metrics` (`WORKER_METRICS_ADDR`); `None` (the default): nowhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            queues: Queues::parse("default").unwrap_or_else(|_| unreachable!()),
            concurrency: 10,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            default_job_timeout: Duration::from_secs(30 * 60),
            cancel_grace: Duration::from_secs(10),
            fetch_batch: 100,
            prefetch: None,
            prefetch_max_wait: Duration::from_secs(1),
            idle_poll: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(15),
            reaper_interval: Duration::from_secs(5),
            scheduler_interval: Duration::from_millis(500),
            max_recoveries: 3,
            dead_max_jobs: queue_core::scripts::DEAD_MAX_JOBS,
            dead_max_age: queue_core::scripts::DEAD_MAX_AGE,
            tag: None,
            clock_offset_ms: 0,
            metrics_addr: None,
        }
    }
}

impl WorkerConfig {
    /// Jobs taken ahead of a free slot, at most.
    pub fn prefetch(&self) -> usize {
        self.prefetch
            .unwrap_or_else(|| self.fetch_batch.max(self.concurrency))
    }

    /// Reads `WORKER_CONCURRENCY`, `WORKER_PREFETCH`, `WORKER_QUEUES` and `SHUTDOWN_TIMEOUT`
    /// (seconds) over the defaults, and `WORKER_METRICS_ADDR`: a port (`9394`, served on
    /// loopback only) or an address (`0.0.0.0:9394`) for the `/metrics` listener.
    ///
    /// Also reads three timing overrides in whole milliseconds, for fault tests and drills
    /// (production keeps the defaults): `WORKER_LEASE_TTL_MS` (lease lifetime, default 15 s),
    /// `WORKER_HEARTBEAT_MS` (lease renewal, default 5 s; must stay below the lease) and
    /// `WORKER_REAPER_MS` (reaper pass, default 5 s). A killed process's jobs run again
    /// within about lease + reaper interval. Each must be a positive integer.
    pub fn from_env() -> Result<Self> {
        Self::default().with_env()
    }

    /// These settings with the variables of [`WorkerConfig::from_env`] applied on top: a
    /// variable that is set wins, one that is not leaves the setting as it was.
    pub fn with_env(self) -> Result<Self> {
        let mut config = self;
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        if let Some(v) = var("WORKER_CONCURRENCY") {
            config.concurrency = v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::InvalidSetting {
                    name: "WORKER_CONCURRENCY",
                    reason: format!("{v:?} is not a positive number"),
                })?;
        }
        if let Some(v) = var("WORKER_PREFETCH") {
            config.prefetch =
                Some(
                    v.trim()
                        .parse::<usize>()
                        .map_err(|_| Error::InvalidSetting {
                            name: "WORKER_PREFETCH",
                            reason: format!("{v:?} is not a whole number"),
                        })?,
                );
        }
        if let Some(v) = var("WORKER_QUEUES") {
            config.queues = Queues::parse(&v)?;
        }
        if let Some(v) = var("SHUTDOWN_TIMEOUT") {
            let secs = v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| Error::InvalidSetting {
                    name: "SHUTDOWN_TIMEOUT",
                    reason: format!("{v:?} is not a number of seconds"),
                })?;
            config.shutdown_timeout =
                Duration::try_from_secs_f64(secs).map_err(|_| Error::InvalidSetting {
                    name: "SHUTDOWN_TIMEOUT",
                    reason: format!("{v:?} is out of range"),
                })?;
        }
        if let Some(v) = var("WORKER_METRICS_ADDR") {
            config.metrics_addr = Some(metrics_addr(&v)?);
        }
        if let Some(v) = var("WORKER_LEASE_TTL_MS") {
            config.lease_ttl = positive_millis("WORKER_LEASE_TTL_MS", &v)?;
        }
        if let Some(v) = var("WORKER_HEARTBEAT_MS") {
            config.heartbeat_interval = positive_millis("WORKER_HEARTBEAT_MS", &v)?;
        }
        if let Some(v) = var("WORKER_REAPER_MS") {
            config.reaper_interval = positive_millis("WORKER_REAPER_MS", &v)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the settings against each other and against the platform's limits.
    pub fn validate(&self) -> Result<()> {
        if self.concurrency == 0 {
            return Err(Error::InvalidSetting {
                name: "concurrency",
                reason: "must be at least 1".into(),
            });
        }
        if self.shutdown_timeout > MAX_SHUTDOWN_TIMEOUT {
            return Err(Error::InvalidSetting {
                name: "SHUTDOWN_TIMEOUT",
                reason: format!(
                    "{:?} leaves no time to hand jobs back before the platform's SIGKILL at 30 s (max {:?})",
                    self.shutdown_timeout, MAX_SHUTDOWN_TIMEOUT
                ),
            });
        }
        if !(1..=MAX_FETCH_BATCH).contains(&self.fetch_batch) {
            return Err(Error::InvalidSetting {
                name: "fetch_batch",
                reason: format!("must be between 1 and {MAX_FETCH_BATCH}"),
            });
        }
        if self.prefetch.is_some_and(|p| p > MAX_PREFETCH) {
            return Err(Error::InvalidSetting {
                name: "WORKER_PREFETCH",
                reason: format!("must be at most {MAX_PREFETCH}"),
            });
        }
        if self.concurrency > MAX_CONCURRENCY {
            return Err(Error::InvalidSetting {
                name: "WORKER_CONCURRENCY",
                reason: format!("must be at most {MAX_CONCURRENCY}"),
            });
        }
        if self.idle_poll.is_zero() {
            return Err(Error::InvalidSetting {
                name: "idle_poll",
                reason: "must be positive (zero would poll an empty queue without pause)".into(),
            });
        }
        if self.prefetch_max_wait.is_zero() {
            return Err(Error::InvalidSetting {
                name: "prefetch_max_wait",
                reason: "must be positive (set prefetch to Some(0) to turn prefetch off)".into(),
            });
        }
        if self.heartbeat_interval >= self.lease_ttl {
            return Err(Error::InvalidSetting {
                name: "heartbeat_interval",
                reason: "must be shorter than lease_ttl".into(),
            });
        }
        Ok(())
    }
}

/// `WORKER_METRICS_ADDR`: a bare port means loopback, since a worker's port is reached by
/// an agent on the same host unless the operator says otherwise.
///
/// ```
/// # use queue_worker::config::metrics_addr;
/// assert_eq!(metrics_addr("9394").unwrap().to_string(), "127.0.0.1:9394");
/// assert_eq!(metrics_addr("0.0.0.0:9394").unwrap().to_string(), "0.0.0.0:9394");
/// assert!(metrics_addr("nope").is_err());
/// ```
pub fn metrics_addr(v: &str) -> Result<std::net::SocketAddr> {
    let v = v.trim();
    if let Ok(port) = v.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    v.parse().map_err(|_| Error::InvalidSetting {
        name: "WORKER_METRICS_ADDR",
        reason: format!("{v:?} is neither a port nor an address like 0.0.0.0:9394"),
    })
}

/// Parses a positive whole number of milliseconds from environment variable `name`.
fn positive_millis(name: &'static str, value: &str) -> Result<Duration> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| Error::InvalidSetting {
            name,
            reason: format!("{value:?} is not a positive number of milliseconds"),
        })
}
