//! What `/proc` and `CLIENT LIST` say about a worker process: CPU, memory, connections.

use crate::error::Result;
use queue_core::Client;
use std::collections::HashSet;

/// CPU seconds (user + system, all threads) of process `pid` from `/proc/<pid>/stat`
/// (clock ticks of 10 ms: fine over drains of a second or more), 0 when unknown.
pub(crate) fn process_cpu_secs(pid: u32) -> f64 {
    /// `sysconf(_SC_CLK_TCK)` on Linux.
    const TICKS_PER_SEC: f64 = 100.0;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / TICKS_PER_SEC)
        })
        .unwrap_or(0.0)
}

/// A `kB` field of `/proc/<pid>/status`, 0 when unknown.
pub(crate) fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(field)
                    .and_then(|v| v.split_whitespace().next()?.parse().ok())
            })
        })
        .unwrap_or(0)
}

/// Local TCP ports of the sockets process `pid` holds (its fds, matched in `/proc/net/tcp*`).
pub(crate) fn local_ports(pid: u32) -> HashSet<u16> {
    let mut inodes = HashSet::new();
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in dir.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse::<u64>().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    let mut ports = HashSet::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (cols.get(1), cols.get(9)) else {
                continue;
            };
            if inode.parse::<u64>().is_ok_and(|i| inodes.contains(&i))
                && let Some(port) = local
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.insert(port);
            }
        }
    }
    ports
}

/// The connections of `CLIENT LIST` that belong to process `pid`: their names.
pub(crate) async fn connections_of(client: &Client, pid: u32) -> Result<Vec<String>> {
    let mut conn = client.raw_connection();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await?;
    let ports = local_ports(pid);
    let mut names = Vec::new();
    for line in list.lines() {
        let field = |k: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        let port = field("addr")
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse::<u16>().ok());
        if port.is_some_and(|p| ports.contains(&p)) {
            let name = field("name").filter(|n| !n.is_empty()).unwrap_or("-");
            let cmd = field("cmd").unwrap_or("?");
            names.push(format!("{name}({cmd})"));
        }
    }
    Ok(names)
}
