//! # queue-web
//!
//! The HTTP side of the queue, for axum apps on a web dyno: enqueue and answer
//! `202 Accepted`, let clients poll (or long-poll) a status URL, and expose health and
//! metrics. It depends on `queue-core` only.
//!
//! A tour:
//! - [`Accepted`]: the `202` a handler returns after enqueueing: `Location` = the status
//!   URL, `Retry-After`, and `{"id", "status_url"}`.
//! - [`status_router`]: `GET {base}/{id}` answers the job's state, progress, result or error,
//!   attempt and timestamps, never its arguments; `?wait=N` long-polls: changes are pushed
//!   over one subscription per process, waiting costs Redis nothing, and a per-process cap
//!   ([`StatusState::max_waiters`]) answers `503` beyond it ([`long_poll`]).
//! - [`access`]: status URLs are capability URLs (job ids carry 122 random bits); an
//!   [`Access`] hook can also require that the caller owns the job. Unknown, malformed and
//!   refused ids all answer the same `404`.
//! - [`health_router`]: `GET /health`, Redis `PING` bounded by 1 s.
//! - [`metrics_router`]: `GET /metrics` (Prometheus) and `GET /autoscale` (the JSON worker
//!   autoscalers read), behind a bearer token unless opened explicitly ([`MetricsAccess`]),
//!   O(1) in the number of queued jobs ([`metrics`]).
//! - [`dashboard_router`]: the operators' dashboard (queues, busy, scheduled/retries/dead,
//!   jobs, and every verb of `queue_core::inspect`), server-rendered with no script, behind
//!   a required [`DashboardAuth`], CSRF-checked, under a strict CSP ([`dashboard`]).
//! - [`WebError`]: the one error type; Redis down is `503 {"error":"redis unavailable"}`.
//! - Every router answers within [`REQUEST_TIMEOUT`] (25 s), under the platform router's 30 s.
//!
//! ```no_run
//! use axum::{Router, extract::State, routing::post};
//! use queue_core::{Client, Job};
//! use queue_web::{Accepted, CapabilityUrl, MetricsConfig, StatusState, WebError};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct BuildReport { account_id: u64 }
//! impl Job for BuildReport { const NAME: &'static str = "BuildReport"; }
//!
//! // Enqueue, answer 202 with the status URL: `?` turns a Redis outage into a 503.
//! async fn create_report(State(client): State<Client>) -> Result<Accepted, WebError> {
//!     let id = client.enqueue(&BuildReport { account_id: 42 }).await?;
//!     Ok(Accepted::under("/jobs", id))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env().await?;
//! let status = StatusState::new(client.clone(), CapabilityUrl);
//! let app = Router::new()
//!     .route("/reports", post(create_report))
//!     .nest("/jobs", queue_web::status_router(status))
//!     .merge(queue_web::health_router(client.clone()))
//!     .merge(queue_web::metrics_router(client.clone(), MetricsConfig::from_env()))
//!     .layer(queue_web::request_timeout_layer())
//!     .with_state(client.clone())
//!     // The dashboard has its own state: nest it into the finished router.
//!     .nest(
//!         "/dashboard",
//!         queue_web::dashboard_router(
//!             client,
//!             queue_web::DashboardAuth::password_from_env("DASHBOARD_PASSWORD")?,
//!         ),
//!     );
//! let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
//! let listener = tokio::net::TcpListener::bind(format!("0.0.0.0:{port}")).await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Who may read a status
//! A job id is a UUID v4: 122 random bits from the operating system's CSPRNG. Its status URL
//! cannot be guessed or enumerated, so by default the URL itself is the permission
//! ([`CapabilityUrl`]), like a shared-document link. Where that is not enough, record an owner
//! at enqueue and give the router a hook that checks it; the hook sees the request head
//! (extensions set by your authentication middleware, headers) and the status record:
//!
//! ```no_run
//! # use axum::http::request::Parts;
//! # use queue_core::{Client, EnqueueOptions, Job};
//! # use queue_web::{OwnerIs, StatusState};
//! # #[derive(serde::Serialize, serde::Deserialize)] struct BuildReport;
//! # impl Job for BuildReport { const NAME: &'static str = "BuildReport"; }
//! #[derive(Clone)]
//! struct UserId(String); // inserted into the request extensions by the app's auth layer
//!
//! # async fn demo(client: Client) -> queue_core::Result<()> {
//! let id = client
//!     .enqueue_with(&BuildReport, EnqueueOptions::new().owner("user-42"))
//!     .await?;
//! let status = StatusState::new(
//!     client,
//!     OwnerIs::new(|parts: &Parts| parts.extensions.get::<UserId>().map(|u| u.0.clone())),
//! );
//! # Ok(()) }
//! ```
//! A refusal answers exactly what an unknown or malformed id answers (`404`,
//! `{"error":"not found"}`), so nobody learns whether someone else's job exists. Details in
//! [`access`].
//!
//! # Metrics are not public
//! With a token configured ([`MetricsConfig::token`], or `METRICS_TOKEN` through
//! [`MetricsConfig::from_env`]) both `/metrics` and `/autoscale` require it as
//! `Authorization: Bearer <token>`, compared in constant time; a `?token=` in the URL is not
//! accepted, since URLs end up in the platform router's access logs. Without a token they
//! answer `401` to everyone, unless the app opens them on purpose with
//! [`MetricsAccess::Open`] (for a listener that is not exposed).
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod accepted;
pub mod access;
pub mod dashboard;
pub mod error;
pub mod health;
pub mod long_poll;
pub mod metrics;
pub mod status_route;
pub mod timeout;

pub use accepted::Accepted;
pub use access::{Access, CapabilityUrl, OwnerIs};
pub use dashboard::{DashboardAccess, DashboardAuth, dashboard_router};
pub use error::WebError;
pub use health::health_router;
pub use metrics::{MetricsAccess, MetricsConfig, metrics_router, to_prometheus};
pub use status_route::{MAX_WAIT, StatusState, status_router};
pub use timeout::{REQUEST_TIMEOUT, request_timeout_layer};
