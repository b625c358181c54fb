//! Opening connections: TLS options, connection names and the boot-time memory-policy check.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client as RedisClient, ProtocolVersion};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{SharedConnection, cluster_connection};
use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::pushes::{Pushes, push_sender};

/// The URL fragment with which the `redis` crate skips certificate checks.
const INSECURE_FRAGMENT: &str = "#insecure";

/// Builds a `redis::Client` for the configured URL, applying the TLS choice.
///
/// Whether certificates are checked is decided by [`ClientConfig::accept_invalid_certs`]
/// alone (in the environment, `REDIS_TLS_SKIP_VERIFY`, or `DYNO`): a `#insecure` already at
/// the end of the URL is removed, with a warning, unless that setting agrees. A URL is
/// copied between apps and dashboards; a fragment in it must not switch off verification
/// that the environment asked for.
pub fn redis_client(config: &ClientConfig) -> Result<RedisClient> {
    RedisClient::open(url_with_tls_choice(&config.url, config))
        .map_err(|e| Error::InvalidRedisUrl(format!("{:?}", e.kind())))
}

/// `url` with [`ClientConfig::accept_invalid_certs`] applied: the `#insecure` fragment added
/// or removed (see [`redis_client`]); a plain `redis://` URL is returned as it is.
pub(crate) fn url_with_tls_choice(url: &str, config: &ClientConfig) -> String {
    let mut url = url.to_owned();
    if url.starts_with("rediss://") {
        // rustls needs a process-wide crypto provider; a second install is a harmless no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        if let Some(stripped) = url.strip_suffix(INSECURE_FRAGMENT) {
            if !config.accept_invalid_certs {
                tracing::warn!(
                    "the Redis URL ends in #insecure, which is ignored: TLS certificates are \
                     verified; set REDIS_TLS_SKIP_VERIFY=1 (or accept_invalid_certs) to skip the check"
                );
            }
            url = stripped.to_owned();
        }
        if config.accept_invalid_certs {
            url.push_str(INSECURE_FRAGMENT);
        }
    }
    url
}

/// The shared connection that serves every caller: a self-reconnecting multiplexed
/// connection to one server, or the cluster client when [`ClientConfig::cluster_nodes`] is set.
pub async fn shared_connection(config: &ClientConfig) -> Result<SharedConnection> {
    Ok(open_shared(config).await?.0)
}

/// The shared connection and, where it speaks RESP3 (a single server of Redis 6 or later),
/// the router of the pub/sub messages it carries ([`crate::pushes`]). `None` means
/// subscribers open a pub/sub connection of their own: a cluster, a server that refuses
/// `HELLO 3`, or a URL that asks for `protocol=resp2`.
pub(crate) async fn open_shared(
    config: &ClientConfig,
) -> Result<(SharedConnection, Option<Arc<Pushes>>)> {
    if config.is_cluster() {
        let mut conn = cluster_connection(config).await?;
        name_connection(&mut conn, config).await?;
        return Ok((conn, None));
    }
    let client = redis_client(config)?;
    let chosen = client.get_connection_info().redis_settings().protocol();
    let (conn, pushes) = if chosen == ProtocolVersion::RESP2 && !protocol_in_url(&config.url) {
        match connect_resp3(&client, config).await {
            Ok(found) => found,
            // A server before Redis 6 (or a proxy) answers HELLO with an error reply; a
            // server that is down, silent or refuses the password fails the same way in
            // both protocols (those are other variants, or an authentication error).
            Err(Error::Redis(e)) if e.kind() != redis::ErrorKind::AuthenticationFailed => {
                tracing::info!(
                    error = %e,
                    "Redis refused RESP3 (HELLO 3); wake-ups and status announcements use a pub/sub connection of their own"
                );
                (
                    connect_manager(client, manager_config(config), config).await?,
                    None,
                )
            }
            Err(e) => return Err(e),
        }
    } else if chosen.supports_resp3() {
        connect_resp3(&client, config).await?
    } else {
        (
            connect_manager(client, manager_config(config), config).await?,
            None,
        )
    };
    let mut conn = conn;
    name_connection(&mut conn, config).await?;
    Ok((conn, pushes))
}

/// Whether the URL chooses the protocol itself (`?protocol=resp2` turns push delivery off).
fn protocol_in_url(url: &str) -> bool {
    url.split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("protocol=")))
}

fn manager_config(config: &ClientConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(2))
}

/// The shared connection in RESP3, with its pushes routed to [`Pushes`].
async fn connect_resp3(
    client: &RedisClient,
    config: &ClientConfig,
) -> Result<(SharedConnection, Option<Arc<Pushes>>)> {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    let client = RedisClient::open(info.set_redis_settings(settings))
        .map_err(|e| Error::InvalidRedisUrl(format!("{:?}", e.kind())))?;
    let routes = Pushes::routes();
    let manager_config = manager_config(config).set_push_sender(push_sender(routes.clone()));
    let conn = connect_manager(client, manager_config, config).await?;
    let SharedConnection::Single(manager) = &conn else {
        return Ok((conn, None));
    };
    let pushes = Pushes::new(routes, manager.clone(), config.timeout);
    Ok((conn, Some(Arc::new(pushes))))
}

async fn connect_manager(
    client: RedisClient,
    manager_config: ConnectionManagerConfig,
    config: &ClientConfig,
) -> Result<SharedConnection> {
    let conn = tokio::time::timeout(
        config.timeout,
        ConnectionManager::new_with_config(client, manager_config),
    )
    .await
    .map_err(|_| Error::Timeout(config.timeout))?
    .map_err(|e| Error::from_bounded(e, config.timeout))?;
    Ok(SharedConnection::Single(conn))
}

/// Sets `CLIENT SETNAME` from the configured name, so operators see `worker.1` in `CLIENT LIST`.
pub async fn name_connection<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    config: &ClientConfig,
) -> Result<()> {
    let Some(name) = &config.connection_name else {
        return Ok(());
    };
    // Connection names may not contain spaces; the platform's `DYNO` never does.
    let name: String = name
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .query_async::<()>(conn)
        .await?;
    Ok(())
}

/// What `maxmemory-policy` says about the safety of queued jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryPolicy {
    /// `noeviction`: writes fail loudly when memory is full; nothing is silently deleted.
    NoEviction,
    /// Another policy: Redis may silently delete queued jobs under memory pressure.
    Evicting(String),
    /// `CONFIG GET` is not allowed (many managed services rename or block it).
    Unknown,
}

/// Reads `maxmemory-policy` and logs a warning unless it is `noeviction`.
pub async fn check_memory_policy<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
) -> MemoryPolicy {
    // A map in RESP3, a flat list of name and value in RESP2: read as a map either way.
    let reply: redis::RedisResult<HashMap<String, String>> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory-policy")
        .query_async(conn)
        .await;
    let policy = match reply {
        Ok(map) => match map.get("maxmemory-policy").map(String::as_str) {
            Some("noeviction") => MemoryPolicy::NoEviction,
            Some(other) => MemoryPolicy::Evicting(other.to_owned()),
            None => MemoryPolicy::Unknown,
        },
        Err(_) => MemoryPolicy::Unknown,
    };
    match &policy {
        MemoryPolicy::NoEviction => {}
        MemoryPolicy::Evicting(p) => tracing::warn!(
            maxmemory_policy = %p,
            "Redis maxmemory-policy is not noeviction: under memory pressure Redis will silently delete queued jobs; set it to noeviction"
        ),
        MemoryPolicy::Unknown => tracing::warn!(
            "could not read Redis maxmemory-policy (CONFIG not allowed); make sure it is noeviction, or jobs may be silently evicted"
        ),
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::ConnectionAddr;

    fn insecure(config: &ClientConfig) -> bool {
        match redis_client(config).unwrap().get_connection_info().addr() {
            ConnectionAddr::TcpTls { insecure, .. } => *insecure,
            other => panic!("not TLS: {other:?}"),
        }
    }

    fn from(pairs: &[(&str, &str)]) -> ClientConfig {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ClientConfig::from_vars(move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
            .unwrap()
    }

    #[test]
    fn a_url_fragment_cannot_turn_certificate_checks_off() {
        let url = "rediss://:pw@h:6380#insecure";
        // The environment forces verification: the fragment must not override it.
        assert!(!insecure(&from(&[
            ("REDIS_URL", url),
            ("REDIS_TLS_SKIP_VERIFY", "0")
        ])));
        assert!(!insecure(&from(&[
            ("REDIS_URL", url),
            ("DYNO", "web.1"),
            ("REDIS_TLS_SKIP_VERIFY", "0")
        ])));
        // Nothing says to skip them (not on the platform, no variable): verified.
        assert!(!insecure(&from(&[("REDIS_URL", url)])));
        assert!(!insecure(&ClientConfig::new(url)));
        // Only the typed setting (from the environment or code) turns them off.
        assert!(insecure(&from(&[
            ("REDIS_URL", url),
            ("REDIS_TLS_SKIP_VERIFY", "1")
        ])));
        assert!(insecure(&from(&[
            ("REDIS_URL", "rediss://h:6380"),
            ("DYNO", "web.1")
        ])));
        assert!(insecure(
            &ClientConfig::new("rediss://h:6380").accept_invalid_certs(true)
        ));
        assert!(!insecure(&ClientConfig::new("rediss://h:6380")));
    }
}
