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
    queue_core::platform::init_logging();
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
///
/// [`queue_core::platform::shutdown_signal`] with this crate's error type, kept so that
/// worker mains can `?` it into [`Error`].
pub fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    queue_core::platform::shutdown_signal().map_err(Error::Signals)
}
