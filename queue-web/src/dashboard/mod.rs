//! The operators' dashboard: queues, sets, processes and jobs, with the actions of
//! [`queue_core::inspect`], as server-rendered HTML (askama templates, no script).
//!
//! Mount [`dashboard_router`] under any path; links are built from the mount point of each
//! request, so no base URL is configured.
//!
//! ```no_run
//! use axum::Router;
//! use queue_web::{DashboardAuth, dashboard_router};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = queue_core::Client::from_env().await?;
//! let app: Router = Router::new().nest(
//!     "/dashboard",
//!     dashboard_router(client, DashboardAuth::password_from_env("DASHBOARD_PASSWORD")?),
//! );
//! # let _ = app; Ok(()) }
//! ```
//!
//! # Routes (below the mount point)
//! | route | what |
//! |---|---|
//! | `GET /` | overview: processed/failed totals, the last hour and the last 30 days, queue latency |
//! | `GET /queues`, `GET /queues/{name}?page=&size=` | queues; one queue's jobs, newest first |
//! | `GET /busy?page=` | processes, the jobs each holds and for how long |
//! | `GET /sets/{scheduled,retries,dead}?page=&size=` | a sorted set, latest first, with errors |
//! | `GET /jobs/{id}` | a job's status record |
//! | `GET /search?q=&in=&from=` | jobs by id or class in one queue or set, bounded per request |
//! | `POST /sets/{set}/{retry,delete,kill}` | one entry (form: `score` + `jid`, or `raw` hex) |
//! | `POST /sets/{set}/{retry-all,clear}` | the whole set, in batches |
//! | `POST /queues/{name}/{pause,resume}` | pause or resume a queue |
//! | `POST /jobs/{id}/cancel` | cancel a job (queued, scheduled, or running) |
//! | `POST /busy/{quiet,stop}` | quiet or stop a worker process (form: `identity`) |
//! | `POST /login`, `POST /logout` | password mode's session |
//! | `GET /assets/dashboard.css` | the stylesheet (public, no data) |
//!
//! # Security
//! - Authentication cannot be left out: see [`DashboardAuth`].
//! - Every action is a POST with a CSRF token and a same-origin `Origin` header (`csrf.rs`);
//!   GETs change nothing.
//! - Every response carries [`CONTENT_SECURITY_POLICY`] (no script at all, styles only from
//!   the router's own file), `X-Frame-Options: DENY`, `Referrer-Policy: same-origin`,
//!   `X-Content-Type-Options: nosniff` and `Cache-Control: no-store`.
//! - Every value from a job is escaped by the templates and cut to a bounded length.
//! - Every query and path parameter is parsed into a typed value first; anything else is
//!   `400`. Pages hold at most [`MAX_PAGE_SIZE`] entries, the busy page
//!   [`PROCESSES_PER_PAGE`] processes of [`JOBS_PER_PROCESS`] jobs, a search reads at most
//!   [`SCAN_BUDGET`] entries: each request's work is bounded whatever Redis holds.

mod auth;
mod base;
mod chart;
mod clock;
mod cookies;
mod csrf;
mod headers;
mod pages;
mod params;
mod signing;
mod state;
mod view;

pub use auth::{DashboardAccess, DashboardAuth, SESSION_LIFETIME};
pub use csrf::MAX_FORM_BYTES;
pub use headers::CONTENT_SECURITY_POLICY;
pub use pages::busy::{JOBS_PER_PROCESS, PROCESSES_PER_PAGE};
pub use pages::overview::{HISTORY_DAYS, HOUR_MINUTES};
pub use pages::search::MAX_QUERY_BYTES;
pub use pages::search::{MAX_MATCHES, SCAN_BUDGET};
pub use params::{DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE};
pub use view::{MAX_BACKTRACE_CHARS, MAX_DELETABLE_RAW_BYTES, MAX_FIELD_CHARS};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use queue_core::Client;
use std::sync::Arc;

use pages::{actions, busy, job, overview, queues, search, sets};
use signing::SigningKey;
use state::Dashboard;

/// The stylesheet, served by the router so the CSP can allow `'self'` and nothing inline.
const STYLESHEET: &str = include_str!("assets/dashboard.css");

/// The dashboard's router, to nest under any path (see the module docs).
///
/// In password mode sessions and CSRF tokens are signed with a key derived from the
/// password; otherwise with a random key made here, so a form is valid only on the process
/// that served it (after a restart, or on another dyno, reloading the page fixes it). Should
/// the operating system give no randomness, every action is refused (and logged).
pub fn dashboard_router(client: Client, auth: DashboardAuth) -> Router {
    let key = match &auth.mode {
        auth::Mode::Password(p) => Ok(SigningKey::from_password(p)),
        _ => SigningKey::random(),
    };
    let (key, forms_enabled) = match key {
        Ok(key) => (key, true),
        Err(e) => {
            // No randomness, no secret key: every form is refused rather than signed with a
            // key anyone could compute. The pages still render.
            tracing::error!(error = %e, "no randomness for the dashboard key; actions are disabled");
            (SigningKey::from_password(b"unusable"), false)
        }
    };
    let state = Arc::new(Dashboard {
        client,
        auth,
        key,
        forms_enabled,
    });
    let protected = Router::new()
        .route("/", get(overview::overview))
        .route("/queues", get(queues::queues))
        .route("/queues/{name}", get(queues::queue))
        .route("/queues/{name}/pause", post(actions::pause))
        .route("/queues/{name}/resume", post(actions::resume))
        .route("/busy", get(busy::busy))
        .route("/busy/quiet", post(actions::quiet))
        .route("/busy/stop", post(actions::stop))
        .route("/sets/{set}", get(sets::set))
        .route("/sets/{set}/retry", post(actions::retry))
        .route("/sets/{set}/delete", post(actions::delete))
        .route("/sets/{set}/kill", post(actions::kill))
        .route("/sets/{set}/retry-all", post(actions::retry_all))
        .route("/sets/{set}/clear", post(actions::clear))
        .route("/jobs/{id}", get(job::job))
        .route("/jobs/{id}/cancel", post(actions::cancel))
        .route("/search", get(search::search))
        .route("/logout", post(auth::logout))
        .route_layer(from_fn_with_state(state.clone(), csrf::verify))
        .route_layer(from_fn_with_state(state.clone(), auth::require));
    let login = post(auth::login).layer(from_fn_with_state(state.clone(), csrf::verify));
    Router::new()
        .merge(protected)
        .route("/login", login)
        .layer(from_fn_with_state(state.clone(), csrf::issue))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .route("/assets/dashboard.css", get(stylesheet))
        .fallback(not_found)
        .layer(from_fn(headers::security_headers))
        .with_state(state)
}

async fn stylesheet() -> impl IntoResponse {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
}

async fn not_found() -> crate::WebError {
    crate::WebError::NotFound
}
