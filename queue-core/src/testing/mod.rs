//! Testing helpers.
//!
//! - For apps' own tests, without Redis: [`FakeClient`], an [`Enqueue`](crate::Enqueue)
//!   that records pushes (or, in inline mode, runs them at once through a worker's
//!   `queue_worker::testing::TestWorker`). Always compiled: it has no dependencies and
//!   does nothing unless used, so apps need no feature to test their jobs.
//! - For this workspace's own tests (feature `test-support`): a private `redis-server` per
//!   test (`TestRedis`), a private Redis Cluster (`TestCluster`) and a TCP proxy for network
//!   faults (`TcpProxy`). They need
//!   `tempfile` and a `redis-server` binary, so they stay out of apps' builds. With
//!   `CLUSTER_TARGET_VAR` set (the second run of `script/test`), `TestRedis::start` gives
//!   each test its share of one shared Redis Cluster instead of a server.

#[cfg(feature = "test-support")]
mod cluster;
mod fake;
#[cfg(feature = "test-support")]
mod server;
#[cfg(feature = "test-support")]
mod target;

#[cfg(feature = "test-support")]
pub use cluster::*;
pub use fake::{FakeClient, InlineRunner};
#[cfg(feature = "test-support")]
pub use server::*;
#[cfg(feature = "test-support")]
pub use target::{CLUSTER_TARGET_VAR, config_env};
