//! Shared pieces of the criterion benches (`benches/*.rs`) and the `loadtest` tool.
//!
//! - [`BenchRedis`]: a private `redis-server` ([`TestRedis`]) or, when `REDIS_URL` is set,
//!   that server (keys then go under a per-process prefix and only those are deleted).
//! - The jobs every measurement runs: [`Noop`] (status record), [`NoopUntracked`] (none),
//!   and [`Gate`], which holds a worker slot until released so that a backlog can be pushed
//!   while a warmed-up worker waits, and its drain timed from one signal ([`Gates`]).
//! - `INFO` parsing: [`info`], [`redis_cpu_secs`], [`CommandStats`].
//!
//! ```no_run
//! # async fn demo() -> queue_core::Result<()> {
//! let redis = benches::BenchRedis::from_env();
//! let client = queue_core::Client::connect(redis.config("demo")).await?;
//! client.push(benches::noop_job(1, "", true, "loadtest")).await?;
//! # Ok(()) }
//! ```

use queue_core::testing::TestRedis;
use queue_core::{Client, ClientConfig, Job, NewJob};
use queue_worker::{Failure, JobContext, Limit, WorkerBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The Redis server a measurement runs against.
#[derive(Debug)]
pub enum BenchRedis {
    /// A `redis-server` started for this run (killed on drop); free to flush.
    Private(TestRedis),
    /// The server at `REDIS_URL`: never flushed, only our prefix is deleted.
    External(String),
}

impl BenchRedis {
    /// The server at `REDIS_URL` when it is set and not empty, else a private one.
    pub fn from_env() -> Self {
        match std::env::var("REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => Self::External(url),
            _ => Self::Private(TestRedis::start()),
        }
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        match self {
            Self::Private(r) => r.url(),
            Self::External(url) => url.clone(),
        }
    }

    /// Whether the server was started for this run (so it may be flushed and reconfigured).
    pub fn is_private(&self) -> bool {
        matches!(self, Self::Private(_))
    }

    /// The server's process id, when it is private.
    pub fn server_pid(&self) -> Option<u32> {
        match self {
            Self::Private(r) => r.pid(),
            Self::External(_) => None,
        }
    }

    /// Key prefix for measurement `name`: `{name}:` on a private server, `{name-PID}:` on a
    /// shared one so that two runs never collide.
    pub fn prefix(&self, name: &str) -> String {
        match self {
            Self::Private(_) => format!("{{{name}}}:"),
            Self::External(_) => format!("{{{name}-{}}}:", std::process::id()),
        }
    }

    /// A client configuration for this server with [`BenchRedis::prefix`].
    pub fn config(&self, name: &str) -> ClientConfig {
        ClientConfig::new(self.url()).prefix(self.prefix(name))
    }

    /// Deletes what a measurement left: `FLUSHALL` on a private server (scripts survive it),
    /// only the keys under `prefix` on a shared one.
    pub async fn clear<C>(&self, conn: &mut C, prefix: &str) -> redis::RedisResult<()>
    where
        C: redis::aio::ConnectionLike + Send,
    {
        if self.is_private() {
            redis::cmd("FLUSHALL").query_async::<()>(conn).await
        } else {
            delete_prefix(conn, prefix).await.map(|_| ())
        }
    }
}

/// Deletes every key that starts with `prefix` (`SCAN` + `UNLINK`, 1,000 at a time);
/// returns how many were deleted.
pub async fn delete_prefix<C>(conn: &mut C, prefix: &str) -> redis::RedisResult<u64>
where
    C: redis::aio::ConnectionLike + Send,
{
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            deleted += redis::cmd("UNLINK")
                .arg(&keys)
                .query_async::<u64>(conn)
                .await?;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// A job that does nothing, with a status record: `args = [n, padding]`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Noop(pub u64, pub String);

impl Job for Noop {
    const NAME: &'static str = "LoadtestNoop";
}

/// A job that does nothing, without a status record.
#[derive(Debug, Serialize, Deserialize)]
pub struct NoopUntracked(pub u64, pub String);

impl Job for NoopUntracked {
    const NAME: &'static str = "LoadtestNoopUntracked";
    const TRACK_STATUS: bool = false;
}

/// Holds a worker slot until round `.0` is released by [`Gates::release`].
#[derive(Debug, Serialize, Deserialize)]
pub struct Gate(pub u64);

impl Job for Gate {
    const NAME: &'static str = "LoadtestGate";
    const TRACK_STATUS: bool = false;
}

/// An untyped no-op job for `queue`: [`Noop`] when `tracked`, else [`NoopUntracked`].
///
/// ```
/// let job = benches::noop_job(7, "xx", false, "drain");
/// assert_eq!(job.class, "LoadtestNoopUntracked");
/// assert!(!job.track_status);
/// assert_eq!(job.args, vec![serde_json::json!(7), serde_json::json!("xx")]);
/// ```
pub fn noop_job(n: u64, padding: &str, tracked: bool, queue: &str) -> NewJob {
    let class = if tracked {
        Noop::NAME
    } else {
        NoopUntracked::NAME
    };
    let mut job = NewJob::new(
        class,
        vec![serde_json::json!(n), serde_json::json!(padding)],
    );
    job.queue = queue.to_owned();
    job.track_status = tracked;
    job
}

/// The gate job of `round` for `queue`.
pub fn gate_job(round: u64, queue: &str) -> NewJob {
    let mut job = NewJob::new(Gate::NAME, vec![serde_json::json!(round)]);
    job.queue = queue.to_owned();
    job.track_status = false;
    job
}

/// Registers the no-op handlers ([`Noop`], [`NoopUntracked`]).
///
/// `LOADTEST_LIMITER` = `concurrent`, `window` or `bucket` puts both under a limiter of that
/// kind whose limit is never reached, so a run measures what asking the limiter costs per job
/// (`docs/benchmarks.md`, "Limiters").
pub fn register_noops(builder: WorkerBuilder) -> WorkerBuilder {
    let builder = builder
        .register(|_: Noop, _: JobContext| async { Ok::<_, Failure>(()) })
        .register(|_: NoopUntracked, _: JobContext| async { Ok::<_, Failure>(()) });
    let limit = match std::env::var("LOADTEST_LIMITER").ok().as_deref() {
        Some("concurrent") => Limit::Concurrent(u32::MAX),
        Some("window") => Limit::Window(u32::MAX, Duration::from_secs(1)),
        // Evenly spaced at a million per second: 1 µs apart, never in the way.
        Some("bucket") => Limit::Bucket(1_000_000, Duration::from_secs(1)),
        _ => return builder,
    };
    builder
        .limit::<Noop>("loadtest", limit)
        .limit::<NoopUntracked>("loadtest", limit)
}

/// The gate handler's shared state: how many gates started, and the released round.
#[derive(Debug, Clone)]
pub struct Gates {
    release: Arc<watch::Sender<u64>>,
    started: Arc<AtomicU64>,
}

impl Default for Gates {
    fn default() -> Self {
        Self::new()
    }
}

impl Gates {
    /// No gate started, round 0 released.
    pub fn new() -> Self {
        Self {
            release: Arc::new(watch::Sender::new(0)),
            started: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Registers the [`Gate`] handler: it counts itself started, then waits for its round.
    pub fn register(&self, builder: WorkerBuilder) -> WorkerBuilder {
        let gates = self.clone();
        builder.register(move |gate: Gate, _: JobContext| {
            let gates = gates.clone();
            async move {
                let mut rx = gates.release.subscribe();
                gates.started.fetch_add(1, Ordering::SeqCst);
                let _ = rx.wait_for(|released| *released >= gate.0).await;
                Ok::<_, Failure>(())
            }
        })
    }

    /// Gates started so far (all rounds).
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }

    /// Waits until `n` gates in all have started; false after `timeout`.
    pub async fn wait_started(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.started() < n {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        true
    }

    /// Lets every gate of rounds up to `round` finish.
    pub fn release(&self, round: u64) {
        self.release.send_replace(round);
    }
}

/// `INFO section` as a map of field to value.
pub async fn info<C>(conn: &mut C, section: &str) -> redis::RedisResult<HashMap<String, String>>
where
    C: redis::aio::ConnectionLike + Send,
{
    let text: String = redis::cmd("INFO").arg(section).query_async(conn).await?;
    Ok(parse_info(&text))
}

/// Parses the text of `INFO`.
///
/// ```
/// let info = benches::parse_info("# CPU\r\nused_cpu_sys:1.5\r\nused_cpu_user:2.25\r\n");
/// assert_eq!(benches::redis_cpu_secs(&info), 3.75);
/// ```
pub fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A numeric `INFO` field, 0 when absent.
pub fn info_f64(info: &HashMap<String, String>, field: &str) -> f64 {
    info.get(field).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// CPU seconds the server used so far (`used_cpu_sys + used_cpu_user`, main thread and
/// background threads together).
pub fn redis_cpu_secs(info: &HashMap<String, String>) -> f64 {
    info_f64(info, "used_cpu_sys") + info_f64(info, "used_cpu_user")
}

/// Calls and microseconds of one command in `INFO commandstats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandStat {
    /// Times it ran (commands run by scripts count too).
    pub calls: u64,
    /// Microseconds spent executing it (a script's time includes the commands it ran).
    pub usec: u64,
}

/// `INFO commandstats` by command name (`evalsha`, `lmove`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandStats(pub BTreeMap<String, CommandStat>);

impl CommandStats {
    /// Parses the fields of `INFO commandstats`.
    ///
    /// ```
    /// let info = benches::parse_info("cmdstat_lmove:calls=3,usec=12,usec_per_call=4.00\r\n");
    /// let stats = benches::CommandStats::parse(&info);
    /// assert_eq!(stats.0["lmove"].calls, 3);
    /// assert_eq!(stats.0["lmove"].usec, 12);
    /// ```
    pub fn parse(info: &HashMap<String, String>) -> Self {
        let mut out = BTreeMap::new();
        for (key, value) in info {
            let Some(name) = key.strip_prefix("cmdstat_") else {
                continue;
            };
            let mut stat = CommandStat::default();
            for part in value.split(',') {
                match part.split_once('=') {
                    Some(("calls", v)) => stat.calls = v.parse().unwrap_or(0),
                    Some(("usec", v)) => stat.usec = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
            out.insert(name.to_owned(), stat);
        }
        Self(out)
    }

    /// Adds `other`'s calls and times to these (the servers of several masters, say).
    pub fn add(&mut self, other: &CommandStats) {
        for (name, stat) in &other.0 {
            let sum = self.0.entry(name.clone()).or_default();
            sum.calls += stat.calls;
            sum.usec += stat.usec;
        }
    }

    /// What happened between `before` and `self`; commands that did not run are left out.
    pub fn since(&self, before: &CommandStats) -> CommandStats {
        let mut out = BTreeMap::new();
        for (name, now) in &self.0 {
            let then = before.0.get(name).copied().unwrap_or_default();
            let delta = CommandStat {
                calls: now.calls.saturating_sub(then.calls),
                usec: now.usec.saturating_sub(then.usec),
            };
            if delta.calls > 0 {
                out.insert(name.clone(), delta);
            }
        }
        CommandStats(out)
    }
}

/// The 1-minute load average of this machine (`/proc/loadavg`), for the record.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// One `PING` round trip on the client's shared connection: the baseline every bench
/// compares against (panics if Redis does not answer: a bench cannot go on without it).
pub async fn ping(client: &Client) {
    let mut conn = client.raw_connection();
    redis::cmd("PING")
        .query_async::<()>(&mut conn)
        .await
        .expect("PING");
}
