//! Client configuration, from code or from the platform's environment.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::status::StatusRetention;

/// Default bound on every Redis call made by the client.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// The key prefix of cluster mode when `QUEUE_PREFIX` is unset: its hash tag puts every
/// key in one slot (see [`crate::cluster`]).
pub const DEFAULT_CLUSTER_PREFIX: &str = "{queue}:";
/// Default cap on one encoded job (small managed plans have 25-50 MB in all).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// How to connect and how to write jobs.
///
/// ```
/// use queue_core::ClientConfig;
/// use std::time::Duration;
/// let config = ClientConfig::new("redis://127.0.0.1:6379")
///     .prefix("{myapp}:")
///     .timeout(Duration::from_millis(500));
/// assert_eq!(config.prefix, "{myapp}:");
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    /// `redis://` or `rediss://` URL. Not shown by `Debug`: it may hold a password.
    pub url: String,
    /// Prefix of every key; empty gives Sidekiq's own key names.
    pub prefix: String,
    /// Bound on every Redis call, connect included.
    pub timeout: Duration,
    /// Largest encoded job accepted by enqueue.
    pub max_payload_bytes: usize,
    /// Accept a TLS certificate that does not verify (managed Redis uses self-signed ones).
    /// The only switch: a `#insecure` fragment in `url` is ignored unless this is set.
    pub accept_invalid_certs: bool,
    /// Name given to the connection with `CLIENT SETNAME` (the `DYNO` name on the platform).
    pub connection_name: Option<String>,
    /// How long status records are kept.
    pub status_retention: StatusRetention,
    /// The nodes of a Redis Cluster to start from (any of its masters or replicas); empty
    /// for a single server at `url`. Not shown by `Debug`: the URLs may hold a password.
    /// In cluster mode the prefix must carry a hash tag (see [`crate::cluster`]).
    pub cluster_nodes: Vec<String>,
    /// Cluster mode only: give every queue its own hash slot (see [`crate::cluster`]), so
    /// that different queues can live on different masters.
    pub spread_queues: bool,
    /// Where a succeeded job's record goes: packed into a shared hash of the finished-record
    /// store (`true`, the default; see [`crate::finished_store`]) or left in its own hash
    /// until it expires, as before that store existed (`false`, `QUEUE_STATUS_STORE=hashes`:
    /// for the first deploy of an upgrade, while web processes of the older version still
    /// read records).
    pub packed_finished_records: bool,
}

impl ClientConfig {
    /// Defaults for `url`: no prefix, 2 s timeout, 256 KiB payload cap, verified TLS.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: String::new(),
            timeout: DEFAULT_TIMEOUT,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            accept_invalid_certs: false,
            connection_name: None,
            status_retention: StatusRetention::default(),
            cluster_nodes: Vec::new(),
            spread_queues: false,
            packed_finished_records: true,
        }
    }

    /// Cluster mode: starts from the nodes at `urls` (at least one), with every key under
    /// `prefix`, which must carry a hash tag such as `{app}:`.
    ///
    /// ```
    /// use queue_core::ClientConfig;
    /// let config = ClientConfig::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"], "{app}:");
    /// assert!(config.is_cluster());
    /// assert_eq!(config.url, "redis://10.0.0.1:7000");
    /// ```
    pub fn cluster<I, S>(urls: I, prefix: impl Into<String>) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let nodes: Vec<String> = urls.into_iter().map(Into::into).collect();
        let mut config = Self::new(nodes.first().cloned().unwrap_or_default()).prefix(prefix);
        config.cluster_nodes = nodes;
        config
    }

    /// From the environment: `REDIS_TLS_URL`, else `REDIS_URL`; `DYNO` names the connection;
    /// `QUEUE_PREFIX` sets the key prefix. `QUEUE_STATUS_STORE=hashes` keeps succeeded jobs'
    /// records in their own hashes ([`ClientConfig::packed_finished_records`]).
    ///
    /// `REDIS_CLUSTER_URLS`, a comma-separated list of node URLs, selects cluster mode and
    /// wins over the other two; the prefix then defaults to [`DEFAULT_CLUSTER_PREFIX`].
    /// `REDIS_CLUSTER_SPREAD=queues` then gives every queue its own slot
    /// ([`ClientConfig::spread_queues`]).
    ///
    /// Certificate checks are skipped for a `rediss://` URL when `REDIS_TLS_SKIP_VERIFY` is
    /// `1`/`true`, or when it is unset and `DYNO` is set (the platform's managed Redis only
    /// offers self-signed certificates). `REDIS_TLS_SKIP_VERIFY=0` forces verification. A
    /// `#insecure` at the end of the URL does not count: only these variables decide (see
    /// [`crate::connection::redis_client`]).
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Like [`ClientConfig::from_env`], reading each variable through `lookup`.
    ///
    /// ```
    /// use queue_core::ClientConfig;
    /// let config = ClientConfig::from_vars(|k| match k {
    ///     "REDIS_URL" => Some("rediss://h:6380".to_owned()),
    ///     "DYNO" => Some("web.1".to_owned()),
    ///     _ => None,
    /// })
    /// .unwrap();
    /// assert!(config.accept_invalid_certs);
    /// assert_eq!(config.connection_name.as_deref(), Some("web.1"));
    /// ```
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        // An empty variable counts as unset, as shells and platform dashboards produce them.
        let var = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let cluster_nodes: Vec<String> = var("REDIS_CLUSTER_URLS")
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|url| !url.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let url = cluster_nodes
            .first()
            .cloned()
            .or_else(|| var("REDIS_TLS_URL"))
            .or_else(|| var("REDIS_URL"))
            .ok_or(Error::MissingRedisUrl)?;
        let dyno = var("DYNO");
        let skip_verify = match var("REDIS_TLS_SKIP_VERIFY").as_deref() {
            Some("1" | "true" | "yes") => true,
            Some(_) => false,
            None => dyno.is_some(),
        };
        let mut config = Self::new(url);
        config.accept_invalid_certs = skip_verify;
        config.connection_name = dyno;
        if !cluster_nodes.is_empty() {
            config.prefix = DEFAULT_CLUSTER_PREFIX.to_owned();
            config.cluster_nodes = cluster_nodes;
            config.spread_queues = match var("REDIS_CLUSTER_SPREAD").as_deref() {
                None | Some("none") => false,
                Some("queues") => true,
                Some(other) => {
                    return Err(Error::InvalidSetting {
                        name: "REDIS_CLUSTER_SPREAD",
                        reason: format!("{other:?} is neither \"queues\" nor \"none\""),
                    });
                }
            };
        }
        if let Some(prefix) = var("QUEUE_PREFIX") {
            config.prefix = prefix;
        }
        config.status_store_from(var("QUEUE_STATUS_STORE").as_deref())
    }

    /// Cluster mode: gives every queue its own hash slot, so that a cluster's masters share
    /// one app's queues (see [`crate::cluster`] for what that keeps and what it gives up).
    /// Job ids then name their queue (`mailers.<id>`).
    ///
    /// ```
    /// use queue_core::ClientConfig;
    /// let config = ClientConfig::cluster(["redis://10.0.0.1:7000"], "{app}:").spread_queues(true);
    /// assert!(config.spread_queues);
    /// ```
    pub fn spread_queues(mut self, spread: bool) -> Self {
        self.spread_queues = spread;
        self
    }

    /// Whether succeeded jobs' records are packed into the finished-record store
    /// ([`crate::finished_store`]); turn it off for the first deploy of an upgrade from a
    /// version without that store, so that web processes still running the older version
    /// find every record.
    pub fn packed_finished_records(mut self, packed: bool) -> Self {
        self.packed_finished_records = packed;
        self
    }

    /// Applies a value of `QUEUE_STATUS_STORE`: `packed` (or none) packs succeeded jobs'
    /// records, `hashes` keeps them in their own hashes
    /// ([`ClientConfig::packed_finished_records`]); anything else is
    /// [`Error::InvalidSetting`].
    ///
    /// ```
    /// use queue_core::ClientConfig;
    /// let config = ClientConfig::new("redis://h").status_store_from(Some("hashes")).unwrap();
    /// assert!(!config.packed_finished_records);
    /// assert!(ClientConfig::new("redis://h").status_store_from(Some("hash")).is_err());
    /// ```
    pub fn status_store_from(mut self, value: Option<&str>) -> Result<Self> {
        self.packed_finished_records = match value {
            None | Some("packed") => true,
            Some("hashes") => false,
            Some(other) => {
                return Err(Error::InvalidSetting {
                    name: "QUEUE_STATUS_STORE",
                    reason: format!("{other:?} is neither \"packed\" nor \"hashes\""),
                });
            }
        };
        Ok(self)
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the bound on every Redis call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the payload cap.
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// Accepts self-signed or otherwise unverifiable TLS certificates.
    pub fn accept_invalid_certs(mut self, accept: bool) -> Self {
        self.accept_invalid_certs = accept;
        self
    }

    /// Names the connection in `CLIENT LIST`.
    pub fn connection_name(mut self, name: impl Into<String>) -> Self {
        self.connection_name = Some(name.into());
        self
    }

    /// Sets how long status records are kept.
    pub fn status_retention(mut self, retention: StatusRetention) -> Self {
        self.status_retention = retention;
        self
    }

    /// Whether the URL asks for TLS.
    pub fn is_tls(&self) -> bool {
        self.url.starts_with("rediss://")
    }

    /// Whether this configuration talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        !self.cluster_nodes.is_empty()
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &"<redacted>")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("max_payload_bytes", &self.max_payload_bytes)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("connection_name", &self.connection_name)
            .field("status_retention", &self.status_retention)
            .field("cluster_nodes", &self.cluster_nodes.len())
            .field("spread_queues", &self.spread_queues)
            .field("packed_finished_records", &self.packed_finished_records)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_tls_url_wins_and_a_missing_url_is_an_error() {
        let c = ClientConfig::from_vars(vars(&[
            ("REDIS_URL", "redis://plain:6379"),
            ("REDIS_TLS_URL", "rediss://tls:6380"),
        ]))
        .unwrap();
        assert_eq!(c.url, "rediss://tls:6380");
        let c = ClientConfig::from_vars(vars(&[("REDIS_URL", "redis://a"), ("REDIS_TLS_URL", "")]))
            .unwrap();
        assert_eq!(c.url, "redis://a");
        assert!(matches!(
            ClientConfig::from_vars(vars(&[("REDIS_URL", "")])),
            Err(Error::MissingRedisUrl)
        ));
    }

    #[test]
    fn certificate_checks_are_skipped_on_the_platform_unless_forced() {
        let url = ("REDIS_URL", "rediss://h:6380");
        let on_platform = ClientConfig::from_vars(vars(&[url, ("DYNO", "worker.1")])).unwrap();
        assert!(on_platform.accept_invalid_certs);
        assert_eq!(on_platform.connection_name.as_deref(), Some("worker.1"));
        let forced = vars(&[url, ("DYNO", "worker.1"), ("REDIS_TLS_SKIP_VERIFY", "0")]);
        assert!(
            !ClientConfig::from_vars(forced)
                .unwrap()
                .accept_invalid_certs
        );
        let local = ClientConfig::from_vars(vars(&[url])).unwrap();
        assert!(!local.accept_invalid_certs);
        assert_eq!(local.connection_name, None);
        for yes in ["1", "true", "yes"] {
            let skip = vars(&[url, ("REDIS_TLS_SKIP_VERIFY", yes)]);
            assert!(
                ClientConfig::from_vars(skip).unwrap().accept_invalid_certs,
                "{yes}"
            );
        }
    }

    #[test]
    fn the_prefix_comes_from_queue_prefix() {
        let c = ClientConfig::from_vars(vars(&[
            ("REDIS_URL", "redis://h"),
            ("QUEUE_PREFIX", "{app}:"),
        ]))
        .unwrap();
        assert_eq!(c.prefix, "{app}:");
        assert_eq!(
            ClientConfig::from_vars(vars(&[("REDIS_URL", "redis://h")]))
                .unwrap()
                .prefix,
            ""
        );
    }

    #[test]
    fn cluster_urls_select_cluster_mode_with_a_hash_tagged_prefix() {
        let c = ClientConfig::from_vars(vars(&[
            ("REDIS_URL", "redis://single"),
            ("REDIS_CLUSTER_URLS", "redis://a:7000, redis://b:7001,"),
        ]))
        .unwrap();
        assert!(c.is_cluster());
        assert_eq!(c.cluster_nodes, ["redis://a:7000", "redis://b:7001"]);
        assert_eq!(c.url, "redis://a:7000");
        assert_eq!(c.prefix, DEFAULT_CLUSTER_PREFIX);
        let c = ClientConfig::from_vars(vars(&[
            ("REDIS_CLUSTER_URLS", "redis://a:7000"),
            ("QUEUE_PREFIX", "{billing}:"),
        ]))
        .unwrap();
        assert_eq!(c.prefix, "{billing}:");
        let single = ClientConfig::from_vars(vars(&[("REDIS_URL", "redis://h")])).unwrap();
        assert!(!single.is_cluster());
        assert!(format!("{c:?}").contains("cluster_nodes: 1"));
    }

    #[test]
    fn debug_never_shows_the_url() {
        let c = ClientConfig::new("redis://:s3cret@host:6379");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
