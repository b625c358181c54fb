//! The health endpoint: is Redis answering, quickly?

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::routing::get;
use axum::{Json, Router};
use queue_core::Client;
use serde_json::{Value, json};
use std::time::Duration;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::WebError;
use crate::timeout::request_timeout_layer;

/// Longest the health check waits for Redis's `PONG`: a platform health check must not hang.
pub const HEALTH_PING_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /health`: `200 {"status":"ok","redis_ms":0.4}` when Redis answers `PING` within
/// [`HEALTH_PING_TIMEOUT`], else `503 {"error":"redis unavailable"}`.
///
/// It reveals nothing but up or down, so it may be public:
/// `app.merge(health_router(client.clone()))`.
pub fn health_router<S>(client: Client) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/health", get(health))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(request_timeout_layer())
        .with_state(client)
}

async fn health(State(client): State<Client>) -> Result<Json<Value>, WebError> {
    match tokio::time::timeout(HEALTH_PING_TIMEOUT, client.ping()).await {
        Ok(Ok(rtt)) => Ok(Json(json!({
            "status": "ok",
            "redis_ms": (rtt.as_secs_f64() * 1e6).round() / 1e3,
        }))),
        // Whatever the reason (refused, reset, auth, a slow server), the queue is unusable.
        Ok(Err(e)) => Err(WebError::RedisUnavailable(e)),
        Err(_) => Err(WebError::RedisUnavailable(queue_core::Error::Timeout(
            HEALTH_PING_TIMEOUT,
        ))),
    }
}
