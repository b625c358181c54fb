//! The request deadline every router of this crate applies.
//!
//! The platform's router cuts a request that has not started its answer after 30 s (H12),
//! while the dyno keeps working on it unseen. Every router here therefore answers within
//! [`REQUEST_TIMEOUT`]: its handlers are bounded by the client's Redis timeout, long polls by
//! [`MAX_WAIT`](crate::MAX_WAIT), and this layer catches anything else with an empty
//! `503 Service Unavailable`.

use axum::http::StatusCode;
use std::time::Duration;
use tower_http::timeout::TimeoutLayer;

/// Longest any request of this crate's routers may take, well under the router's 30 s.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(25);

/// The layer that answers `503` when a request reaches [`REQUEST_TIMEOUT`].
///
/// Apply it to application routes too; this crate's routers already carry it.
///
/// ```
/// let app: axum::Router = axum::Router::new().layer(queue_web::request_timeout_layer());
/// ```
pub fn request_timeout_layer() -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT)
}
