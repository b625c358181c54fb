//! Redis Cluster mode: the connection every caller shares, and the rule that keeps every
//! script legal on a cluster.
//!
//! A cluster routes each command by the hash slot of its keys and refuses a script or a
//! pipeline whose keys fall in different slots. Every key a script touches arrives in KEYS
//! (see [`crate::scripts`]), and in cluster mode the key prefix must carry a hash tag
//! (`{app}:`), so that every key of the app hashes to one slot: every script and pipeline
//! stays atomic exactly as on a single server, and the cluster client follows `MOVED`, `ASK`
//! and failovers underneath. ARCHITECTURE.md ("Redis Cluster") says what this buys and what
//! it does not (one slot is one master).
//!
//! Pub/sub needs no slot: a cluster forwards every `PUBLISH` to every node, so the wake and
//! status subscribers connect to any one node (`subscription_client`), the next one in
//! the list after each reconnect.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::cluster_handle::ClusterHandle;
use crate::config::ClientConfig;
use crate::connection::{redis_client, url_with_tls_choice};
use crate::error::{Error, Result};

/// How many times the cluster client retries a command that met `MOVED`, `ASK`, a
/// `TRYAGAIN` or a broken connection before it gives up; each call is bounded by the client
/// timeout anyway, so this only caps the work inside that bound.
const CLUSTER_RETRIES: u32 = 6;

/// Commands without keys that are about "the server": in cluster mode they go to the master
/// of the app's slot (its clock, its version, its memory policy), not to a random node or to
/// all of them (the cluster client's default, which would merge replies into a map).
/// `SCRIPT LOAD` and `CLIENT SETNAME` keep the default: every node needs them.
/// `SCAN` goes home too: every key of the app is there (the cluster client gives a keyless
/// `SCAN` no route of its own).
const HOME_COMMANDS: [&[u8]; 9] = [
    b"TIME", b"INFO", b"CONFIG", b"DBSIZE", b"SLOWLOG", b"MEMORY", b"LATENCY", b"PING", b"SCAN",
];

/// The connection every caller of one [`Client`](crate::Client) shares: one multiplexed
/// connection to a single Redis, or in cluster mode the cluster client (one multiplexed
/// connection per master, whatever the number of callers).
#[derive(Clone)]
pub enum SharedConnection {
    /// A single Redis server (or a proxy in front of one).
    Single(ConnectionManager),
    /// A Redis Cluster (its connection, rebuilt when calls keep timing out), and the route to
    /// the master of the app's slot.
    Cluster(Arc<ClusterHandle>, Route),
}

/// Whether `cmd` is one of [`HOME_COMMANDS`] (`CLIENT LIST` too, but not `CLIENT SETNAME`).
fn goes_home(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter().filter_map(|arg| match arg {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None,
    });
    let Some(name) = args.next() else {
        return false;
    };
    HOME_COMMANDS
        .iter()
        .any(|home| name.eq_ignore_ascii_case(home))
        || (name.eq_ignore_ascii_case(b"CLIENT")
            && args
                .next()
                .is_some_and(|sub| sub.eq_ignore_ascii_case(b"LIST")))
}

impl std::fmt::Debug for SharedConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "SharedConnection::Single",
            Self::Cluster(..) => "SharedConnection::Cluster",
        })
    }
}

impl ConnectionLike for SharedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(handle, home) => {
                let (handle, home) = (Arc::clone(handle), *home);
                Box::pin(async move {
                    let mut conn = handle.connection();
                    let reply = if goes_home(cmd) {
                        let routing =
                            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(home));
                        conn.route_command(cmd.clone(), routing).await
                    } else {
                        conn.req_packed_command(cmd).await
                    };
                    handle.observe(&reply);
                    reply
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            // A pipeline with a key goes to that key's slot (the cluster client's rule); one
            // of server commands only (an inspector's `TIME`) goes home.
            Self::Cluster(handle, home) => {
                let (handle, home) = (Arc::clone(handle), *home);
                Box::pin(async move {
                    let mut conn = handle.connection();
                    let reply = if pipeline.cmd_iter().all(goes_home) {
                        let route = SingleNodeRoutingInfo::SpecificNode(home);
                        conn.route_pipeline(pipeline.clone(), offset, count, route)
                            .await
                    } else {
                        conn.req_packed_commands(pipeline, offset, count).await
                    };
                    handle.observe(&reply);
                    reply
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(handle, _) => handle.connection().get_db(),
        }
    }
}

/// The hash tag of `prefix`, as Redis Cluster reads it: the text between the first `{` and
/// the first `}` after it, when that text is not empty.
///
/// ```
/// use queue_core::cluster::hash_tag;
/// assert_eq!(hash_tag("{app}:"), Some("app"));
/// assert_eq!(hash_tag("app:"), None);
/// assert_eq!(hash_tag("{}:"), None);
/// ```
pub fn hash_tag(prefix: &str) -> Option<&str> {
    let open = prefix.find('{')?;
    let rest = &prefix[open + 1..];
    let close = rest.find('}')?;
    let tag = &rest[..close];
    (!tag.is_empty()).then_some(tag)
}

/// Checks that a cluster-mode configuration keeps every key in one slot.
pub(crate) fn check_cluster_prefix(config: &ClientConfig) -> Result<()> {
    if config.is_cluster() && hash_tag(&config.prefix).is_none() {
        return Err(Error::ClusterPrefixWithoutHashTag(config.prefix.clone()));
    }
    if config.spread_queues && !config.is_cluster() {
        // On one server a queue slot would only rename Sidekiq's keys.
        return Err(Error::InvalidSetting {
            name: "spread_queues",
            reason: "queues are spread over a cluster's slots: it needs cluster mode".to_owned(),
        });
    }
    Ok(())
}

/// The cluster client's connection for `config.cluster_nodes`, with the configured TLS
/// choice applied to each node's URL and the client timeout on connects and replies.
pub(crate) async fn cluster_connection(config: &ClientConfig) -> Result<SharedConnection> {
    check_cluster_prefix(config)?;
    // The prefix's hash tag decides the slot of every key the app writes.
    let home = Route::with_key(config.prefix.as_bytes(), SlotAddr::Master);
    let conn = connect(config).await?;
    Ok(SharedConnection::Cluster(
        ClusterHandle::new(conn, config.clone()),
        home,
    ))
}

/// A new cluster connection from the configured nodes (the slot map read from the first
/// that answers).
pub(crate) async fn connect(config: &ClientConfig) -> Result<ClusterConnection> {
    let nodes: Vec<String> = config
        .cluster_nodes
        .iter()
        .map(|url| url_with_tls_choice(url, config))
        .collect();
    let client: ClusterClient = ClusterClientBuilder::new(nodes)
        // Half the bound per node: a node that accepts and then never answers (frozen) is
        // given up while the others still have time to hand over the slot map.
        .connection_timeout(config.timeout / 2)
        // Shorter than the client's bound on each call, so the timeout is seen here and
        // counted toward a rebuild (`cluster_handle.rs`) rather than dropped by the bound.
        .response_timeout(config.timeout.mul_f32(0.75))
        .retries(CLUSTER_RETRIES)
        .min_retry_wait(10)
        .max_retry_wait(500)
        .build()
        .map_err(|e| Error::InvalidRedisUrl(format!("{:?}", e.kind())))?;
    // Connecting asks several nodes: more time than one call, still bounded.
    let bound = config.timeout * 2;
    tokio::time::timeout(bound, client.get_async_connection())
        .await
        .map_err(|_| Error::Timeout(bound))?
        .map_err(|e| Error::from_bounded(e, bound))
}

/// Which node the next pub/sub connection of this process goes to (cluster mode): each
/// reconnect takes the next one, so a dead node is left behind. Processes start at
/// different nodes (by process id), so a fleet's subscribers spread over the cluster.
static NEXT_SUBSCRIPTION_NODE: LazyLock<AtomicUsize> =
    LazyLock::new(|| AtomicUsize::new(std::process::id() as usize));

/// The client for a new pub/sub connection: the configured server, or in cluster mode the
/// next node of the list.
pub(crate) fn subscription_client(config: &ClientConfig) -> Result<redis::Client> {
    if !config.is_cluster() {
        return redis_client(config);
    }
    let n = NEXT_SUBSCRIPTION_NODE.fetch_add(1, Ordering::Relaxed);
    let url = &config.cluster_nodes[n % config.cluster_nodes.len()];
    redis::Client::open(url_with_tls_choice(url, config))
        .map_err(|e| Error::InvalidRedisUrl(format!("{:?}", e.kind())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_commands_go_home_and_keyed_or_per_node_ones_do_not() {
        for home in [
            redis::cmd("TIME"),
            redis::cmd("info").arg("server").clone(),
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .clone(),
            redis::cmd("CLIENT").arg("list").clone(),
            redis::cmd("PING"),
            redis::cmd("SCAN")
                .arg(0)
                .arg("MATCH")
                .arg("{app}:*")
                .clone(),
        ] {
            assert!(goes_home(&home), "{:?}", home.get_packed_command());
        }
        for elsewhere in [
            redis::cmd("CLIENT").arg("SETNAME").arg("worker.1").clone(),
            redis::cmd("SCRIPT").arg("LOAD").arg("return 1").clone(),
            redis::cmd("EVALSHA")
                .arg("abc")
                .arg(1)
                .arg("{app}:queue:x")
                .clone(),
            redis::cmd("LLEN").arg("{app}:queue:x").clone(),
        ] {
            assert!(
                !goes_home(&elsewhere),
                "{:?}",
                elsewhere.get_packed_command()
            );
        }
    }
}
