//! The web process's routes; the server that runs them is [`crate::server`].
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | what this app does, as JSON |
//! | `POST /reports` `{"title":"Q3"}` (optional `"pages"`) | `202`, `Location: /jobs/<id>`; `429` past the rate limit |
//! | `POST /flaky` (optional `{"label":"..."}`) | `202`, `Location: /jobs/<id>`; `429` past the rate limit |
//! | `GET /jobs/<id>[?wait=20]` | the job's state, progress and result (long poll with `wait`) |
//! | `GET /health` | `200` while Redis answers |
//! | `GET /metrics`, `GET /autoscale` | queue metrics, `Authorization: Bearer $METRICS_TOKEN` (401 without a token configured) |
//! | `GET /dashboard` | the operators' dashboard, only when `DASHBOARD_PASSWORD` is set ([`with_dashboard`]) |

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use queue_core::Client;
use queue_web::{
    Accepted, CapabilityUrl, DashboardAuth, MetricsConfig, StatusState, WebError, dashboard_router,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::jobs::{FlakyJob, ReportJob};
use crate::rate_limit::PostRateLimit;

/// Where the status router is mounted; `Location` headers point below it.
pub const STATUS_BASE: &str = "/jobs";
/// Largest request body accepted by the enqueue routes: they take a title, not a document.
pub const MAX_BODY_BYTES: usize = 4 * 1024;

/// The whole app: enqueue routes (rate-limited per client when `post_limit` is set), the
/// status router under [`STATUS_BASE`], health, metrics.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use examples::rate_limit::PostRateLimit;
/// let client = queue_core::Client::from_env().await?;
/// let app = examples::app::router(
///     client,
///     queue_web::MetricsConfig::from_env(),
///     PostRateLimit::from_env()?,
/// );
/// # let _ = app; Ok(()) }
/// ```
pub fn router(client: Client, metrics: MetricsConfig, post_limit: Option<PostRateLimit>) -> Router {
    let status = StatusState::new(client.clone(), CapabilityUrl);
    let mut posts = Router::new()
        .route("/reports", post(create_report))
        .route("/flaky", post(create_flaky))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
    if let Some(limit) = post_limit {
        posts = limit.apply(posts);
    }
    Router::new()
        .route("/", get(index))
        .merge(posts)
        .nest(STATUS_BASE, queue_web::status_router(status))
        .merge(queue_web::health_router(client.clone()))
        .merge(queue_web::metrics_router(client.clone(), metrics))
        .layer(queue_web::request_timeout_layer())
        .with_state(client)
}

/// Where [`with_dashboard`] mounts the dashboard.
pub const DASHBOARD_BASE: &str = "/dashboard";
/// The environment variable holding the dashboard password.
pub const DASHBOARD_PASSWORD_VAR: &str = "DASHBOARD_PASSWORD";

/// The dashboard's authentication from `DASHBOARD_PASSWORD`; `None` (and a log line) when it
/// is unset or empty, so the app then serves no dashboard at all.
pub fn dashboard_auth_from_env() -> Option<DashboardAuth> {
    match DashboardAuth::password_from_env(DASHBOARD_PASSWORD_VAR) {
        Ok(auth) => Some(auth),
        Err(_) => {
            tracing::info!("{DASHBOARD_PASSWORD_VAR} is not set: the dashboard is not served");
            None
        }
    }
}

/// `app` with the dashboard nested at [`DASHBOARD_BASE`] when `auth` is given; `app`
/// unchanged (so `/dashboard` is a 404) when it is `None`.
pub fn with_dashboard(app: Router, client: Client, auth: Option<DashboardAuth>) -> Router {
    match auth {
        Some(auth) => app.nest(
            DASHBOARD_BASE,
            dashboard_router(client, auth).layer(queue_web::request_timeout_layer()),
        ),
        None => app,
    }
}

async fn index() -> Json<Value> {
    Json(json!({
        "app": "queue examples: enqueue, 202 Accepted, poll the status URL",
        "try": {
            "POST /reports": "body {\"title\":\"Q3\"}: a report job with progress; answers 202 with Location",
            "POST /flaky": "a job that fails once, is retried a second later and succeeds",
            "GET /jobs/{id}?wait=20": "the job's state, progress and result; wait=N long-polls",
            "GET /health": "200 while Redis answers",
        },
    }))
}

/// `POST /reports`: validates the body, enqueues a [`ReportJob`], answers 202.
async fn create_report(
    State(client): State<Client>,
    body: Result<Json<ReportJob>, JsonRejection>,
) -> Result<Accepted, WebError> {
    let Json(job) = body.map_err(|_| {
        WebError::BadRequest(r#"send a JSON body like {"title":"Q3"} (optional "pages": 1-600)"#)
    })?;
    job.validate().map_err(WebError::BadRequest)?;
    let id = client.enqueue(&job).await?;
    tracing::info!(job_id = %id, pages = ?job.pages, "report enqueued");
    Ok(Accepted::under(STATUS_BASE, id))
}

/// The optional body of `POST /flaky`.
#[derive(Debug, Deserialize)]
struct FlakyRequest {
    label: String,
}

/// `POST /flaky`: enqueues a [`FlakyJob`] (label from an optional JSON body), answers 202.
async fn create_flaky(State(client): State<Client>, body: Bytes) -> Result<Accepted, WebError> {
    let label = if body.iter().all(u8::is_ascii_whitespace) {
        "flaky".to_owned()
    } else {
        serde_json::from_slice::<FlakyRequest>(&body)
            .map_err(|_| WebError::BadRequest(r#"send no body or {"label":"..."}"#))?
            .label
    };
    if label.chars().count() > crate::jobs::MAX_TITLE_CHARS {
        return Err(WebError::BadRequest("label must be at most 200 characters"));
    }
    let id = client.enqueue(&FlakyJob { label }).await?;
    tracing::info!(job_id = %id, "flaky job enqueued");
    Ok(Accepted::under(STATUS_BASE, id))
}
