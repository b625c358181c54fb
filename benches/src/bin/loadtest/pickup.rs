//! Pickup latency: sequential enqueues to an idle worker in this process.

use crate::error::{LoadError, Result};
use crate::handoffs::{Counts, PerfCounter};
use crate::histogram::histogram;
use crate::options::Options;
use crate::target::Target;
use crate::worker_process::WORKER_DEADLINE;
use benches::{Noop, NoopUntracked, noop_job};
use hdrhistogram::Histogram;
use queue_core::Client;
use queue_worker::{Failure, JobContext, Queues, Worker};
use std::time::{Duration, Instant};

/// Queue of the pickup phase's in-process worker.
pub(crate) const PICKUP_QUEUE: &str = "pickup";
/// Jobs per `push_bulk` call in the pickup warm-up and the gates (one call).
pub(crate) const PICKUP_WARMUP: u64 = 50;

pub(crate) async fn pickup_phase(
    target: &Target,
    client: &Client,
    opts: &Options,
    padding: &str,
) -> Result<(Histogram<u64>, Option<Counts>)> {
    // The worker gets its own client (its own connection), as in a worker process.
    let worker_client = Client::connect(
        target
            .config(client.keys().prefix())?
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
    // `--handoffs`: this whole process (the enqueuing client and the worker), per pickup.
    let mut perf = if opts.handoffs {
        Some(PerfCounter::attach(std::process::id()).await?)
    } else {
        None
    };
    let mut h = histogram();
    for i in 0..opts.pickup_samples + PICKUP_WARMUP {
        if i == PICKUP_WARMUP
            && let Some(p) = &mut perf
        {
            p.enable().await?;
        }
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
    let counts = match perf {
        Some(mut p) => {
            p.disable().await?;
            Some(p.finish().await?)
        }
        None => None,
    };
    worker.shutdown().await?;
    Ok((h, counts))
}
