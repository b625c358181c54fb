//! A private Redis Cluster per test: three masters and three replicas on loopback.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::server::TestRedis;
use super::target::masters;
use crate::config::ClientConfig;

/// How long a master may be unreachable before its replica takes over. Short, so that a
/// failover test waits seconds; a production cluster's own setting is its business.
pub const TEST_NODE_TIMEOUT_MS: u64 = 1500;

/// How long the cluster may take to form, or to recover from a failover.
const CLUSTER_DEADLINE: Duration = Duration::from_secs(30);

/// Masters and replicas of a [`TestCluster`].
const MASTERS: usize = 3;
const NODES: usize = 6;

/// A private Redis Cluster (3 masters, 3 replicas), formed with `redis-cli --cluster create`
/// and killed on drop, like [`TestRedis`] (each node is one).
#[derive(Debug)]
pub struct TestCluster {
    nodes: Vec<TestRedis>,
}

/// The `redis-cli` binary: `$REDIS_CLI`, else the one on `PATH`.
pub fn redis_cli_binary() -> PathBuf {
    std::env::var_os("REDIS_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-cli"))
}

impl TestCluster {
    /// Starts six cluster-enabled servers and forms the cluster; returns once every node
    /// reports `cluster_state:ok` and knows all six.
    pub fn start() -> Self {
        let timeout = TEST_NODE_TIMEOUT_MS.to_string();
        let nodes: Vec<TestRedis> = (0..NODES)
            .map(|_| {
                TestRedis::start_with_args(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    &timeout,
                    // A replica that has never synced cannot take over; the default 5 s
                    // delay before the first sync would leave a fresh cluster without one.
                    "--repl-diskless-sync-delay",
                    "0",
                ])
            })
            .collect();
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new(redis_cli_binary())
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create (script/test installs redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self { nodes };
        cluster.wait_until_healthy(&(0..NODES).collect::<Vec<_>>());
        cluster
    }

    /// Every node's `redis://` URL (a client may start from any of them).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(TestRedis::url).collect()
    }

    /// A cluster-mode client configuration with the key prefix `{test_name}:`.
    pub fn config(&self, test_name: &str) -> ClientConfig {
        ClientConfig::cluster(self.urls(), format!("{{{test_name}}}:"))
    }

    /// The nodes, in start order (which are masters changes with failovers).
    pub fn nodes(&self) -> &[TestRedis] {
        &self.nodes
    }

    /// Index of the node that serves `key`'s slot as master now.
    pub fn master_of(&self, key: &str) -> usize {
        let slot: u16 = self
            .any_live_node()
            .command(&["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("slot");
        let nodes = self.any_live_node().command(&["CLUSTER", "NODES"]);
        let master = masters(&nodes)
            .into_iter()
            .find(|m| m.serves(slot))
            .unwrap_or_else(|| panic!("no master serves slot {slot}:\n{nodes}"));
        self.nodes
            .iter()
            .position(|n| n.port() == master.port)
            .expect("a node of this cluster")
    }

    /// `n` (at most 3) queue names whose slots, with queues spread over the cluster's slots
    /// ([`ClientConfig::spread_queues`]) under `config`'s prefix, are served by `n`
    /// different masters, each with its master's index.
    pub fn queues_on_distinct_masters(
        &self,
        config: &ClientConfig,
        n: usize,
    ) -> Vec<(String, usize)> {
        let keys = crate::keys::Keys::new(config.prefix.clone());
        let mut picked: Vec<(String, usize)> = Vec::new();
        for i in 0..1000 {
            if picked.len() == n.min(MASTERS) {
                break;
            }
            let queue = format!("q{i}");
            let master = self.master_of(&keys.queue_slot(&queue).queue(&queue));
            if picked.iter().all(|(_, m)| *m != master) {
                picked.push((queue, master));
            }
        }
        assert_eq!(picked.len(), n.min(MASTERS), "queues on distinct masters");
        picked
    }

    /// Kills node `index` (SIGKILL, as a crashed host).
    pub fn kill(&mut self, index: usize) {
        self.nodes[index].kill();
    }

    /// Waits until the live nodes report `cluster_state:ok` again, after a kill: the
    /// killed master's replica has taken over its slots.
    pub fn wait_for_failover(&self) {
        self.wait_until_healthy(&self.running_nodes(None));
    }

    /// Waits until the nodes other than `frozen` report `cluster_state:ok`: the frozen
    /// master's replica has taken over while it is still stopped (`SIGSTOP`).
    pub fn wait_for_failover_without(&self, frozen: usize) {
        self.wait_until_healthy(&self.running_nodes(Some(frozen)));
    }

    /// Indexes of the nodes whose process runs, but `except`.
    fn running_nodes(&self, except: Option<usize>) -> Vec<usize> {
        (0..NODES)
            .filter(|&i| Some(i) != except && self.nodes[i].pid().is_some())
            .collect()
    }

    fn wait_until_healthy(&self, live: &[usize]) {
        let deadline = Instant::now() + CLUSTER_DEADLINE;
        loop {
            // Every live node sees every slot served, and every live replica has synced
            // with its master (only then can it take over).
            let healthy = live.iter().all(|&i| {
                let info = self.nodes[i].command(&["CLUSTER", "INFO"]);
                let replication = self.nodes[i].command(&["INFO", "replication"]);
                info.contains("cluster_state:ok")
                    && info.contains("cluster_slots_ok:16384")
                    && info.contains(&format!("cluster_size:{MASTERS}"))
                    && (replication.contains("role:master")
                        || replication.contains("master_link_status:up"))
            });
            if healthy {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not become healthy in {CLUSTER_DEADLINE:?}:\n{}",
                self.any_live_node().command(&["CLUSTER", "NODES"])
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn any_live_node(&self) -> &TestRedis {
        self.nodes
            .iter()
            .find(|n| n.pid().is_some() && n.command(&["PING"]) == "PONG")
            .expect("a live node")
    }
}
