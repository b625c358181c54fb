//! `run`: the main function of a worker binary on the platform.

use crate::error::{Error, Result};
use crate::worker::WorkerBuilder;

/// Runs a worker configured from the environment until SIGTERM or SIGINT.
///
/// Reads `REDIS_TLS_URL`/`REDIS_URL` (and the other `ClientConfig::from_env` variables),
/// `WORKER_CONCURRENCY`, `WORKER_QUEUES` (`critical,default` strict, `critical:3,default:1`
/// weighted) and `SHUTDOWN_TIMEOUT` (seconds, default 25), each over what the builder set;
/// logs to stdout. The first signal
/// starts the shutdown; later ones are logged and change nothing.
///
/// ```no_run
/// use queue_worker::{Failure, JobContext, Worker};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Serialize, Deserialize)] struct Ping;
/// # impl queue_core::Job for Ping { const NAME: &'static str = "Ping"; }
/// #[tokio::main]
/// async fn main() -> Result<(), queue_worker::Error> {
///     queue_worker::run(
///         Worker::builder().register(|_: Ping, _ctx: JobContext| async { Ok::<_, Failure>("pong") }),
///     )
///     .await
/// }
/// ```
pub async fn run(builder: WorkerBuilder) -> Result<()> {
    crate::logging::init_logging();
    // Settings made on the builder stay unless the environment overrides them.
    let builder = builder.try_configure(|c| {
        *c = std::mem::take(c).with_env()?;
        Ok(())
    })?;
    let client = queue_core::Client::from_env().await?;
    let worker = builder.build(client)?;
    let signal = shutdown_signal()?;
    worker.run_until(signal).await
}

/// Completes on the first SIGTERM or SIGINT; a background task logs any later ones.
pub fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signals)?;
    let (tx, rx) = tokio::sync::oneshot::channel::<&'static str>();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            let name = tokio::select! {
                s = term.recv() => { if s.is_none() { break; } "SIGTERM" }
                s = int.recv() => { if s.is_none() { break; } "SIGINT" }
            };
            match tx.take() {
                Some(tx) => {
                    let _ = tx.send(name);
                }
                None => tracing::info!(signal = name, "already shutting down; signal ignored"),
            }
        }
    });
    Ok(async move {
        if let Ok(name) = rx.await {
            tracing::info!(signal = name, "received signal");
        }
    })
}
