//! A fleet: 20 worker processes at concurrency 25 on one Redis, and on a loopback Redis
//! Cluster. Every job runs exactly once (no kill involved), each process holds 1 connection
//! to a single server and at most 2 to any node of a cluster (the issue's bound is 3 per
//! process, 60 in all), and the scheduler, the reaper and cron keep working with 20
//! competitors: scheduled jobs are promoted once, a planted dead process's jobs are
//! recovered once, and every cron tick is pushed once.

mod worker_binary;

use queue_core::testing::{TestCluster, TestRedis};
use queue_core::{Client, EnqueueOptions, JobId, NewJob};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use worker_binary::*;

const PROCESSES: usize = 20;
const CONCURRENCY: usize = 25;
/// Jobs pushed in bulk before the fleet drains them.
const BULK_JOBS: usize = 4_000;
/// Jobs scheduled a little ahead, for the 20 schedulers to compete over.
const SCHEDULED_JOBS: usize = 200;
/// Jobs in the processing list of a planted process that has no lease, for the 20 reapers.
const ORPHANED_JOBS: usize = 50;
/// Connections one process may hold to one server (shared + pub/sub + one spare for a
/// reconnect).
const MAX_CONNECTIONS_PER_PROCESS: usize = 3;
/// How long the whole drain may take on a loaded 2-core machine.
const DRAIN_DEADLINE: Duration = Duration::from_secs(120);

/// The server ports whose connections are counted (the workers connect where the client's
/// configuration says).
struct Target {
    ports: Vec<u16>,
    /// Connections one process holds to one node: 1 on a single RESP3 server (wake-ups ride
    /// the shared connection), 2 on a cluster (a master's connection and maybe the pub/sub one).
    per_process_and_node: usize,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `queue::Sleep` jobs that return at once (tracked: the ledger counts their runs by id).
fn sleep_job(options: EnqueueOptions) -> NewJob {
    NewJob {
        options,
        ..NewJob::new("queue::Sleep", vec![json!({"millis": 0})])
    }
}

/// Loopback TCP connections from process `pid` to any of `ports`, found through its file
/// descriptors' socket inodes in `/proc/net/tcp`.
fn connections_of(pid: u32, ports: &[u16]) -> usize {
    let mut inodes = HashSet::new();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    for fd in fds.flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            {
                inodes.insert(inode.to_owned());
            }
        }
    }
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // rem_address is HEX_IP:HEX_PORT; state 01 is ESTABLISHED; field 9 the inode.
            fields.len() > 9
                && fields[3] == "01"
                && inodes.contains(fields[9])
                && fields[2]
                    .split_once(':')
                    .and_then(|(_, port)| u16::from_str_radix(port, 16).ok())
                    .is_some_and(|port| ports.contains(&port))
        })
        .count()
}

async fn run_fleet(name: &str, client: Client, target: Target) {
    let harness = Harness::new(name, client.config());
    let entry = r#"[{"name":"fleet-tick","cron":"* * * * * *","class":"queue::Noop",
        "queue":"cron-out","track_status":false}]"#;
    let env = [("PERIODIC_JOBS", entry), ("WORKER_QUEUES", "default")];
    let mut workers: Vec<_> = (0..PROCESSES)
        .map(|i| harness.spawn(&format!("w{i}"), CONCURRENCY, 10, &env))
        .collect();
    for w in &workers {
        wait_registered(&client, w.pid(), Duration::from_secs(60)).await;
    }
    let started = now_secs();

    // Every process connected and idle: count its sockets to each Redis node. A plan's
    // limit is per server, so the bound is per process and node, and per node in all.
    let mut per_node: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
    for &port in &target.ports {
        per_node.insert(
            port,
            workers
                .iter()
                .map(|w| connections_of(w.pid(), &[port]))
                .collect(),
        );
    }
    let per_process: Vec<usize> = workers
        .iter()
        .map(|w| connections_of(w.pid(), &target.ports))
        .collect();
    println!("{name}: connections per process {per_process:?}; per node and process {per_node:?}");
    assert!(per_process.iter().all(|&n| n >= 1), "{per_process:?}");
    for (port, counts) in &per_node {
        assert!(
            counts
                .iter()
                .all(|&n| n <= target.per_process_and_node.min(MAX_CONNECTIONS_PER_PROCESS)),
            "node {port}: {counts:?}"
        );
        let total: usize = counts.iter().sum();
        assert!(
            total <= PROCESSES * MAX_CONNECTIONS_PER_PROCESS,
            "node {port}: {total}"
        );
    }

    // A process that died without a trace: registered, jobs in its processing list, no lease.
    let keys = client.keys().clone();
    let ghost = "ghost-host:1:ghost:0";
    let orphans: Vec<JobId> = (0..ORPHANED_JOBS).map(|_| JobId::new()).collect();
    let mut conn = client.raw_connection();
    for id in &orphans {
        let job = json!({"jid": id.as_str(), "class": "queue::Sleep", "args": [{"millis": 0}],
            "queue": "default", "retry": true, "created_at": now_secs(), "enqueued_at": now_secs()});
        let _: i64 = redis::cmd("LPUSH")
            .arg(keys.processing(ghost))
            .arg(job.to_string())
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    let _: i64 = redis::cmd("SADD")
        .arg(keys.workers())
        .arg(ghost)
        .query_async(&mut conn)
        .await
        .unwrap();

    let scheduled: Vec<NewJob> = (0..SCHEDULED_JOBS)
        .map(|i| sleep_job(EnqueueOptions::new().delay(Duration::from_millis(500 + 5 * i as u64))))
        .collect();
    let mut expected: Vec<JobId> = Vec::new();
    for job in scheduled {
        expected.push(client.push(job).await.unwrap());
    }
    let bulk: Vec<NewJob> = (0..BULK_JOBS)
        .map(|_| sleep_job(EnqueueOptions::new()))
        .collect();
    expected.extend(client.push_bulk(bulk).await.unwrap());
    expected.extend(orphans);

    let begun = Instant::now();
    let ledger = loop {
        let ledger = ledger(&client).await;
        if expected.iter().all(|id| ledger.contains_key(id.as_str())) {
            break ledger;
        }
        assert!(
            begun.elapsed() < DRAIN_DEADLINE,
            "{} of {} jobs ran in {DRAIN_DEADLINE:?}",
            expected
                .iter()
                .filter(|id| ledger.contains_key(id.as_str()))
                .count(),
            expected.len()
        );
        tokio::time::sleep(POLL).await;
    };
    let drained = begun.elapsed();
    let twice: Vec<(&String, &u64)> = ledger.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "jobs not run exactly once: {twice:?}");
    assert_eq!(ledger.len(), expected.len(), "runs of jobs nobody pushed");
    assert!(
        !smembers(&client, &keys.workers())
            .await
            .contains(&ghost.to_owned()),
        "the reaper never forgot the dead process"
    );

    let ended = now_secs();
    for w in &mut workers {
        w.sigterm();
    }
    for w in &mut workers {
        assert!(w.wait_exit(Duration::from_secs(30)).await.success());
    }
    let mut per_tick: BTreeMap<i64, usize> = BTreeMap::new();
    for tick in queued_ticks(&client, "cron-out", "fleet-tick").await {
        *per_tick.entry(tick).or_default() += 1;
    }
    let duplicates: HashMap<&i64, &usize> = per_tick.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicates.is_empty(), "ticks pushed twice: {duplicates:?}");
    let missing: Vec<i64> = (started.ceil() as i64 + 1..=ended.floor() as i64 - 1)
        .filter(|t| !per_tick.contains_key(t))
        .collect();
    assert!(missing.is_empty(), "ticks never pushed: {missing:?}");
    println!(
        "{name}: {} jobs ({BULK_JOBS} bulk, {SCHEDULED_JOBS} scheduled, {ORPHANED_JOBS} orphaned) \
         each run once by {PROCESSES}x{CONCURRENCY} in {:.1} s; {} cron ticks, each once",
        expected.len(),
        drained.as_secs_f64(),
        per_tick.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_on_one_redis_run_every_job_once() {
    // Sockets are counted per process to the server's port.
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("fleet")).await.unwrap();
    let target = Target {
        ports: vec![redis.port()],
        per_process_and_node: 1,
    };
    run_fleet("fleet_single", client, target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_processes_on_a_cluster_run_every_job_once() {
    let cluster = TestCluster::start();
    let client = Client::connect(cluster.config("fleet")).await.unwrap();
    let target = Target {
        ports: cluster.nodes().iter().map(TestRedis::port).collect(),
        per_process_and_node: 2,
    };
    run_fleet("fleet_cluster", client, target).await;
}
