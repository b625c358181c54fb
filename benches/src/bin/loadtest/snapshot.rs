//! Redis server state (CPU, memory, command stats) before and after a phase.

use crate::error::Result;
use benches::{CommandStats, info, info_f64, redis_cpu_secs};
use queue_core::Client;

/// Server state before and after a phase.
pub(crate) struct Snapshot {
    pub(crate) cpu_secs: f64,
    pub(crate) used_memory: f64,
    pub(crate) stats: CommandStats,
}

pub(crate) async fn snapshot(client: &Client) -> Result<Snapshot> {
    let mut conn = client.raw_connection();
    let all = info(&mut conn, "all").await?;
    Ok(Snapshot {
        cpu_secs: redis_cpu_secs(&all),
        used_memory: info_f64(&all, "used_memory"),
        stats: CommandStats::parse(&all),
    })
}
