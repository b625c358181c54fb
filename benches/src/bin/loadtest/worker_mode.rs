//! Worker-process mode: this binary re-executed with the hidden `--worker` flag.

use crate::error::{Result, io};
use crate::options::Options;
use crate::target::worker_config;
use crate::worker_process::WORKER_DEADLINE;
use benches::{Gates, register_noops};
use queue_core::Client;
use queue_worker::{Queues, Worker, WorkerConfig};
use std::io::Write as _;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Prints one control line to the coordinator.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A worker process: no-op and gate handlers; says `ready`, then `gated` once all its slots
/// hold gate jobs; `go` on stdin releases them, `quit` (or EOF) shuts it down.
pub(crate) async fn worker_main(opts: &Options, prefix: &str) -> Result<()> {
    let config =
        worker_config(prefix)?.connection_name(format!("loadtest-worker-{}", std::process::id()));
    let client = Client::connect(config).await?;
    let gates = Gates::new();
    // The worker variables (`WORKER_PREFETCH`, ...) apply, as in a worker binary.
    let builder = Worker::builder()
        .config(WorkerConfig::default().with_env()?)
        .concurrency(opts.concurrency)
        .queues(Queues::parse(&opts.worker_queue)?);
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
