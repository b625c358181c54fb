//! Slowlog profile: every command of the drain with its execution time, by script.

use crate::error::Result;
use queue_core::Client;
use std::collections::BTreeMap;

/// Entries kept by the profiling slowlog (each a few KB at most).
pub(crate) const SLOWLOG_LEN: u64 = 200_000;

/// One row of the slowlog breakdown.
pub(crate) struct SlowRow {
    pub(crate) name: String,
    pub(crate) calls: u64,
    pub(crate) usec: u64,
    /// Jobs the calls carried in all (from their key counts), when that means something.
    pub(crate) jobs: Option<u64>,
}

/// The slowlog settings to restore.
pub(crate) struct SlowlogSaved {
    slower_than: String,
    max_len: String,
}

pub(crate) async fn config_get(client: &Client, name: &str) -> Result<String> {
    let mut conn = client.raw_connection();
    // A map in RESP3 (the shared connection's protocol on Redis 6+), a flat pair in RESP2.
    let mut map: std::collections::HashMap<String, String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg(name)
        .query_async(&mut conn)
        .await?;
    Ok(map.remove(name).unwrap_or_default())
}

pub(crate) async fn config_set(client: &Client, name: &str, value: &str) -> Result<()> {
    let mut conn = client.raw_connection();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async::<()>(&mut conn)
        .await?;
    Ok(())
}

pub(crate) async fn slowlog_start(client: &Client) -> Result<SlowlogSaved> {
    let saved = SlowlogSaved {
        slower_than: config_get(client, "slowlog-log-slower-than").await?,
        max_len: config_get(client, "slowlog-max-len").await?,
    };
    config_set(client, "slowlog-max-len", &SLOWLOG_LEN.to_string()).await?;
    config_set(client, "slowlog-log-slower-than", "0").await?;
    let mut conn = client.raw_connection();
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async::<()>(&mut conn)
        .await?;
    Ok(saved)
}

pub(crate) fn script_names() -> Vec<(String, &'static str)> {
    queue_core::scripts::script_hashes()
        .into_iter()
        .map(|(name, sha)| (sha, name))
        .collect()
}

pub(crate) fn text(v: &redis::Value) -> Option<String> {
    match v {
        redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        redis::Value::SimpleString(s) => Some(s.clone()),
        redis::Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

pub(crate) async fn slowlog_collect(client: &Client, saved: SlowlogSaved) -> Result<Vec<SlowRow>> {
    let mut conn = client.raw_connection();
    config_set(client, "slowlog-log-slower-than", &saved.slower_than).await?;
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query_async(&mut conn)
        .await?;
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async::<()>(&mut conn)
        .await?;
    config_set(client, "slowlog-max-len", &saved.max_len).await?;
    if entries.len() as u64 >= SLOWLOG_LEN {
        eprintln!(
            "loadtest: the slowlog filled up ({SLOWLOG_LEN} entries): the breakdown misses the start of the drain"
        );
    }
    let names = script_names();
    let mut rows: BTreeMap<String, SlowRow> = BTreeMap::new();
    for entry in &entries {
        let redis::Value::Array(fields) = entry else {
            continue;
        };
        let (Some(redis::Value::Int(usec)), Some(redis::Value::Array(args))) =
            (fields.get(2), fields.get(3))
        else {
            continue;
        };
        let args: Vec<String> = args.iter().filter_map(text).collect();
        let Some(cmd) = args.first() else { continue };
        let cmd = cmd.to_ascii_lowercase();
        let (name, jobs) = if cmd == "evalsha" || cmd == "eval" {
            let script = args
                .get(1)
                .and_then(|sha| names.iter().find(|(h, _)| h == sha))
                .map_or("unknown script", |(_, n)| *n);
            let numkeys: u64 = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(0);
            let jobs = match script {
                "start.lua" => Some(numkeys),
                "ack_fetch.lua" => args.get(3 + numkeys as usize).and_then(|a| a.parse().ok()),
                _ => None,
            };
            (script.to_owned(), jobs)
        } else {
            (cmd, None)
        };
        let row = rows.entry(name.clone()).or_insert(SlowRow {
            name,
            calls: 0,
            usec: 0,
            jobs: None,
        });
        row.calls += 1;
        row.usec += u64::try_from(*usec).unwrap_or(0);
        if let Some(j) = jobs {
            row.jobs = Some(row.jobs.unwrap_or(0) + j);
        }
    }
    let mut rows: Vec<SlowRow> = rows.into_values().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.usec));
    Ok(rows)
}
