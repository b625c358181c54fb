//! `loadtest`: throughput, latency and footprint of the queue on one machine, in the spirit
//! of Sidekiq's own load script.
//!
//! Run with
//! ```text
//! cargo run --release -p benches --bin loadtest -- [--jobs 100000] [--concurrency 10] \
//!     [--processes 1] [--payload-bytes 64] [--no-status] [--json] [--profile] [--slowlog] \
//!     [--no-c100]
//! ```
//! It uses `REDIS_URL` when set (its keys go under a per-run prefix, deleted at the end;
//! the server is never flushed or reconfigured), else it starts a private `redis-server`
//! (which must be on `PATH`, or named by `REDIS_SERVER`).
//!
//! Phases, in this order:
//! 1. `PING` round trip: 2,000 sequential pings, the baseline of every ratio.
//! 2. Enqueue latency: 10,000 sequential single enqueues (status record on unless
//!    `--no-status`), each timed.
//! 3. Bulk enqueue and drain: `--processes` worker processes (this binary re-executed with
//!    the hidden `--worker` mode) start on an empty queue; gate jobs then hold all their
//!    slots, so the workers are connected, registered and warm but take nothing. `--jobs`
//!    no-op jobs are pushed with `push_bulk` (timed: bulk throughput, Redis bytes and CPU per
//!    job), then the gates are released and the drain is timed until `stat:processed`
//!    counts every job (reliable fetch and acks on). Connections (`CLIENT LIST`, matched to
//!    each process's sockets) and peak RSS (`VmHWM`) are read before the workers quit.
//! 4. The same drain with one worker process at concurrency 100 (skip with `--no-c100`).
//! 5. Pickup latency: 1,000 sequential enqueues to an idle worker in this process; the
//!    handler records when it started.
//!
//! `--profile` adds `INFO commandstats` deltas of the bulk enqueue and the drain (calls and
//! µs per job by command; a script's time includes the commands it ran). `--slowlog` adds,
//! on a private server, a `SLOWLOG` of every command of the drain broken down by script
//! (calls, µs per call, jobs per call). Redis 7 also logs the commands run inside scripts,
//! and writing those entries is timed as part of the script, so `--slowlog` inflates script
//! times and Redis CPU: use it for call counts and batch sizes, and take times and headline
//! figures from a run without it.

use benches::{
    BenchRedis, CommandStats, Gates, Noop, NoopUntracked, gate_job, info, info_f64, load_average,
    noop_job, redis_cpu_secs, register_noops,
};
use hdrhistogram::Histogram;
use queue_core::{Client, ClientConfig, NewJob};
use queue_worker::{Failure, JobContext, Queues, Worker, WorkerConfig};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Write as _;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

const USAGE: &str = "\
usage: loadtest [--jobs N] [--concurrency C] [--processes P] [--payload-bytes B]
                [--no-status] [--json] [--profile] [--slowlog] [--no-c100]
                [--worker-threads T] [--client-threads T]
                [--ping-samples N] [--enqueue-samples N] [--pickup-samples N]

  --jobs N            jobs bulk-enqueued and drained (default 100000)
  --concurrency C     jobs run at once per worker process (default 10)
  --processes P       worker processes for the drain (default 1)
  --payload-bytes B   padding string in each job's args (default 64)
  --no-status         jobs without a status record (default: tracked)
  --json              print one JSON object instead of the table
  --profile           INFO commandstats deltas of the bulk enqueue and the drain
  --slowlog           SLOWLOG of the drain by script (private server; inflates script times)
  --no-c100           skip the drain with one worker process at concurrency 100
  --worker-threads T  runtime threads of each worker process (default 2; 1 = current-thread)
  --client-threads T  runtime threads of this process, which also runs the pickup worker
                      (default 2; 1 = current-thread)
REDIS_URL: use that server instead of starting a private redis-server.";

/// Queue drained by the worker processes.
const DRAIN_QUEUE: &str = "loadtest";
/// Queue of the sequential-enqueue phase (no worker takes it).
const LATENCY_QUEUE: &str = "latency";
/// Queue of the pickup phase's in-process worker.
const PICKUP_QUEUE: &str = "pickup";
/// How long a worker process may take to start, or to take its gate jobs.
const WORKER_DEADLINE: Duration = Duration::from_secs(60);
/// Longest drain waited for before the run is declared stuck.
const DRAIN_DEADLINE: Duration = Duration::from_secs(600);
/// Below this many missing jobs, the wait for `stat:processed` stops sleeping and polls.
const BUSY_POLL_BELOW: u64 = 50;
/// Entries kept by the profiling slowlog (each a few KB at most).
const SLOWLOG_LEN: u64 = 200_000;
/// Jobs per `push_bulk` call in the pickup warm-up and the gates (one call).
const PICKUP_WARMUP: u64 = 50;
/// Bound on each call of the driving client (see `coordinator_main`).
const BULK_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrency of the second drain, where connections and RSS are checked.
const HIGH_CONCURRENCY: usize = 100;

/// What went wrong; every variant says where.
#[derive(Debug)]
enum LoadError {
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
            Self::MissingRedisUrl => write!(f, "worker mode needs REDIS_URL"),
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

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> LoadError {
    move |source| LoadError::Io { what, source }
}

type Result<T, E = LoadError> = std::result::Result<T, E>;

/// Command-line options.
#[derive(Debug, Clone)]
struct Options {
    jobs: u64,
    concurrency: usize,
    processes: usize,
    payload_bytes: usize,
    status: bool,
    json: bool,
    profile: bool,
    slowlog: bool,
    c100: bool,
    worker_threads: usize,
    client_threads: usize,
    ping_samples: u64,
    enqueue_samples: u64,
    pickup_samples: u64,
    /// Hidden: run as a worker process with this key prefix.
    worker_prefix: Option<String>,
    /// Hidden: the worker process's queue.
    worker_queue: String,
}

impl Options {
    fn parse(args: impl IntoIterator<Item = String>) -> Result<Self> {
        let mut o = Self {
            jobs: 100_000,
            concurrency: 10,
            processes: 1,
            payload_bytes: 64,
            status: true,
            json: false,
            profile: false,
            slowlog: false,
            c100: true,
            worker_threads: 2,
            client_threads: 2,
            ping_samples: 2_000,
            enqueue_samples: 10_000,
            pickup_samples: 1_000,
            worker_prefix: None,
            worker_queue: DRAIN_QUEUE.to_owned(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .ok_or_else(|| LoadError::Usage(format!("{name} needs a value")))
            };
            fn number<T: std::str::FromStr>(name: &str, v: String) -> Result<T> {
                v.parse()
                    .map_err(|_| LoadError::Usage(format!("{name}: {v:?} is not a number")))
            }
            match arg.as_str() {
                "--jobs" => o.jobs = number("--jobs", value("--jobs")?)?,
                "--concurrency" => {
                    o.concurrency = number("--concurrency", value("--concurrency")?)?
                }
                "--processes" => o.processes = number("--processes", value("--processes")?)?,
                "--payload-bytes" => {
                    o.payload_bytes = number("--payload-bytes", value("--payload-bytes")?)?
                }
                "--worker-threads" => {
                    o.worker_threads = number("--worker-threads", value("--worker-threads")?)?
                }
                "--client-threads" => {
                    o.client_threads = number("--client-threads", value("--client-threads")?)?
                }
                "--ping-samples" => {
                    o.ping_samples = number("--ping-samples", value("--ping-samples")?)?
                }
                "--enqueue-samples" => {
                    o.enqueue_samples = number("--enqueue-samples", value("--enqueue-samples")?)?
                }
                "--pickup-samples" => {
                    o.pickup_samples = number("--pickup-samples", value("--pickup-samples")?)?
                }
                "--no-status" => o.status = false,
                "--json" => o.json = true,
                "--profile" => o.profile = true,
                "--slowlog" => o.slowlog = true,
                "--no-c100" => o.c100 = false,
                "--worker" => o.worker_prefix = Some(value("--worker")?),
                "--queue" => o.worker_queue = value("--queue")?,
                "-h" | "--help" => return Err(LoadError::Usage("help".into())),
                other => return Err(LoadError::Usage(format!("unknown argument {other:?}"))),
            }
        }
        if o.jobs == 0 || o.concurrency == 0 || o.processes == 0 {
            return Err(LoadError::Usage(
                "--jobs, --concurrency and --processes must be positive".into(),
            ));
        }
        if o.ping_samples == 0 || o.enqueue_samples == 0 || o.pickup_samples == 0 {
            return Err(LoadError::Usage("sample counts must be positive".into()));
        }
        Ok(o)
    }
}

fn main() -> ExitCode {
    let opts = match Options::parse(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(LoadError::Usage(msg)) if msg == "help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadtest: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LOADTEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
    // Two runtime threads by default, like `#[tokio::main]` on this 2-core machine. Named,
    // so that a profile (`perf report --comm`) tells the worker processes from the driving
    // one (the future given to `block_on` runs on the main thread, named after the binary).
    let thread_name = if opts.worker_prefix.is_some() {
        "lt-worker"
    } else {
        "lt-client"
    };
    let threads = if opts.worker_prefix.is_some() {
        opts.worker_threads
    } else {
        opts.client_threads
    };
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let rt = builder
        .thread_name(thread_name)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = match &opts.worker_prefix {
        Some(prefix) => rt.block_on(worker_main(&opts, prefix)),
        None => rt.block_on(coordinator_main(&opts)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------
// Worker-process mode.

/// Prints one control line to the coordinator.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A worker process: no-op and gate handlers; says `ready`, then `gated` once all its slots
/// hold gate jobs; `go` on stdin releases them, `quit` (or EOF) shuts it down.
async fn worker_main(opts: &Options, prefix: &str) -> Result<()> {
    let url = std::env::var("REDIS_URL").map_err(|_| LoadError::MissingRedisUrl)?;
    let config = ClientConfig::new(url)
        .prefix(prefix)
        .connection_name(format!("loadtest-worker-{}", std::process::id()));
    let client = Client::connect(config).await?;
    let gates = Gates::new();
    // The worker variables (`WORKER_PREFETCH`, ...) apply, as in a worker binary.
    let builder = Worker::builder()
        .config(WorkerConfig::default().with_env()?)
        .concurrency(opts.concurrency)
        .queues(Queues::strict(&[opts.worker_queue.as_str()])?);
    let worker = gates
        .register(register_noops(builder))
        .build(client)?
        .start();
    say("ready");
    let watcher = {
        let gates = gates.clone();
        let slots = opts.concurrency as u64;
        tokio::spawn(async move {
            if gates.wait_started(slots, WORKER_DEADLINE).await {
                say("gated");
            }
        })
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await.map_err(io("reading stdin"))? {
        match line.trim() {
            "go" => gates.release(1),
            "quit" => break,
            other => eprintln!("loadtest worker: unknown command {other:?}"),
        }
    }
    watcher.abort();
    gates.release(u64::MAX);
    worker.shutdown().await?;
    Ok(())
}

/// A worker process seen from the coordinator.
struct WorkerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    pid: u32,
}

impl WorkerProcess {
    async fn spawn(
        url: &str,
        prefix: &str,
        concurrency: usize,
        worker_threads: usize,
    ) -> Result<Self> {
        let exe = std::env::current_exe().map_err(io("finding the loadtest binary"))?;
        let mut child = tokio::process::Command::new(exe)
            .arg("--worker")
            .arg(prefix)
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .arg("--queue")
            .arg(DRAIN_QUEUE)
            .arg("--worker-threads")
            .arg(worker_threads.to_string())
            .env("REDIS_URL", url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(io("starting a worker process"))?;
        let pid = child.id().unwrap_or(0);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both pipes were requested")
        };
        Ok(Self {
            child,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            pid,
        })
    }

    async fn expect(&mut self, line: &'static str) -> Result<()> {
        let got = tokio::time::timeout(WORKER_DEADLINE, self.stdout.next_line())
            .await
            .map_err(|_| LoadError::Timeout("a worker process's control line"))?
            .map_err(io("reading a worker process"))?;
        match got {
            Some(l) if l.trim() == line => Ok(()),
            other => Err(LoadError::WorkerProcess {
                pid: self.pid,
                expected: line,
                got: other.unwrap_or_else(|| "end of output".into()),
            }),
        }
    }

    async fn send(&mut self, line: &str) -> Result<()> {
        self.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(io("writing to a worker process"))?;
        self.stdin
            .flush()
            .await
            .map_err(io("writing to a worker process"))
    }

    /// CPU time (user + system, all threads) used so far, in seconds.
    fn cpu_secs(&self) -> f64 {
        process_cpu_secs(self.pid)
    }

    /// Peak resident memory (`VmHWM`) in KiB.
    fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmHWM:")
    }

    async fn quit(mut self) -> Result<()> {
        self.send("quit").await?;
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .map_err(|_| LoadError::Timeout("a worker process's shutdown"))?
            .map_err(io("waiting for a worker process"))?;
        Ok(())
    }
}

/// CPU seconds (user + system, all threads) of process `pid` from `/proc/<pid>/stat`
/// (clock ticks of 10 ms: fine over drains of a second or more), 0 when unknown.
fn process_cpu_secs(pid: u32) -> f64 {
    /// `sysconf(_SC_CLK_TCK)` on Linux.
    const TICKS_PER_SEC: f64 = 100.0;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / TICKS_PER_SEC)
        })
        .unwrap_or(0.0)
}

/// A `kB` field of `/proc/<pid>/status`, 0 when unknown.
fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Local TCP ports of the sockets process `pid` holds (its fds, matched in `/proc/net/tcp*`).
fn local_ports(pid: u32) -> HashSet<u16> {
    let mut inodes = HashSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in dir.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse::<u64>().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    let mut ports = HashSet::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (cols.get(1), cols.get(9)) else {
                continue;
            };
            if inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i))
                && let Some(port) = local
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

/// The connections of `CLIENT LIST` that belong to process `pid`: their names.
async fn connections_of(client: &Client, pid: u32) -> Result<Vec<String>> {
    let mut conn = client.connection();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await?;
    let ports = local_ports(pid);
    let mut names = Vec::new();
    for line in list.lines() {
        let field = |k: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        let port = field("addr")
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse::<u16>().ok());
        if port.is_some_and(|p| ports.contains(&p)) {
            let name = field("name").filter(|n| !n.is_empty()).unwrap_or("-");
            let cmd = field("cmd").unwrap_or("?");
            names.push(format!("{name}({cmd})"));
        }
    }
    Ok(names)
}

// ---------------------------------------------------------------------------------------
// Coordinator.

/// Server state before and after a phase.
struct Snapshot {
    cpu_secs: f64,
    used_memory: f64,
    stats: CommandStats,
}

async fn snapshot(client: &Client) -> Result<Snapshot> {
    let mut conn = client.connection();
    let all = info(&mut conn, "all").await?;
    Ok(Snapshot {
        cpu_secs: redis_cpu_secs(&all),
        used_memory: info_f64(&all, "used_memory"),
        stats: CommandStats::parse(&all),
    })
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("histogram bounds")
}

/// Quantile `q` of a histogram in nanoseconds, as microseconds.
fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1_000.0
}

async fn processed(client: &Client) -> Result<u64> {
    let mut conn = client.connection();
    let n: Option<u64> = redis::cmd("GET")
        .arg(client.keys().stat_processed())
        .query_async(&mut conn)
        .await?;
    Ok(n.unwrap_or(0))
}

/// Waits until `stat:processed` reaches `target`: 1 ms sleeps while many jobs are missing
/// (≈ 1,000 `GET`s a second, nothing next to the drain), back-to-back reads at the end.
async fn wait_processed(client: &Client, target: u64) -> Result<()> {
    let deadline = Instant::now() + DRAIN_DEADLINE;
    loop {
        let n = processed(client).await?;
        if n >= target {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LoadError::Timeout(
                "the drain (stat:processed stopped short)",
            ));
        }
        if target - n > BUSY_POLL_BELOW {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

async fn ping_phase(client: &Client, n: u64) -> Result<Histogram<u64>> {
    let mut conn = client.connection();
    let mut h = histogram();
    for i in 0..n + n / 10 {
        let start = Instant::now();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        // The first tenth warms up the connection and the caches.
        if i >= n / 10 {
            h.saturating_record(start.elapsed().as_nanos() as u64);
        }
    }
    Ok(h)
}

async fn enqueue_phase(client: &Client, opts: &Options, padding: &str) -> Result<Histogram<u64>> {
    let mut h = histogram();
    let warmup = opts.enqueue_samples / 20;
    for i in 0..opts.enqueue_samples + warmup {
        let job = noop_job(i, padding, opts.status, LATENCY_QUEUE);
        let start = Instant::now();
        client.push(job).await?;
        if i >= warmup {
            h.saturating_record(start.elapsed().as_nanos() as u64);
        }
    }
    Ok(h)
}

/// What one bulk enqueue + drain measured.
struct Drain {
    bulk_secs: f64,
    bulk_bytes_per_job: f64,
    bulk_cpu_us_per_job: f64,
    bulk_stats: CommandStats,
    drain_secs: f64,
    drain_cpu_us_per_job: f64,
    drain_stats: CommandStats,
    /// CPU of all worker processes during the drain, per job.
    worker_cpu_us_per_job: f64,
    slowlog: Option<Vec<SlowRow>>,
    /// Per worker process: its connections' names (and last command).
    connections: Vec<Vec<String>>,
    peak_rss_kib: Vec<u64>,
}

async fn drain_phase(
    redis: &BenchRedis,
    client: &Client,
    opts: &Options,
    padding: &str,
    processes: usize,
    concurrency: usize,
    slowlog: bool,
) -> Result<Drain> {
    let url = redis.url();
    let prefix = client.keys().prefix().to_owned();
    let mut workers = Vec::with_capacity(processes);
    for _ in 0..processes {
        workers.push(WorkerProcess::spawn(&url, &prefix, concurrency, opts.worker_threads).await?);
    }
    for w in &mut workers {
        w.expect("ready").await?;
    }
    // Hold every slot, so that the backlog waits for one start signal.
    let gates = (0..processes * concurrency)
        .map(|_| gate_job(1, DRAIN_QUEUE))
        .collect();
    client.push_bulk(gates).await?;
    for w in &mut workers {
        w.expect("gated").await?;
    }

    let jobs: Vec<NewJob> = (0..opts.jobs)
        .map(|i| noop_job(i, padding, opts.status, DRAIN_QUEUE))
        .collect();
    let before = snapshot(client).await?;
    let start = Instant::now();
    client.push_bulk(jobs).await?;
    let bulk_secs = start.elapsed().as_secs_f64();
    let after_bulk = snapshot(client).await?;

    let slowlog_on = slowlog && redis.is_private();
    let saved = if slowlog_on {
        Some(slowlog_start(client).await?)
    } else {
        None
    };
    let target = processed(client).await? + (processes * concurrency) as u64 + opts.jobs;
    let before_drain = snapshot(client).await?;
    let worker_cpu_before: f64 = workers.iter().map(WorkerProcess::cpu_secs).sum();
    let start = Instant::now();
    for w in &mut workers {
        w.send("go").await?;
    }
    wait_processed(client, target).await?;
    let drain_secs = start.elapsed().as_secs_f64();
    let worker_cpu_after: f64 = workers.iter().map(WorkerProcess::cpu_secs).sum();
    let after_drain = snapshot(client).await?;
    let slowlog = match saved {
        Some(saved) => Some(slowlog_collect(client, saved).await?),
        None => None,
    };

    let mut connections = Vec::new();
    let mut peak_rss_kib = Vec::new();
    for w in &workers {
        connections.push(connections_of(client, w.pid).await?);
        peak_rss_kib.push(w.peak_rss_kib());
    }
    for w in workers {
        w.quit().await?;
    }
    let n = opts.jobs as f64;
    Ok(Drain {
        bulk_secs,
        bulk_bytes_per_job: (after_bulk.used_memory - before.used_memory) / n,
        bulk_cpu_us_per_job: (after_bulk.cpu_secs - before.cpu_secs) * 1e6 / n,
        bulk_stats: after_bulk.stats.since(&before.stats),
        drain_secs,
        drain_cpu_us_per_job: (after_drain.cpu_secs - before_drain.cpu_secs) * 1e6 / n,
        drain_stats: after_drain.stats.since(&before_drain.stats),
        worker_cpu_us_per_job: (worker_cpu_after - worker_cpu_before) * 1e6 / n,
        slowlog,
        connections,
        peak_rss_kib,
    })
}

async fn pickup_phase(
    redis: &BenchRedis,
    client: &Client,
    opts: &Options,
    padding: &str,
) -> Result<Histogram<u64>> {
    // The worker gets its own client (its own connection), as in a worker process.
    let worker_client = Client::connect(
        redis
            .config("loadtest")
            .prefix(client.keys().prefix())
            .connection_name("loadtest-pickup-worker"),
    )
    .await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let tx2 = tx.clone();
    let worker = Worker::builder()
        .concurrency(opts.concurrency)
        .queues(Queues::strict(&[PICKUP_QUEUE])?)
        .register(move |_: Noop, _: JobContext| {
            let started = Instant::now();
            let _ = tx.send(started);
            async { Ok::<_, Failure>(()) }
        })
        .register(move |_: NoopUntracked, _: JobContext| {
            let started = Instant::now();
            let _ = tx2.send(started);
            async { Ok::<_, Failure>(()) }
        })
        .build(worker_client)?
        .start();
    let mut h = histogram();
    for i in 0..opts.pickup_samples + PICKUP_WARMUP {
        // An idle worker: the previous job's ack has landed, nothing is in flight.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let job = noop_job(i, padding, opts.status, PICKUP_QUEUE);
        let start = Instant::now();
        client.push(job).await?;
        let started = tokio::time::timeout(WORKER_DEADLINE, rx.recv())
            .await
            .map_err(|_| LoadError::Timeout("a pickup"))?
            .ok_or(LoadError::Timeout("a pickup (handler gone)"))?;
        if i >= PICKUP_WARMUP {
            h.saturating_record(started.saturating_duration_since(start).as_nanos() as u64);
        }
    }
    worker.shutdown().await?;
    Ok(h)
}

// ---------------------------------------------------------------------------------------
// Slowlog profile: every command of the drain with its execution time, by script.

/// One row of the slowlog breakdown.
struct SlowRow {
    name: String,
    calls: u64,
    usec: u64,
    /// Jobs the calls carried in all (from their key counts), when that means something.
    jobs: Option<u64>,
}

/// The slowlog settings to restore.
struct SlowlogSaved {
    slower_than: String,
    max_len: String,
}

async fn config_get(client: &Client, name: &str) -> Result<String> {
    let mut conn = client.connection();
    let pair: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(&mut conn)
        .await?;
    Ok(pair.get(1).cloned().unwrap_or_default())
}

async fn config_set(client: &Client, name: &str, value: &str) -> Result<()> {
    let mut conn = client.connection();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

async fn slowlog_start(client: &Client) -> Result<SlowlogSaved> {
    let saved = SlowlogSaved {
        slower_than: config_get(client, "slowlog-log-slower-than").await?,
        max_len: config_get(client, "slowlog-max-len").await?,
    };
    config_set(client, "slowlog-max-len", &SLOWLOG_LEN.to_string()).await?;
    config_set(client, "slowlog-log-slower-than", "0").await?;
    let mut conn = client.connection();
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async::<()>(&mut conn)
        .await?;
    Ok(saved)
}

fn script_names() -> Vec<(String, &'static str)> {
    queue_core::scripts::script_hashes()
        .into_iter()
        .map(|(name, sha)| (sha, name))
        .collect()
}

fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

async fn slowlog_collect(client: &Client, saved: SlowlogSaved) -> Result<Vec<SlowRow>> {
    let mut conn = client.connection();
    config_set(client, "slowlog-log-slower-than", &saved.slower_than).await?;
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(&mut conn)
        .await?;
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async::<()>(&mut conn)
        .await?;
    config_set(client, "slowlog-max-len", &saved.max_len).await?;
    if entries.len() as u64 >= SLOWLOG_LEN {
        eprintln!(
            "loadtest: the slowlog filled up ({SLOWLOG_LEN} entries): the breakdown misses the start of the drain"
        );
    }
    let names = script_names();
    let mut rows: BTreeMap<String, SlowRow> = BTreeMap::new();
    for entry in &entries {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let (Some(redis::Value::Int(usec)), Some(redis::Value::Array(args))) =
            (fields.get(2), fields.get(3))
        else {
            continue;
        };
        let args: Vec<String> = args.iter().filter_map(text).collect();
        let Some(cmd) = args.first() else { continue };
        let cmd = cmd.to_ascii_lowercase();
        let (name, jobs) = if cmd == "evalsha" || cmd == "eval" {
            let script = args
                .get(1)
                .and_then(|sha| names.iter().find(|(h, _)| h == sha))
                .map_or("unknown script", |(_, n)| *n);
            let numkeys: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(0);
            let jobs = match script {
                "start.lua" => Some(numkeys),
                "ack_fetch.lua" => args.get(3 + numkeys as usize).and_then(|a| a.parse().ok()),
                _ => None,
            };
            (script.to_owned(), jobs)
        } else {
            (cmd, None)
        };
        let row = rows.entry(name.clone()).or_insert(SlowRow {
            name,
            calls: 0,
            usec: 0,
            jobs: None,
        });
        row.calls += 1;
        row.usec += u64::try_from(*usec).unwrap_or(0);
        if let Some(j) = jobs {
            row.jobs = Some(row.jobs.unwrap_or(0) + j);
        }
    }
    let mut rows: Vec<SlowRow> = rows.into_values().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.usec));
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// Report.

/// A target of issue 6: metric, comparison, bound.
struct Target {
    metric: &'static str,
    at_most: bool,
    bound: f64,
}

const TARGETS: &[Target] = &[
    Target {
        metric: "enqueue_p50_ratio",
        at_most: true,
        bound: 2.0,
    },
    Target {
        metric: "enqueue_p99_us",
        at_most: true,
        bound: 300.0,
    },
    Target {
        metric: "bulk_enqueue_jobs_per_s",
        at_most: false,
        bound: 200_000.0,
    },
    Target {
        metric: "drain_jobs_per_s",
        at_most: false,
        bound: 50_000.0,
    },
    Target {
        metric: "redis_cpu_us_per_job",
        at_most: true,
        bound: 15.0,
    },
    Target {
        metric: "pickup_p50_us",
        at_most: true,
        bound: 500.0,
    },
    Target {
        metric: "pickup_p99_us",
        at_most: true,
        bound: 1_500.0,
    },
    Target {
        metric: "redis_connections_c100",
        at_most: true,
        bound: 3.0,
    },
    Target {
        metric: "worker_peak_rss_mb_c100",
        at_most: true,
        bound: 20.0,
    },
];

fn round(x: f64, digits: i32) -> Value {
    let p = 10f64.powi(digits);
    json!((x * p).round() / p)
}

fn stats_json(stats: &CommandStats, jobs: f64) -> Value {
    let mut rows: Vec<_> = stats.0.iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1.usec));
    let mut out = Map::new();
    for (name, s) in rows {
        out.insert(
            name.clone(),
            json!({
                "calls_per_job": round(s.calls as f64 / jobs, 4),
                "usec_per_job": round(s.usec as f64 / jobs, 3),
            }),
        );
    }
    Value::Object(out)
}

fn slowlog_json(rows: &[SlowRow], jobs: f64) -> Value {
    let mut out = Map::new();
    for r in rows {
        out.insert(
            r.name.clone(),
            json!({
                "calls": r.calls,
                "calls_per_job": round(r.calls as f64 / jobs, 4),
                "usec_per_call": round(r.usec as f64 / r.calls.max(1) as f64, 2),
                "usec_per_job": round(r.usec as f64 / jobs, 3),
                "jobs_per_call": r.jobs.map(|j| round(j as f64 / r.calls.max(1) as f64, 2)),
            }),
        );
    }
    Value::Object(out)
}

async fn coordinator_main(opts: &Options) -> Result<()> {
    let load_start = load_average();
    let redis = BenchRedis::from_env();
    // `push_bulk` sends all its 1,000-job chunks at once and bounds each by the client
    // timeout from that same start, so a bulk of 100,000 jobs that takes more than the
    // default 2 s in all (a loaded 2-core machine) fails although every chunk is progressing.
    // The driving client gets a longer bound; the workers keep the default.
    let config = redis
        .config("loadtest")
        .connection_name("loadtest-client")
        .timeout(BULK_TIMEOUT);
    let client = Client::connect(config).await?;
    let prefix = client.keys().prefix().to_owned();
    let clear = || async {
        let mut conn = client.connection();
        redis.clear(&mut conn, &prefix).await
    };
    clear().await?;
    let padding = "x".repeat(opts.payload_bytes);
    let progress = |what: &str| {
        if !opts.json {
            eprintln!("loadtest: {what}…");
        }
    };

    progress("PING round trips");
    let pings = ping_phase(&client, opts.ping_samples).await?;
    progress("sequential enqueues");
    let enqueues = enqueue_phase(&client, opts, &padding).await?;
    clear().await?;
    progress("bulk enqueue and drain");
    let main = drain_phase(
        &redis,
        &client,
        opts,
        &padding,
        opts.processes,
        opts.concurrency,
        opts.slowlog,
    )
    .await?;
    clear().await?;
    let high = if opts.c100 {
        progress("drain at concurrency 100");
        let d = drain_phase(&redis, &client, opts, &padding, 1, HIGH_CONCURRENCY, false).await?;
        clear().await?;
        Some(d)
    } else {
        None
    };
    progress("pickup latency");
    let pickups = pickup_phase(&redis, &client, opts, &padding).await?;
    clear().await?;
    let load_end = load_average();

    let ping = us(&pings, 0.5);
    let jobs = opts.jobs as f64;
    let mb = |kib: &[u64]| kib.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
    let conns = |d: &Drain| d.connections.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_owned(), v);
    };
    put("jobs", json!(opts.jobs));
    put("concurrency", json!(opts.concurrency));
    put("processes", json!(opts.processes));
    put("worker_threads", json!(opts.worker_threads));
    put("client_threads", json!(opts.client_threads));
    put("payload_bytes", json!(opts.payload_bytes));
    put("status_tracking", json!(opts.status));
    put(
        "redis",
        json!(if redis.is_private() {
            "private"
        } else {
            "REDIS_URL"
        }),
    );
    put("load_avg_1m_start", round(load_start, 2));
    put("load_avg_1m_end", round(load_end, 2));
    put("ping_rtt_us", round(ping, 1));
    put("ping_p99_us", round(us(&pings, 0.99), 1));
    for (name, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
        put(&format!("enqueue_{name}_us"), round(us(&enqueues, q), 1));
        put(
            &format!("enqueue_{name}_ratio"),
            round(us(&enqueues, q) / ping, 2),
        );
    }
    put("bulk_enqueue_jobs_per_s", round(jobs / main.bulk_secs, 0));
    put(
        "bulk_redis_cpu_us_per_job",
        round(main.bulk_cpu_us_per_job, 2),
    );
    put("redis_bytes_per_job", round(main.bulk_bytes_per_job, 0));
    put("drain_jobs_per_s", round(jobs / main.drain_secs, 0));
    put("drain_seconds", round(main.drain_secs, 3));
    put("redis_cpu_us_per_job", round(main.drain_cpu_us_per_job, 2));
    put(
        "worker_cpu_us_per_job",
        round(main.worker_cpu_us_per_job, 2),
    );
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        put(&format!("pickup_{name}_us"), round(us(&pickups, q), 1));
        put(
            &format!("pickup_{name}_ratio"),
            round(us(&pickups, q) / ping, 2),
        );
    }
    put("redis_connections", json!(conns(&main)));
    put("worker_peak_rss_mb", round(mb(&main.peak_rss_kib), 1));
    if let Some(h) = &high {
        put("drain_jobs_per_s_c100", round(jobs / h.drain_secs, 0));
        put(
            "redis_cpu_us_per_job_c100",
            round(h.drain_cpu_us_per_job, 2),
        );
        put(
            "worker_cpu_us_per_job_c100",
            round(h.worker_cpu_us_per_job, 2),
        );
        put("redis_connections_c100", json!(conns(h)));
        put("worker_peak_rss_mb_c100", round(mb(&h.peak_rss_kib), 1));
    }
    let mut met = Map::new();
    for t in TARGETS {
        if let Some(v) = out.get(t.metric).and_then(Value::as_f64) {
            let ok = if t.at_most {
                v <= t.bound
            } else {
                v >= t.bound
            };
            met.insert(t.metric.to_owned(), json!(ok));
        }
    }
    let connection_names = main.connections.first().cloned().unwrap_or_default();
    if opts.profile || opts.slowlog {
        let mut p = Map::new();
        p.insert(
            "bulk_commandstats".into(),
            stats_json(&main.bulk_stats, jobs),
        );
        p.insert(
            "drain_commandstats".into(),
            stats_json(&main.drain_stats, jobs),
        );
        if let Some(rows) = &main.slowlog {
            p.insert("drain_slowlog".into(), slowlog_json(rows, jobs));
        }
        p.insert("worker_connections".into(), json!(connection_names));
        out.insert("profile".into(), Value::Object(p));
    }
    out.insert("targets_met".into(), Value::Object(met.clone()));

    if opts.json {
        println!("{}", Value::Object(out));
        return Ok(());
    }
    print_table(opts, &out, &met, &connection_names, &main);
    Ok(())
}

fn print_table(
    opts: &Options,
    out: &Map<String, Value>,
    met: &Map<String, Value>,
    connection_names: &[String],
    main: &Drain,
) {
    println!(
        "\nloadtest: {} jobs, {} worker process(es) × concurrency {}, payload {} B, status tracking {}",
        opts.jobs,
        opts.processes,
        opts.concurrency,
        opts.payload_bytes,
        if opts.status { "on" } else { "off" }
    );
    println!("{:<28} {:>14}   target", "metric", "value");
    for (k, v) in out {
        if matches!(k.as_str(), "profile" | "targets_met") {
            continue;
        }
        let target = TARGETS.iter().find(|t| t.metric == k).map(|t| {
            let ok = met.get(k.as_str()).and_then(Value::as_bool) == Some(true);
            format!(
                "{} {} {}",
                if t.at_most { "≤" } else { "≥" },
                t.bound,
                if ok { "met" } else { "NOT MET" }
            )
        });
        println!(
            "{k:<28} {:>14}   {}",
            v.to_string(),
            target.unwrap_or_default()
        );
    }
    println!(
        "worker connections: {}",
        if connection_names.is_empty() {
            "-".to_owned()
        } else {
            connection_names.join(", ")
        }
    );
    if opts.profile || opts.slowlog {
        let jobs = opts.jobs as f64;
        for (title, stats) in [
            ("bulk enqueue", &main.bulk_stats),
            ("drain", &main.drain_stats),
        ] {
            println!("\nINFO commandstats, {title}, per job (script time includes its commands):");
            let mut rows: Vec<_> = stats.0.iter().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.1.usec));
            for (name, s) in rows {
                println!(
                    "  {name:<16} calls/job {:>8.4}   µs/job {:>8.3}",
                    s.calls as f64 / jobs,
                    s.usec as f64 / jobs
                );
            }
        }
        if let Some(rows) = &main.slowlog {
            println!("\nSLOWLOG of the drain (execution time only, by script):");
            for r in rows {
                println!(
                    "  {:<16} calls {:>8}  calls/job {:>7.4}  µs/call {:>7.2}  µs/job {:>7.3}  jobs/call {}",
                    r.name,
                    r.calls,
                    r.calls as f64 / jobs,
                    r.usec as f64 / r.calls.max(1) as f64,
                    r.usec as f64 / jobs,
                    r.jobs
                        .map(|j| format!("{:.2}", j as f64 / r.calls.max(1) as f64))
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
    }
}
