//! Command-line options and the usage text.

use crate::drain::DRAIN_QUEUE;
use crate::error::{LoadError, Result};

pub(crate) const USAGE: &str = "\
usage: loadtest [--jobs N] [--concurrency C] [--processes P] [--payload-bytes B]
                [--no-status] [--json] [--profile] [--slowlog] [--no-c100] [--handoffs]
                [--redis-benchmark]
                [--worker-threads T] [--worker-cpus LIST] [--client-threads T]
                [--ping-samples N] [--enqueue-samples N] [--pickup-samples N]
                [--cluster] [--tag TAG] [--go-at UNIX_MS] [--queues N]

  --jobs N            jobs bulk-enqueued and drained (default 100000)
  --concurrency C     jobs run at once per worker process (default 10)
  --processes P       worker processes for the drain (default 1)
  --payload-bytes B   padding string in each job's args (default 64)
  --no-status         jobs without a status record (default: tracked)
  --json              print one JSON object instead of the table
  --profile           INFO commandstats deltas of the bulk enqueue and the drain
  --slowlog           SLOWLOG of the drain by script (private server; inflates script times)
  --no-c100           skip the drain with one worker process at concurrency 100
  --redis-benchmark   private server only: first run redis-benchmark -t lpush -P 16
                      -n 1000000 against it; issue 16's throughput targets are scaled
                      by its figure over 1.8M/s
  --handoffs          count futex calls, context switches, epoll waits and socket calls
                      (perf stat, attached): the worker processes' per drained job, this
                      process's per enqueue and per pickup
  --worker-threads T  runtime threads of each worker process (default 2; 1 = current-thread)
  --worker-cpus LIST  run the worker processes on these CPUs only (taskset -c LIST), e.g.
                      1 for a one-vCPU dyno while Redis and this process stay off it
  --event-interval N  tokio's event_interval for every runtime of the run (default 61): task
                      polls between two checks of the I/O driver and timers
  --client-threads T  runtime threads of this process, which also runs the pickup worker
                      (default 2; 1 = current-thread)
  --cluster           start a private Redis Cluster (3 masters, 3 replicas) and run on it
  --tag TAG           key prefix {TAG}: (default {loadtest}: on a private server, else
                      {loadtest-PID}:); on a cluster the tag chooses the slot, so the master
  --queues N          cluster only: drain N queues, each in its own slot
                      (REDIS_CLUSTER_SPREAD=queues), named so that their slots fall in N
                      equal ranges of the slot space (the masters of a cluster formed by
                      redis-cli --cluster create); default 1, the app's one slot
  --go-at UNIX_MS     release the drain's gates no earlier than this wall-clock time (ms
                      since the epoch), so that runs started together drain together
REDIS_URL: use that server instead of starting a private redis-server.
REDIS_CLUSTER_URLS: comma-separated node URLs of a Redis Cluster to run on (wins over
                    REDIS_URL); the worker processes get it too.";

/// Command-line options.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) jobs: u64,
    pub(crate) concurrency: usize,
    pub(crate) processes: usize,
    pub(crate) payload_bytes: usize,
    pub(crate) status: bool,
    pub(crate) json: bool,
    pub(crate) profile: bool,
    pub(crate) slowlog: bool,
    pub(crate) c100: bool,
    /// `--handoffs`: perf stat counts of the drains, enqueues and pickups.
    pub(crate) handoffs: bool,
    /// `--redis-benchmark`: the host's same-run baseline.
    pub(crate) redis_benchmark: bool,
    pub(crate) worker_threads: usize,
    /// `--worker-cpus`: the worker processes' CPU list (`taskset -c`).
    pub(crate) worker_cpus: Option<String>,
    /// `--event-interval`: tokio's `event_interval` of every runtime.
    pub(crate) event_interval: Option<u32>,
    pub(crate) client_threads: usize,
    pub(crate) ping_samples: u64,
    pub(crate) enqueue_samples: u64,
    pub(crate) pickup_samples: u64,
    /// `--cluster`: run on a private Redis Cluster.
    pub(crate) private_cluster: bool,
    /// `--tag`: the hash tag of the key prefix.
    pub(crate) tag: Option<String>,
    /// `--go-at`: earliest start of the drain, in ms since the Unix epoch.
    pub(crate) go_at_unix_ms: Option<u64>,
    /// Hidden: run as a worker process with this key prefix.
    pub(crate) worker_prefix: Option<String>,
    /// Hidden: the worker process's queues (`a,b,c`).
    pub(crate) worker_queue: String,
    /// `--queues`: queues drained, each in its own cluster slot when more than one.
    pub(crate) queues: usize,
}

impl Options {
    pub(crate) fn parse(args: impl IntoIterator<Item = String>) -> Result<Self> {
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
            handoffs: false,
            redis_benchmark: false,
            worker_threads: 2,
            worker_cpus: None,
            event_interval: None,
            client_threads: 2,
            ping_samples: 2_000,
            enqueue_samples: 10_000,
            pickup_samples: 1_000,
            private_cluster: false,
            tag: None,
            go_at_unix_ms: None,
            worker_prefix: None,
            worker_queue: DRAIN_QUEUE.to_owned(),
            queues: 1,
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
                "--event-interval" => {
                    o.event_interval = Some(number("--event-interval", value("--event-interval")?)?)
                }
                "--worker-cpus" => o.worker_cpus = Some(value("--worker-cpus")?),
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
                "--go-at" => o.go_at_unix_ms = Some(number("--go-at", value("--go-at")?)?),
                "--tag" => o.tag = Some(value("--tag")?),
                "--queues" => o.queues = number("--queues", value("--queues")?)?,
                "--cluster" => o.private_cluster = true,
                "--no-status" => o.status = false,
                "--json" => o.json = true,
                "--profile" => o.profile = true,
                "--slowlog" => o.slowlog = true,
                "--no-c100" => o.c100 = false,
                "--handoffs" => o.handoffs = true,
                "--redis-benchmark" => o.redis_benchmark = true,
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
        if !(1..=16).contains(&o.queues) {
            return Err(LoadError::Usage("--queues must be between 1 and 16".into()));
        }
        if o.ping_samples == 0 || o.enqueue_samples == 0 || o.pickup_samples == 0 {
            return Err(LoadError::Usage("sample counts must be positive".into()));
        }
        if o.tag
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.contains(['{', '}']))
        {
            return Err(LoadError::Usage(
                "--tag must be non-empty, without braces".into(),
            ));
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options> {
        Options::parse(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn cluster_options_are_read_and_a_tag_with_braces_is_refused() {
        let o = parse(&["--cluster", "--tag", "lt-2", "--go-at", "1700000000000"]).unwrap();
        assert!(o.private_cluster);
        assert_eq!(o.tag.as_deref(), Some("lt-2"));
        assert_eq!(o.go_at_unix_ms, Some(1_700_000_000_000));
        let plain = parse(&[]).unwrap();
        assert!(!plain.private_cluster && plain.tag.is_none() && plain.go_at_unix_ms.is_none());
        assert!(parse(&["--tag", "{x}"]).is_err());
        assert!(parse(&["--tag", ""]).is_err());
    }
}
