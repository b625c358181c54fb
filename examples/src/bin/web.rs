//! Run with
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 PORT=3000 cargo run -p examples --bin web
//! curl -si -X POST localhost:3000/reports -H 'content-type: application/json' -d '{"title":"Q3"}'
//! ```
//!
//! The web process: enqueues jobs, answers `202 Accepted`, serves their status URLs.
//! Environment: `PORT` (default 3000; the platform sets it), `REDIS_TLS_URL` or `REDIS_URL`
//! (and the other `queue_core::ClientConfig::from_env` variables: `REDIS_TLS_SKIP_VERIFY`,
//! `QUEUE_PREFIX`, `DYNO`), `METRICS_TOKEN` (`/metrics` and `/autoscale` need it as
//! `Authorization: Bearer`; without it they answer 401), `POST_RATE_BURST` and
//! `POST_RATE_REFILL_MS` (the per-client limit of the POST routes, `examples::rate_limit`;
//! `POST_RATE_BURST=0` turns it off), `RUST_LOG` (default `info`). Binds `0.0.0.0:$PORT`
//! (`examples::server`: a client has 10 s to send its headers, an idle connection is
//! closed); on SIGTERM stops accepting connections and drains open requests within the
//! platform's 30 s.

use examples::rate_limit::PostRateLimit;
use queue_core::{Client, platform};
use queue_web::MetricsConfig;
use std::net::{Ipv4Addr, SocketAddr};

/// Port used when `PORT` is unset (the platform always sets it).
const DEFAULT_PORT: u16 = 3000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    platform::init_logging();
    let port = match std::env::var("PORT") {
        Ok(p) if !p.trim().is_empty() => p
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("PORT must be a port number, not {p:?}"))?,
        _ => DEFAULT_PORT,
    };
    // Signal handlers first: a SIGTERM during start-up must not kill the process outright.
    let shutdown = platform::shutdown_signal()?;
    let client = Client::from_env().await?;
    let post_limit = PostRateLimit::from_env()?;
    let app = examples::app::router(client.clone(), MetricsConfig::from_env(), post_limit);
    let app = examples::app::with_dashboard(app, client, examples::app::dashboard_auth_from_env());
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))).await?;
    tracing::info!(addr = %listener.local_addr()?, "web listening");
    examples::server::serve(listener, app, shutdown).await?;
    Ok(())
}
