//! The `PING` round trip: the baseline of every ratio.

use crate::error::Result;
use crate::histogram::histogram;
use hdrhistogram::Histogram;
use queue_core::Client;
use std::time::Instant;

pub(crate) async fn ping_phase(client: &Client, n: u64) -> Result<Histogram<u64>> {
    let mut conn = client.raw_connection();
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
