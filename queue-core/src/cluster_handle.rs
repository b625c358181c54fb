//! The cluster client's connection behind a handle that replaces it when its calls keep
//! timing out.
//!
//! The `redis` crate's cluster client refreshes its slot map when a node answers `MOVED` or
//! closes its connections. A master that is frozen (`SIGSTOP`, a hung host, a cut network)
//! does neither: after its replica took over, every call still goes to the frozen node and
//! times out, with no retry and no refresh, until the node wakes up (measured: no progress
//! for 10 minutes). So after `TIMEOUTS_BEFORE_REBUILD` timeouts in a row, the handle
//! builds a new cluster connection from the configured nodes, which asks a node that answers
//! for the slot map, and every later call uses it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use redis::cluster_async::ClusterConnection;
use redis::{RedisError, RedisResult};

use crate::config::ClientConfig;

/// Timeouts in a row after which the connection is rebuilt: one lost reply is a slow
/// command; three in a row are a node that no longer answers.
pub(crate) const TIMEOUTS_BEFORE_REBUILD: u32 = 3;

/// The current cluster connection and what decides when to replace it.
pub struct ClusterHandle {
    current: Mutex<ClusterConnection>,
    config: ClientConfig,
    timeouts_in_a_row: AtomicU32,
    rebuilding: AtomicBool,
}

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("timeouts_in_a_row", &self.timeouts_in_a_row)
            .finish_non_exhaustive()
    }
}

impl ClusterHandle {
    pub(crate) fn new(conn: ClusterConnection, config: ClientConfig) -> Arc<Self> {
        Arc::new(Self {
            current: Mutex::new(conn),
            config,
            timeouts_in_a_row: AtomicU32::new(0),
            rebuilding: AtomicBool::new(false),
        })
    }

    /// The connection to send the next call on (a cheap clone sharing its multiplexer).
    pub fn connection(&self) -> ClusterConnection {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Counts a call's outcome; the third timeout in a row starts a rebuild in the background.
    pub(crate) fn observe<T>(self: &Arc<Self>, reply: &RedisResult<T>) {
        match reply {
            Err(e) if is_timeout(e) => {
                let n = self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
                if n >= TIMEOUTS_BEFORE_REBUILD && !self.rebuilding.swap(true, Ordering::AcqRel) {
                    let handle = Arc::clone(self);
                    tokio::spawn(async move { handle.rebuild().await });
                }
            }
            Err(_) => {}
            Ok(_) => self.timeouts_in_a_row.store(0, Ordering::Relaxed),
        }
    }

    async fn rebuild(&self) {
        tracing::warn!(
            timeouts = self.timeouts_in_a_row.load(Ordering::Relaxed),
            "Redis Cluster calls keep timing out; reconnecting from the configured nodes"
        );
        match crate::cluster::connect(&self.config).await {
            Ok(conn) => {
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) = conn;
                self.timeouts_in_a_row.store(0, Ordering::Relaxed);
                tracing::info!("Redis Cluster connection rebuilt");
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not rebuild the Redis Cluster connection; will try again after the next timeouts");
            }
        }
        self.rebuilding.store(false, Ordering::Release);
    }
}

/// Whether `e` is a reply that did not come in time (the cluster client's response timeout).
fn is_timeout(e: &RedisError) -> bool {
    e.is_timeout()
}
