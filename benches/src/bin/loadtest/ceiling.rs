//! Redis's own ceiling for a queue, measured in the same run through the same client: what
//! pipelined `LPUSH` + `RPOP` pairs (one enqueue and one take per job, nothing else) reach.
//! The drain is reported as a fraction of it, so a figure from a slow host compares with one
//! from a fast host.

use crate::error::Result;
use queue_core::Client;
use std::time::Instant;

/// Pairs per pipeline: deep enough that the round trip is amortised, as in
/// `redis-benchmark -P 16` (which sends 16 commands per trip), but sized like a fetch batch.
const PAIRS_PER_PIPELINE: usize = 50;

/// Pipelines out at once on the shared connection, so Redis never waits for the client (the
/// worker also keeps two calls out).
const PIPELINES_IN_FLIGHT: usize = 4;

/// Jobs per second Redis sustains for about `pairs` LPUSH + RPOP pairs on key `key` (deleted
/// afterwards), after a warm-up of a tenth as many.
pub(crate) async fn ceiling_phase(client: &Client, key: &str, pairs: u64) -> Result<f64> {
    let conn = client.raw_connection();
    let payload = "x".repeat(128);
    let mut pipe = redis::pipe();
    for _ in 0..PAIRS_PER_PIPELINE {
        pipe.cmd("LPUSH").arg(key).arg(&payload).ignore();
    }
    for _ in 0..PAIRS_PER_PIPELINE {
        pipe.cmd("RPOP").arg(key).ignore();
    }
    let trips_per_task = (pairs as usize)
        .div_ceil(PAIRS_PER_PIPELINE * PIPELINES_IN_FLIGHT)
        .max(10);
    let run = |trips: usize| {
        let tasks = (0..PIPELINES_IN_FLIGHT).map(|_| {
            let mut conn = conn.clone();
            let pipe = &pipe;
            async move {
                for _ in 0..trips {
                    pipe.query_async::<()>(&mut conn).await?;
                }
                Ok::<_, redis::RedisError>(())
            }
        });
        futures_util::future::try_join_all(tasks)
    };
    run(trips_per_task / 10 + 1).await?;
    let start = Instant::now();
    run(trips_per_task).await?;
    let secs = start.elapsed().as_secs_f64();
    let mut conn = conn;
    redis::cmd("DEL")
        .arg(key)
        .query_async::<()>(&mut conn)
        .await?;
    let pairs = trips_per_task * PAIRS_PER_PIPELINE * PIPELINES_IN_FLIGHT;
    Ok(pairs as f64 / secs.max(1e-9))
}
