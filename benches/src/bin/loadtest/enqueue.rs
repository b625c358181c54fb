//! Enqueue latency: sequential single enqueues, each timed.

use crate::error::Result;
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
) -> Result<Histogram<u64>> {
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
