//! The web process's routes and its graceful shutdown.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` | what this app does, as JSON |
//! | `POST /reports` `{"title":"Q3"}` (optional `"pages"`) | `202`, `Location: /jobs/<id>` |
//! | `POST /flaky` (optional `{"label":"..."}`) | `202`, `Location: /jobs/<id>` |
//! | `GET /jobs/<id>[?wait=20]` | the job's state, progress and result (long poll with `wait`) |
//! | `GET /health` | `200` while Redis answers |
//! | `GET /metrics`, `GET /autoscale` | queue metrics, `Authorization: Bearer $METRICS_TOKEN` (401 without a token configured) |

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use queue_core::Client;
use queue_web::{Accepted, CapabilityUrl, MetricsConfig, StatusState, WebError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::jobs::{FlakyJob, ReportJob};

/// Where the status router is mounted; `Location` headers point below it.
pub const STATUS_BASE: &str = "/jobs";
/// Largest request body accepted by the enqueue routes: they take a title, not a document.
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Longest the web process waits for open requests after SIGTERM before it exits anyway.
///
/// Every request already ends within [`queue_web::REQUEST_TIMEOUT`] (long polls included),
/// so this only guards against the unexpected; it stays under the platform's 30 s SIGKILL.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(27);

const _: () = assert!(DRAIN_TIMEOUT.as_secs() > queue_web::REQUEST_TIMEOUT.as_secs());
const _: () = assert!(DRAIN_TIMEOUT.as_secs() < 30);

/// The whole app: enqueue routes, the status router under [`STATUS_BASE`], health, metrics.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = queue_core::Client::from_env().await?;
/// let app = examples::app::router(client, queue_web::MetricsConfig::from_env());
/// # let _ = app; Ok(()) }
/// ```
pub fn router(client: Client, metrics: MetricsConfig) -> Router {
    let status = StatusState::new(client.clone(), CapabilityUrl);
    Router::new()
        .route("/", get(index))
        .route("/reports", post(create_report))
        .route("/flaky", post(create_flaky))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .nest(STATUS_BASE, queue_web::status_router(status))
        .merge(queue_web::health_router(client.clone()))
        .merge(queue_web::metrics_router(client.clone(), metrics))
        .layer(queue_web::request_timeout_layer())
        .with_state(client)
}

/// Serves `app` on `listener` until `shutdown` completes, then drains open requests.
///
/// After the signal no new connection is accepted and idle ones are closed; requests in
/// flight finish (each within `REQUEST_TIMEOUT`), bounded by [`DRAIN_TIMEOUT`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let draining = CancellationToken::new();
    let started = draining.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, draining open requests");
        started.cancel();
    });
    let deadline = async {
        draining.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        served = server => {
            served?;
            tracing::info!("web stopped");
        }
        () = deadline => tracing::warn!(?DRAIN_TIMEOUT, "requests still open at the drain timeout; exiting"),
    }
    Ok(())
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
