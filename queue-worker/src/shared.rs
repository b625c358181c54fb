//! State shared by the worker's tasks, and the retry rule for its own Redis calls.

use backon::{ExponentialBuilder, Retryable};
use queue_core::Client;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cancels::Cancels;
use crate::config::WorkerConfig;
use crate::extensions::Extensions;
use crate::in_flight::InFlight;
use crate::membership::Membership;
use crate::paused::Paused;
use crate::registry::Registry;
use crate::slot_leases::SlotLeases;

/// Everything the exchange, runners and loops share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) config: WorkerConfig,
    pub(crate) registry: Registry,
    pub(crate) membership: Membership,
    /// Jobs running now (Sidekiq's `busy`).
    pub(crate) busy: AtomicUsize,
    /// One permit per job running in the process, shared by its queue slots' workers.
    pub(crate) run_slots: Arc<tokio::sync::Semaphore>,
    /// Cancelled on SIGTERM, or by an operator's quiet signal: stop fetching.
    pub(crate) quiet: CancellationToken,
    /// Cancelled by an operator's stop signal (`signals.rs`): shut down as on SIGTERM.
    pub(crate) stop_requested: CancellationToken,
    /// Signalled when a signal for this process waits: the heartbeat reads it at once.
    pub(crate) beat_now: Notify,
    /// The running jobs an operator's cancel can reach (`cancels.rs`).
    pub(crate) cancels: Arc<Cancels>,
    /// Jobs finished, and of those failed, since the last heartbeat counted them into the
    /// minute counters the dashboard charts.
    pub(crate) finished_since_beat: AtomicU64,
    pub(crate) failed_since_beat: AtomicU64,
    /// Cancelled when the shutdown timeout ends: running jobs stop and are handed back.
    pub(crate) hand_back: CancellationToken,
    /// Signalled when an enqueue announced work on one of our queues.
    pub(crate) wake: Arc<Notify>,
    /// This process's copy of the paused queues: the fetch skips them.
    pub(crate) paused: Arc<Paused>,
    /// The jobs the process has taken and not settled, over all its queue slots, and the
    /// bell every slot's exchange waits on for room (`room.rs`).
    pub(crate) room: Arc<crate::room::Room>,
    /// The processing-list entries this process is handling.
    pub(crate) in_flight: InFlight,
    /// The concurrency slots its running jobs hold, renewed with the lease.
    pub(crate) slot_leases: SlotLeases,
    /// Middleware, hooks, the finished-job log and the metrics.
    pub(crate) extensions: Arc<Extensions>,
}

/// Retries `call` while it fails with a transient error (Redis down, slow, or full), with
/// exponential backoff and jitter: from 50 ms up to 5 s between tries, about a minute in all.
/// A Redis outage therefore costs a few calls per minute, never a busy loop.
pub(crate) async fn retry_transient<T, F, Fut>(what: &'static str, call: F) -> queue_core::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = queue_core::Result<T>>,
{
    call.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(16)
            .with_jitter(),
    )
    .when(queue_core::Error::is_transient)
    .notify(|e, delay| {
        tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed; retrying");
    })
    .await
}
