//! The second test target: each test's server is a slot of one shared Redis Cluster.
//!
//! `script/test` runs the suites twice. The first run gives every test a private
//! `redis-server`. The second (`script/cluster-target`) starts one loopback cluster of three
//! masters and three replicas and names its nodes in [`CLUSTER_TARGET_VAR`]; while it is
//! set, `TestRedis::start` gives each test a share of that cluster instead of a server:
//! - `TestRedis::config` is a cluster-mode configuration whose prefix is the test's name
//!   plus a random suffix in a hash tag (`{name~1a2b3c4d}:`), so that tests sharing the
//!   cluster never see each other's keys, and every key of the test is in one slot;
//! - every prefix a share hands out hashes to one master, chosen at random for the test,
//!   and `TestRedis::url`, `port` and `command` point at that master, so a test's raw
//!   connection reads its keys where the cluster keeps them;
//! - what only a private server allows (kill, restart, its pid) panics with a
//!   pointer to `TestRedis::start_private`: a test that needs it never runs silently on
//!   the shared cluster.

use std::collections::HashMap;
use std::sync::Mutex;

use super::server::command_at;
use crate::config::ClientConfig;

/// The environment variable that selects the cluster target: the comma-separated nodes
/// (`127.0.0.1:7000` or `redis://127.0.0.1:7000`) of the shared cluster.
pub const CLUSTER_TARGET_VAR: &str = "QUEUE_TEST_CLUSTER_URLS";

/// Prefix candidates tried before giving up on finding one in the chosen master's slots
/// (each has a one in three chance on a three-master cluster).
const PREFIX_TRIES: usize = 1000;

/// The nodes named by [`CLUSTER_TARGET_VAR`] as `redis://` URLs, when it is set.
pub(crate) fn cluster_target() -> Option<Vec<String>> {
    let list = std::env::var(CLUSTER_TARGET_VAR).ok()?;
    let urls: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
        .map(|node| {
            if node.contains("://") {
                node.to_owned()
            } else {
                format!("redis://{node}")
            }
        })
        .collect();
    (!urls.is_empty()).then_some(urls)
}

/// One master of a cluster: its address and the slot ranges it serves.
#[derive(Debug, Clone)]
pub(crate) struct Master {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) slots: Vec<(u16, u16)>,
}

impl Master {
    pub(crate) fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }
}

/// The masters in a `CLUSTER NODES` reply that are not marked failed.
pub(crate) fn masters(cluster_nodes: &str) -> Vec<Master> {
    cluster_nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.len() < 9 || !fields[2].contains("master") || fields[2].contains("fail") {
                return None;
            }
            // `host:port@bus-port[,hostname]`
            let address = fields[1].split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            let slots = fields[8..]
                .iter()
                // `[slot->-node]` entries are migrations in progress, not served slots.
                .filter(|range| !range.starts_with('['))
                .filter_map(|range| match range.split_once('-') {
                    Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                    None => range.parse().ok().map(|s| (s, s)),
                })
                .collect();
            Some(Master {
                host: host.to_owned(),
                port: port.parse().ok()?,
                slots,
            })
        })
        .collect()
}

/// A test's share of the cluster target: one master, and the prefixes handed out so far.
#[derive(Debug)]
pub(crate) struct SharedSlot {
    urls: Vec<String>,
    master: Master,
    /// Test name → prefix, so that asking twice for one name gives the same prefix.
    prefixes: Mutex<HashMap<String, String>>,
}

impl SharedSlot {
    /// A share of the cluster at `urls` on one of its masters, chosen at random so that the
    /// tests spread over the masters.
    pub(crate) fn join(urls: Vec<String>) -> Self {
        let nodes = command_at(&urls[0], &["CLUSTER", "NODES"]);
        let mut all = masters(&nodes);
        all.retain(|m| !m.slots.is_empty());
        assert!(
            !all.is_empty(),
            "{CLUSTER_TARGET_VAR}: no master serves slots; CLUSTER NODES says:\n{nodes}"
        );
        let pick = random_u32() as usize % all.len();
        Self {
            urls,
            master: all.swap_remove(pick),
            prefixes: Mutex::new(HashMap::new()),
        }
    }

    /// The chosen master's port.
    pub(crate) fn port(&self) -> u16 {
        self.master.port
    }

    /// The chosen master's `redis://` URL.
    pub(crate) fn url(&self) -> String {
        format!("redis://{}:{}", self.master.host, self.master.port)
    }

    /// A cluster-mode configuration for test `name`: a prefix of its own, in the master's slots.
    pub(crate) fn config(&self, name: &str) -> ClientConfig {
        ClientConfig::cluster(self.urls.clone(), self.prefix(name))
    }

    /// The prefix of test `name` (made on first use).
    pub(crate) fn prefix(&self, name: &str) -> String {
        let mut prefixes = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(prefix) = prefixes.get(name) {
            return prefix.clone();
        }
        let stem = if name.is_empty() { "t" } else { name };
        let url = self.url();
        for _ in 0..PREFIX_TRIES {
            let tag = format!("{stem}~{:08x}", random_u32());
            let slot: u16 = command_at(&url, &["CLUSTER", "KEYSLOT", &tag])
                .parse()
                .expect("CLUSTER KEYSLOT answers a slot");
            if self.master.serves(slot) {
                let prefix = format!("{{{tag}}}:");
                prefixes.insert(name.to_owned(), prefix.clone());
                return prefix;
            }
        }
        panic!("no prefix for {name} in the slots of {url} after {PREFIX_TRIES} tries");
    }

    /// Whether `key` is under one of the prefixes handed out.
    pub(crate) fn owns_key(&self, key: &str) -> bool {
        let prefixes = self.prefixes.lock().unwrap_or_else(|e| e.into_inner());
        prefixes
            .values()
            .any(|prefix| key.starts_with(prefix.as_str()))
    }
}

/// The environment that makes [`ClientConfig::from_env`] connect where `config` does, with
/// its prefix: for the binaries a test spawns (the worker, the CLI), so that they follow the
/// test onto the cluster target. TLS and timeouts are not carried.
///
/// ```
/// use queue_core::ClientConfig;
/// use queue_core::testing::config_env;
/// let cluster = ClientConfig::cluster(["redis://a:7000", "redis://b:7001"], "{t}:");
/// assert_eq!(
///     config_env(&cluster),
///     [
///         ("REDIS_CLUSTER_URLS", "redis://a:7000,redis://b:7001".to_owned()),
///         ("QUEUE_PREFIX", "{t}:".to_owned()),
///     ]
/// );
/// let single = ClientConfig::new("redis://a:6379");
/// assert_eq!(config_env(&single), [("REDIS_URL", "redis://a:6379".to_owned())]);
/// ```
pub fn config_env(config: &ClientConfig) -> Vec<(&'static str, String)> {
    let mut env = if config.is_cluster() {
        vec![("REDIS_CLUSTER_URLS", config.cluster_nodes.join(","))]
    } else {
        vec![("REDIS_URL", config.url.clone())]
    };
    if !config.prefix.is_empty() {
        env.push(("QUEUE_PREFIX", config.prefix.clone()));
    }
    env
}

/// 32 random bits (a v4 UUID's, from the OS's CSPRNG through `uuid`).
fn random_u32() -> u32 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// What a test on the cluster target may not do, with where to go instead.
pub(crate) fn private_only(what: &str) -> ! {
    panic!(
        "{what} needs a private server, and this test runs on the shared cluster \
         ({CLUSTER_TARGET_VAR} is set): start it with TestRedis::start_private()"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let nodes = "\
a 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b 127.0.0.1:7001@17001 master - 0 0 2 connected 5461-10922 [10923->-c]
c 127.0.0.1:7002@17002,host master - 0 0 3 connected 10923-16383 42
d 127.0.0.1:7003@17003 slave a 0 0 1 connected
e 127.0.0.1:7004@17004 master,fail - 0 0 4 disconnected
";
        let all = masters(nodes);
        let ports: Vec<u16> = all.iter().map(|m| m.port).collect();
        assert_eq!(ports, [7000, 7001, 7002]);
        assert_eq!(all[1].slots, [(5461, 10922)]);
        assert_eq!(all[2].slots, [(10923, 16383), (42, 42)]);
        assert!(all[2].serves(42) && all[2].serves(16383) && !all[2].serves(43));
        assert_eq!(all[0].host, "127.0.0.1");
    }
}
