//! Enqueue latency: sequential single enqueues, each timed.

use crate::error::Result;
use crate::handoffs::{Counts, PerfCounter};
use crate::histogram::histogram;
use crate::options::Options;
use benches::noop_job;
use hdrhistogram::Histogram;
use queue_core::Client;
use std::time::Instant;

/// Queue of the sequential-enqueue phase (no worker takes it).
pub(crate) const LATENCY_QUEUE: &str = "latency";

pub(crate) async fn enqueue_phase(
    client: &Client,
    opts: &Options,
    padding: &str,
) -> Result<(Histogram<u64>, Option<Counts>)> {
    // `--handoffs`: this process's counts per enqueue (the client side of a round trip).
    let mut perf = if opts.handoffs {
        Some(PerfCounter::attach(std::process::id()).await?)
    } else {
        None
    };
    let mut h = histogram();
    let warmup = opts.enqueue_samples / 20;
    for i in 0..opts.enqueue_samples + warmup {
        if i == warmup
            && let Some(p) = &mut perf
        {
            p.enable().await?;
        }
        let job = noop_job(i, padding, opts.status, LATENCY_QUEUE);
        let start = Instant::now();
        client.push(job).await?;
        if i >= warmup {
            h.saturating_record(start.elapsed().as_nanos() as u64);
        }
    }
    let counts = match perf {
        Some(mut p) => {
            p.disable().await?;
            Some(p.finish().await?)
        }
        None => None,
    };
    Ok((h, counts))
}
