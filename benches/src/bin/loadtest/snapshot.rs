//! Redis server state (CPU, memory, command stats) before and after a phase.

use crate::error::Result;
use benches::{CommandStats, info, info_f64, parse_info, redis_cpu_secs};
use queue_core::Client;

/// Server state before and after a phase.
pub(crate) struct Snapshot {
    pub(crate) cpu_secs: f64,
    pub(crate) used_memory: f64,
    pub(crate) stats: CommandStats,
}

/// The state of the server holding the app's slot; with queues spread over a cluster's
/// slots, the sum over the masters of `queues`' slots.
pub(crate) async fn snapshot(client: &Client, queues: &[String]) -> Result<Snapshot> {
    let mut conn = client.raw_connection();
    if !client.config().spread_queues {
        let all = info(&mut conn, "all").await?;
        return Ok(Snapshot {
            cpu_secs: redis_cpu_secs(&all),
            used_memory: info_f64(&all, "used_memory"),
            stats: CommandStats::parse(&all),
        });
    }
    let mut sum = Snapshot {
        cpu_secs: 0.0,
        used_memory: 0.0,
        stats: CommandStats::default(),
    };
    for queue in queues {
        // A pipeline goes to the slot of its first key: this queue's master answers INFO.
        let key = client.for_queue(queue).keys().queue(queue);
        let (_, text): (bool, String) = redis::pipe()
            .cmd("EXISTS")
            .arg(&key)
            .cmd("INFO")
            .arg("all")
            .query_async(&mut conn)
            .await?;
        let all = parse_info(&text);
        sum.cpu_secs += redis_cpu_secs(&all);
        sum.used_memory += info_f64(&all, "used_memory");
        sum.stats.add(&CommandStats::parse(&all));
    }
    Ok(sum)
}
