//! A Redis Cluster master killed during a drain: its replica takes over, the worker processes
//! carry on without a restart, and every acknowledged job runs, apart from writes the cluster
//! itself acknowledged and then dropped (asynchronous replication), which are counted apart.

mod worker_binary;

use queue_core::testing::TestCluster;
use queue_core::{Client, JobId, JobState, NewJob};
use serde_json::json;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use worker_binary::*;

const WORKERS: usize = 2;
/// Jobs pushed one at a time, before, during and after the failover.
const JOBS: usize = 1_500;
/// Acknowledged pushes before the master is killed.
const KILL_AFTER: usize = 300;
/// How long the rest may take once the cluster has recovered.
const DRAIN_DEADLINE: Duration = Duration::from_secs(90);

/// What happens to the master of the app's slot during the drain.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// SIGKILL: a crashed host.
    Kill,
    /// SIGSTOP for longer than the node timeout, then SIGCONT: its replica takes over while
    /// it is frozen, and it wakes up as a master that no longer is one, with the commands
    /// that reached it meanwhile still to run.
    Freeze,
}

/// How long a frozen master stays frozen: well past the cluster's node timeout.
const FREEZE: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_loses_no_acknowledged_job_and_workers_resume() {
    failover_during_a_drain(Fault::Kill, "failover").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_master_loses_no_acknowledged_job_and_workers_resume() {
    failover_during_a_drain(Fault::Freeze, "freeze").await;
}

async fn failover_during_a_drain(fault: Fault, name: &str) {
    let mut cluster = TestCluster::start();
    let config = cluster.config(name);
    let client = Client::connect(config.clone()).await.unwrap();
    let harness = Harness::new(name, &config);
    let mut workers: Vec<_> = (0..WORKERS)
        .map(|i| harness.spawn(&format!("w{i}"), 10, 10, &[]))
        .collect();
    for w in &workers {
        wait_registered(&client, w.pid(), Duration::from_secs(30)).await;
    }

    // The enqueuer keeps pushing through the failover; a push that errors was never
    // acknowledged, so only the ids of successful pushes are owed a run.
    let acknowledged: Arc<Mutex<Vec<JobId>>> = Arc::default();
    let failed_pushes = Arc::new(Mutex::new(0usize));
    let enqueuer = {
        let client = Client::connect(config).await.unwrap();
        let acknowledged = acknowledged.clone();
        let failed_pushes = failed_pushes.clone();
        tokio::spawn(async move {
            let mut pushed = 0;
            while pushed < JOBS {
                let job = NewJob::new("queue::Sleep", vec![json!({"millis": 0})]);
                match client.push(job).await {
                    Ok(id) => {
                        acknowledged.lock().unwrap().push(id);
                        pushed += 1;
                    }
                    Err(_) => *failed_pushes.lock().unwrap() += 1,
                }
            }
        })
    };
    let begun = Instant::now();
    while acknowledged.lock().unwrap().len() < KILL_AFTER {
        assert!(
            begun.elapsed() < DRAIN_DEADLINE,
            "pushes stalled before the kill"
        );
        tokio::time::sleep(POLL).await;
    }
    let home = cluster.master_of(&client.keys().queue("default"));
    let killed_at = Instant::now();
    match fault {
        Fault::Kill => {
            cluster.kill(home);
            cluster.wait_for_failover();
        }
        Fault::Freeze => {
            let pid = cluster.nodes()[home].pid().unwrap().to_string();
            let signal = |sig: &str| {
                assert!(
                    std::process::Command::new("kill")
                        .args([sig, &pid])
                        .status()
                        .unwrap()
                        .success()
                )
            };
            signal("-STOP");
            // The freeze's length is the fault itself, not a synchronisation.
            tokio::time::sleep(FREEZE).await;
            signal("-CONT");
            cluster.wait_for_failover();
        }
    }
    let failover = killed_at.elapsed();
    enqueuer.await.unwrap();

    // Every acknowledged job runs, or its push is gone from the cluster altogether.
    let ids: Vec<JobId> = acknowledged.lock().unwrap().clone();
    let begun = Instant::now();
    let (ran, dropped, ledger_dropped) = loop {
        let ledger = ledger(&client).await;
        let mut missing = Vec::new();
        for id in ids.iter().filter(|id| !ledger.contains_key(id.as_str())) {
            missing.push(id.clone());
        }
        // A push the cluster dropped left no status record (the record and the job are one
        // script's writes). A record that says succeeded ran, and its ledger line (written
        // before the handler returned) was what the cluster dropped. Any other record is
        // still owed its run.
        let mut owed = 0;
        let mut dropped = Vec::new();
        let mut ledger_dropped = 0;
        for id in &missing {
            match client.status(id).await {
                Ok(None) => dropped.push(id.clone()),
                Ok(Some(status)) if status.state == JobState::Succeeded => ledger_dropped += 1,
                _ => owed += 1,
            }
        }
        if owed == 0 {
            break (ledger, dropped, ledger_dropped);
        }
        assert!(
            begun.elapsed() < DRAIN_DEADLINE,
            "{owed} acknowledged jobs with a status record never ran ({} dropped by the cluster)",
            dropped.len()
        );
        tokio::time::sleep(POLL).await;
    };
    let twice = ids
        .iter()
        .filter(|id| ran.get(id.as_str()).is_some_and(|n| *n > 1))
        .count();
    // The workers carried on through the failover: the same processes, still running, ran
    // the jobs pushed after it.
    for w in &mut workers {
        assert!(w.is_running(), "worker {} exited", w.name());
    }
    let after: HashSet<&str> = ids[KILL_AFTER..].iter().map(JobId::as_str).collect();
    assert!(
        ran.keys().any(|id| after.contains(id.as_str())),
        "no job pushed after the kill ran"
    );
    println!(
        "{fault:?}: failover in {:.1} s: {} pushes acknowledged ({} refused during the failover), {} ran, \
         {} ran twice, {} pushes and {} ledger lines dropped by the cluster after acknowledging \
         them, 0 lost",
        failover.as_secs_f64(),
        ids.len(),
        failed_pushes.lock().unwrap(),
        ids.len() - dropped.len(),
        twice,
        dropped.len(),
        ledger_dropped
    );
    for w in &mut workers {
        w.sigterm();
    }
    for w in &mut workers {
        assert!(w.wait_exit(Duration::from_secs(30)).await.success());
    }
}

/// The app's master frozen and left frozen: its replica takes over, and the worker and the
/// enqueuer must follow it while the old master still hangs (a frozen node closes nothing and
/// answers nothing, so nothing but the timeouts tells the clients to look again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_goes_on_while_the_old_master_stays_frozen() {
    const JOBS: usize = 50;
    let cluster = TestCluster::start();
    let config = cluster.config("frozen_for_good");
    let client = Client::connect(config.clone()).await.unwrap();
    let harness = Harness::new("frozen_for_good", &config);
    let mut worker = harness.spawn("w0", 10, 10, &[]);
    wait_registered(&client, worker.pid(), Duration::from_secs(30)).await;

    let home = cluster.master_of(&client.keys().queue("default"));
    let pid = cluster.nodes()[home].pid().unwrap().to_string();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
    };
    assert!(signal("-STOP").success());
    cluster.wait_for_failover_without(home);

    let begun = Instant::now();
    let mut ids = Vec::new();
    while ids.len() < JOBS {
        let job = NewJob::new("queue::Sleep", vec![json!({"millis": 0})]);
        match client.push(job).await {
            Ok(id) => ids.push(id),
            Err(e) => assert!(
                begun.elapsed() < DRAIN_DEADLINE,
                "pushes never went through after the failover: {e}"
            ),
        }
    }
    loop {
        let ran = ledger(&client).await;
        if ids.iter().all(|id| ran.contains_key(id.as_str())) {
            break;
        }
        assert!(
            begun.elapsed() < DRAIN_DEADLINE,
            "{} of {JOBS} jobs ran with the old master still frozen",
            ids.iter()
                .filter(|id| ran.contains_key(id.as_str()))
                .count()
        );
        tokio::time::sleep(POLL).await;
    }
    println!(
        "old master frozen: {JOBS} jobs pushed and run through the new master in {:.1} s",
        begun.elapsed().as_secs_f64()
    );
    assert!(worker.is_running());
    assert!(signal("-CONT").success());
    worker.sigterm();
    assert!(worker.wait_exit(Duration::from_secs(30)).await.success());
}
