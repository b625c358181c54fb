//! The host's baseline, same run, same server (`--redis-benchmark`): C's `redis-benchmark -t
//! lpush -P 16 -n 1000000 -q` against the run's private Redis. The issues' throughput targets
//! assume about [`REFERENCE_LPUSH_PER_S`] from it; a slower host scales them by its own figure.

use crate::error::{LoadError, Result, io};
use queue_core::Client;

/// What `redis-benchmark -t lpush -P 16` gave on the host the issues' targets were set on.
pub(crate) const REFERENCE_LPUSH_PER_S: f64 = 1_800_000.0;

/// The list `redis-benchmark -t lpush` fills (deleted afterwards).
const BENCHMARK_KEY: &str = "mylist";

/// LPUSHes per second that `redis-benchmark` reaches against `port` on loopback.
pub(crate) async fn redis_benchmark_phase(client: &Client, port: u16) -> Result<f64> {
    let out = tokio::process::Command::new("redis-benchmark")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-t", "lpush", "-P", "16", "-n", "1000000", "-q"])
        .output()
        .await
        .map_err(io("running redis-benchmark (is it on PATH?)"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rate = parse_lpush(&text)
        .ok_or_else(|| LoadError::Perf(format!("redis-benchmark printed {text:?}")))?;
    let mut conn = client.raw_connection();
    redis::cmd("DEL")
        .arg(BENCHMARK_KEY)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(rate)
}

/// The rate of `LPUSH: 1811594.25 requests per second, p50=0.383 msec` (the last such line:
/// with `-q`, progress lines end in `\r` before it).
fn parse_lpush(text: &str) -> Option<f64> {
    text.split(['\r', '\n'])
        .filter_map(|l| l.trim().strip_prefix("LPUSH: "))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::parse_lpush;

    #[test]
    fn the_final_rate_is_read() {
        let text = "LPUSH: rps=1200000.0 (overall: 1190000.0) avg_msec=0.4\r\
                    LPUSH: 1811594.25 requests per second, p50=0.383 msec\n\n";
        assert_eq!(parse_lpush(text), Some(1_811_594.25));
        assert_eq!(parse_lpush("ERR\n"), None);
    }
}
