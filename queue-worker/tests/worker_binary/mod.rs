//! Process-level test helpers: spawn the real `queue-worker` binary against a private Redis,
//! signal it, read its logs, and show those logs when a test fails.
// Each test file compiles this module separately and uses only part of it.
#![allow(dead_code, unreachable_pub)]

use queue_core::testing::config_env;
use queue_core::{Client, ClientConfig, JobId, JobState, JobStatus};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The worker binary built by Cargo for these tests.
pub const WORKER_BIN: &str = env!("CARGO_BIN_EXE_queue-worker");

/// Interval between two checks of a condition.
pub const POLL: Duration = Duration::from_millis(20);

/// Lines of each log shown when a test fails.
const LOG_TAIL_LINES: usize = 80;

/// Lease, heartbeat and reaper overrides that make recovery take about a second.
pub const FAST_RECOVERY: [(&str, &str); 3] = [
    ("WORKER_LEASE_TTL_MS", "1000"),
    ("WORKER_HEARTBEAT_MS", "200"),
    ("WORKER_REAPER_MS", "300"),
];

/// Workers of one test: a scratch directory for their logs, the Redis (server or cluster)
/// and key prefix they share. On a failing test it prints the end of every log it ever
/// wrote (killed processes included); on success it removes the directory.
#[derive(Debug)]
pub struct Harness {
    dir: PathBuf,
    /// `REDIS_URL` or `REDIS_CLUSTER_URLS`, and `QUEUE_PREFIX` unless it is empty.
    redis_env: Vec<(&'static str, String)>,
    logs: Mutex<Vec<(String, PathBuf)>>,
}

impl Harness {
    /// A harness for test `name`: workers connect where `config` does (a server or, on the
    /// cluster target, a cluster), with its prefix (empty: Sidekiq's own key names).
    pub fn new(name: &str, config: &ClientConfig) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("process-tests")
            .join(format!("{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self {
            dir,
            redis_env: config_env(config),
            logs: Mutex::new(Vec::new()),
        }
    }

    /// Starts a worker process named `name` (unique in this harness) with `concurrency`
    /// slots, the given shutdown timeout (seconds) and extra environment variables.
    pub fn spawn(
        &self,
        name: &str,
        concurrency: usize,
        shutdown_timeout_secs: u32,
        env: &[(&str, &str)],
    ) -> WorkerProc {
        let stdout = self.dir.join(format!("{name}.stdout"));
        let stderr = self.dir.join(format!("{name}.stderr"));
        let mut cmd = Command::new(WORKER_BIN);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.redis_env.iter().map(|(k, v)| (k, v)))
            .env("WORKER_CONCURRENCY", concurrency.to_string())
            .env("SHUTDOWN_TIMEOUT", shutdown_timeout_secs.to_string())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        let child = cmd.spawn().unwrap();
        let mut logs = self.logs.lock().unwrap();
        logs.push((format!("{name} (pid {})", child.id()), stdout.clone()));
        logs.push((
            format!("{name} (pid {}) stderr", child.id()),
            stderr.clone(),
        ));
        WorkerProc {
            child,
            name: name.to_owned(),
            stdout,
            stderr,
            exited: None,
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner());
            for (label, path) in logs.iter() {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                if text.is_empty() {
                    continue;
                }
                let lines: Vec<&str> = text.lines().collect();
                let from = lines.len().saturating_sub(LOG_TAIL_LINES);
                eprintln!(
                    "--- {label}: last {} of {} lines ({}) ---",
                    lines.len() - from,
                    lines.len(),
                    path.display()
                );
                for line in &lines[from..] {
                    eprintln!("{line}");
                }
            }
            eprintln!("--- worker logs kept in {} ---", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One running (or exited) worker process; killed with SIGKILL when dropped.
#[derive(Debug)]
pub struct WorkerProc {
    child: Child,
    name: String,
    stdout: PathBuf,
    stderr: PathBuf,
    exited: Option<ExitStatus>,
}

impl WorkerProc {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `kill -9`: the process dies at once, with no chance to clean up.
    pub fn kill9(&mut self) {
        if self.exited.is_none() {
            self.child.kill().unwrap();
            self.exited = Some(self.child.wait().unwrap());
        }
    }

    /// `kill -TERM`, as the platform does on every restart.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// The exit status, if the process has exited.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().unwrap();
        }
        self.exited
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.try_exit().is_none()
    }

    /// Polls until the process exits; panics after `deadline`.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_exit() {
                return status;
            }
            assert!(
                start.elapsed() < deadline,
                "worker {} (pid {}) did not exit within {deadline:?}",
                self.name,
                self.pid()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Everything the process wrote so far (stdout, then stderr).
    pub fn log(&self) -> String {
        let mut text = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        text.push_str(&std::fs::read_to_string(&self.stderr).unwrap_or_default());
        text
    }

    /// Number of log lines so far (to look only at what comes after a point in time).
    pub fn log_lines(&self) -> usize {
        self.log().lines().count()
    }

    /// The log lines after the first `skip`.
    pub fn log_since(&self, skip: usize) -> Vec<String> {
        self.log().lines().skip(skip).map(str::to_owned).collect()
    }

    /// Polls until the log contains `needle`; panics after `deadline`.
    pub async fn wait_for_log(&self, needle: &str, deadline: Duration) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            assert!(
                start.elapsed() < deadline,
                "worker {} never logged {needle:?} within {deadline:?}",
                self.name
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Members of a Redis set.
pub async fn smembers(client: &Client, key: &str) -> Vec<String> {
    let mut conn = client.raw_connection();
    redis::cmd("SMEMBERS")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// The identity (`host:pid:nonce`) under which process `pid` is registered in our
/// `workers` set, if it is.
pub async fn identity_of(client: &Client, pid: u32) -> Option<String> {
    let needle = format!(":{pid}:");
    smembers(client, &client.keys().workers())
        .await
        .into_iter()
        .find(|id| id.contains(&needle))
}

/// Polls until process `pid` has registered; returns its identity.
pub async fn wait_registered(client: &Client, pid: u32, deadline: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Some(id) = identity_of(client, pid).await {
            return id;
        }
        assert!(
            start.elapsed() < deadline,
            "worker pid {pid} did not register within {deadline:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Length of a list (0 when the key does not exist).
pub async fn llen(client: &Client, key: &str) -> usize {
    let mut conn = client.raw_connection();
    redis::cmd("LLEN")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Size of a sorted set.
pub async fn zcard(client: &Client, key: &str) -> usize {
    let mut conn = client.raw_connection();
    redis::cmd("ZCARD")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Entries left in every processing list under the client's prefix, by key.
pub async fn processing_lists(client: &Client) -> HashMap<String, usize> {
    let mut conn = client.raw_connection();
    let pattern = format!("{}*", client.keys().processing_prefix());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut conn)
        .await
        .unwrap();
    let mut out = HashMap::new();
    for k in keys {
        let n = llen(client, &k).await;
        out.insert(k, n);
    }
    out
}

/// Every job waiting in `queue`, newest first (as LPUSHed).
pub async fn queued_jobs(client: &Client, queue: &str) -> Vec<queue_core::JobPayload> {
    let mut conn = client.raw_connection();
    let entries: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(client.keys().queue(queue))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    entries
        .iter()
        .map(|raw| queue_core::JobPayload::from_json(raw).unwrap())
        .collect()
}

/// The tick (epoch s) of each job of periodic entry `entry` waiting in `queue`, newest first.
pub async fn queued_ticks(client: &Client, queue: &str, entry: &str) -> Vec<i64> {
    let prefix = format!("cron-{entry}-");
    queued_jobs(client, queue)
        .await
        .iter()
        .map(|job| {
            job.jid
                .as_str()
                .strip_prefix(&prefix)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// The diagnostics ledger: completed executions of `queue::Sleep` per job id.
pub async fn ledger(client: &Client) -> HashMap<String, u64> {
    let mut conn = client.raw_connection();
    redis::cmd("HGETALL")
        .arg(client.keys().diagnostics_ledger())
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Completed executions of job `id` according to the ledger.
pub async fn ledger_count(client: &Client, id: &JobId) -> u64 {
    let mut conn = client.raw_connection();
    let n: Option<u64> = redis::cmd("HGET")
        .arg(client.keys().diagnostics_ledger())
        .arg(id.as_str())
        .query_async(&mut conn)
        .await
        .unwrap();
    n.unwrap_or(0)
}

/// Polls the status record of `id` until `check` accepts it; panics after `deadline`.
pub async fn wait_status(
    client: &Client,
    id: &JobId,
    what: &str,
    deadline: Duration,
    mut check: impl FnMut(&JobStatus) -> bool,
) -> JobStatus {
    let start = Instant::now();
    let mut last = None;
    loop {
        // A failed read (Redis restarting) just means "not yet".
        if let Ok(Some(s)) = client.status(id).await {
            if check(&s) {
                return s;
            }
            last = Some(s);
        }
        assert!(
            start.elapsed() < deadline,
            "job {id}: timed out after {deadline:?} waiting for {what}; last status {last:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls until job `id` is in `state`.
pub async fn wait_state(client: &Client, id: &JobId, state: JobState, deadline: Duration) {
    wait_status(client, id, state.as_str(), deadline, |s| s.state == state).await;
}

/// CPU time (user + system) used so far by process `pid`, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses and may contain spaces):
    // state is field 3, utime field 14, stime field 15, in clock ticks.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 1000 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}
