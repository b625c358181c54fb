//! The Redis a run measures: one server ([`BenchRedis`]) or a Redis Cluster.
//!
//! Cluster mode is chosen by `REDIS_CLUSTER_URLS` (as for any client of the queue), or by
//! `--cluster`, which starts a private 3-master/3-replica [`TestCluster`]. The run's keys
//! then go under a hash-tagged prefix, so they all live in one slot, on one master: the
//! master whose `INFO` gives the Redis CPU per job (the client sends `INFO` there).

use crate::error::{LoadError, Result};
use crate::options::Options;
use benches::{BenchRedis, delete_prefix};
use queue_core::testing::TestCluster;
use queue_core::{Client, ClientConfig};

/// The variable that selects cluster mode, for this process and its worker processes.
pub(crate) const CLUSTER_URLS_VAR: &str = "REDIS_CLUSTER_URLS";

/// Where the run's keys live.
pub(crate) enum Target {
    /// One server: private, or `REDIS_URL`.
    Single(BenchRedis),
    /// A cluster: its node URLs, and the cluster itself when this run started it.
    Cluster {
        urls: Vec<String>,
        private: Option<TestCluster>,
        /// `--queues` above 1: every queue in its own slot.
        spread: bool,
    },
}

/// The variable that gives every queue its own slot, for this process and its workers.
pub(crate) const SPREAD_VAR: &str = "REDIS_CLUSTER_SPREAD";

impl Target {
    /// `--cluster`: a private cluster; else `REDIS_CLUSTER_URLS` when set; else one server.
    pub(crate) fn from_env(opts: &Options) -> Self {
        let spread = opts.queues > 1;
        if opts.private_cluster {
            let cluster = TestCluster::start();
            return Self::Cluster {
                urls: cluster.urls(),
                private: Some(cluster),
                spread,
            };
        }
        match cluster_urls_from_env() {
            Some(urls) => Self::Cluster {
                urls,
                private: None,
                spread,
            },
            None => Self::Single(BenchRedis::from_env()),
        }
    }

    /// The run's key prefix: `{TAG}:` with `--tag`, else `{loadtest}:` on a private server
    /// and `{loadtest-PID}:` on a shared server or cluster (two runs never collide).
    pub(crate) fn prefix(&self, opts: &Options) -> String {
        match (&opts.tag, self) {
            (Some(tag), _) => format!("{{{tag}}}:"),
            (None, Self::Single(redis)) => redis.prefix("loadtest"),
            (None, Self::Cluster { .. }) => format!("{{loadtest-{}}}:", std::process::id()),
        }
    }

    /// A client configuration for this target with `prefix`.
    pub(crate) fn config(&self, prefix: &str) -> Result<ClientConfig> {
        let config = match self {
            Self::Single(redis) => ClientConfig::new(redis.url()).prefix(prefix),
            Self::Cluster { urls, spread, .. } => {
                ClientConfig::cluster(urls.clone(), prefix).spread_queues(*spread)
            }
        };
        with_status_store_from_env(config)
    }

    /// Whether the run's queues are spread over the cluster's slots (`--queues` > 1).
    pub(crate) fn spread(&self) -> bool {
        matches!(self, Self::Cluster { spread: true, .. })
    }

    /// The variables a worker process finds its Redis by, and their values.
    pub(crate) fn worker_env(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Single(redis) => vec![("REDIS_URL", redis.url())],
            Self::Cluster { urls, spread, .. } => {
                let mut env = vec![(CLUSTER_URLS_VAR, urls.join(","))];
                if *spread {
                    env.push((SPREAD_VAR, "queues".to_owned()));
                }
                env
            }
        }
    }

    /// Whether the run may reconfigure the server (`--slowlog`): a private single server.
    pub(crate) fn is_private_server(&self) -> bool {
        matches!(self, Self::Single(r) if r.is_private())
    }

    /// What the report calls this target.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Single(r) if r.is_private() => "private",
            Self::Single(_) => "REDIS_URL",
            Self::Cluster {
                private: Some(_),
                spread: true,
                ..
            } => "private cluster, queues spread",
            Self::Cluster {
                private: Some(_), ..
            } => "private cluster",
            Self::Cluster { private: None, .. } => CLUSTER_URLS_VAR,
        }
    }

    /// Deletes what a phase left: as [`BenchRedis::clear`] on one server; on a cluster only
    /// the keys under `prefix` (the client sends `SCAN` to the master of the app's slot).
    pub(crate) async fn clear(&self, client: &Client, prefix: &str) -> Result<()> {
        let mut conn = client.raw_connection();
        match self {
            Self::Single(redis) => redis.clear(&mut conn, prefix).await?,
            Self::Cluster { .. } => {
                delete_prefix(&mut conn, prefix).await?;
            }
        }
        Ok(())
    }
}

/// `REDIS_CLUSTER_URLS` as a list, `None` when unset or empty.
pub(crate) fn cluster_urls_from_env() -> Option<Vec<String>> {
    let list = std::env::var(CLUSTER_URLS_VAR).ok()?;
    let urls: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    (!urls.is_empty()).then_some(urls)
}

/// A worker process's configuration: the cluster of `REDIS_CLUSTER_URLS` when set, else the
/// server at `REDIS_URL` (the coordinator sets one of them, see [`Target::worker_env`]).
pub(crate) fn worker_config(prefix: &str) -> Result<ClientConfig> {
    if let Some(urls) = cluster_urls_from_env() {
        let spread = std::env::var(SPREAD_VAR).is_ok_and(|v| v == "queues");
        let config = ClientConfig::cluster(urls, prefix).spread_queues(spread);
        return with_status_store_from_env(config);
    }
    let url = std::env::var("REDIS_URL").map_err(|_| LoadError::MissingRedisUrl)?;
    with_status_store_from_env(ClientConfig::new(url).prefix(prefix))
}

/// `config` with `QUEUE_STATUS_STORE` applied as a worker binary applies it, so that
/// `QUEUE_STATUS_STORE=hashes loadtest` measures the records kept in their own hashes (the
/// worker processes inherit the variable).
fn with_status_store_from_env(config: ClientConfig) -> Result<ClientConfig> {
    let value = std::env::var("QUEUE_STATUS_STORE").ok();
    Ok(config.status_store_from(value.as_deref())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_gives_a_hash_tagged_prefix_on_a_cluster_and_on_one_server() {
        let opts = Options::parse(["--tag".to_owned(), "lt-3".to_owned()]).unwrap();
        let cluster = Target::Cluster {
            urls: vec!["redis://127.0.0.1:7000".to_owned()],
            private: None,
            spread: false,
        };
        let prefix = cluster.prefix(&opts);
        assert_eq!(prefix, "{lt-3}:");
        let config = cluster.config(&prefix).unwrap();
        assert!(config.is_cluster());
        assert_eq!(queue_core::cluster::hash_tag(&config.prefix), Some("lt-3"));
        assert_eq!(
            cluster.worker_env(),
            [(CLUSTER_URLS_VAR, "redis://127.0.0.1:7000".to_owned())]
        );
        assert!(!config.spread_queues);
        let spread = Target::Cluster {
            urls: vec!["redis://127.0.0.1:7000".to_owned()],
            private: None,
            spread: true,
        };
        assert!(spread.config(&prefix).unwrap().spread_queues);
        assert_eq!(spread.worker_env()[1], (SPREAD_VAR, "queues".to_owned()));
        // Without --tag, a shared cluster still gets a per-run hash tag.
        let default = cluster.prefix(&Options::parse([]).unwrap());
        assert!(
            queue_core::cluster::hash_tag(&default).is_some_and(|t| t.starts_with("loadtest-"))
        );
        let single = Target::Single(BenchRedis::External("redis://127.0.0.1:1".to_owned()));
        assert_eq!(single.prefix(&opts), "{lt-3}:");
        assert!(!single.config("{lt-3}:").unwrap().is_cluster());
    }
}
