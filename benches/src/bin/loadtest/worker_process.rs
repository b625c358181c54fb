//! A worker process as the coordinator drives it: spawn, control lines, CPU and memory.

use crate::error::{LoadError, Result, io};
use crate::options::Options;
use crate::process_stats::{proc_status_kib, process_cpu_secs};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// How long a worker process may take to start, or to take its gate jobs.
pub(crate) const WORKER_DEADLINE: Duration = Duration::from_secs(60);

/// A worker process seen from the coordinator.
pub(crate) struct WorkerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    pub(crate) pid: u32,
}

impl WorkerProcess {
    pub(crate) async fn spawn(
        redis_env: &[(&'static str, String)],
        prefix: &str,
        queues: &str,
        concurrency: usize,
        opts: &Options,
    ) -> Result<Self> {
        let exe = std::env::current_exe().map_err(io("finding the loadtest binary"))?;
        // `--worker-cpus`: through `taskset`, which execs the binary (same pid).
        let mut command = match &opts.worker_cpus {
            Some(cpus) => {
                let mut c = tokio::process::Command::new("taskset");
                c.arg("-c").arg(cpus).arg(exe);
                c
            }
            None => tokio::process::Command::new(exe),
        };
        if let Some(n) = opts.event_interval {
            command.arg("--event-interval").arg(n.to_string());
        }
        let mut child = command
            .arg("--worker")
            .arg(prefix)
            .arg("--concurrency")
            .arg(concurrency.to_string())
            .arg("--queue")
            .arg(queues)
            .arg("--worker-threads")
            .arg(opts.worker_threads.to_string())
            .envs(redis_env.iter().map(|(k, v)| (k, v)))
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

    pub(crate) async fn expect(&mut self, line: &'static str) -> Result<()> {
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

    pub(crate) async fn send(&mut self, line: &str) -> Result<()> {
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
    pub(crate) fn cpu_secs(&self) -> f64 {
        process_cpu_secs(self.pid)
    }

    /// Peak resident memory (`VmHWM`) in KiB.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmHWM:")
    }

    pub(crate) async fn quit(mut self) -> Result<()> {
        self.send("quit").await?;
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .map_err(|_| LoadError::Timeout("a worker process's shutdown"))?
            .map_err(io("waiting for a worker process"))?;
        Ok(())
    }
}
