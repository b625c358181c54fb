//! The one error type of `queue-web` and its mapping to HTTP responses.
//!
//! Every handler of this crate returns `Result<_, WebError>`, and application handlers can
//! too: `?` on a [`queue_core::Error`] picks the right variant. The status code is decided in
//! one place, [`WebError::status_code`]; the body is always `{"error": "<short text>"}`.
//! A 5xx never shows its detail to the client (it says `internal error` or
//! `redis unavailable`); the detail goes to the log instead.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Seconds a client is told to wait before retrying after a 503.
const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

/// Everything a request served by this crate can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// No such job for this caller: unknown, expired, malformed id, or refused by the access
    /// hook. These are deliberately one variant so that callers cannot tell them apart.
    #[error("not found")]
    NotFound,
    /// The metrics token is missing or wrong.
    #[error("unauthorized")]
    Unauthorized,
    /// A query parameter could not be understood.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The job's payload is over the configured size cap (nothing was enqueued).
    #[error("job too large: {0}")]
    PayloadTooLarge(#[source] queue_core::Error),
    /// Redis is down, slow (past the client's bound) or refusing writes for lack of memory.
    #[error("redis unavailable: {0}")]
    RedisUnavailable(#[source] queue_core::Error),
    /// This process already holds as many long polls as it may
    /// ([`StatusState::max_waiters`](crate::StatusState::max_waiters)).
    #[error("too many waiting requests")]
    TooManyWaiters,
    /// Any other failure of the queue (a Redis error reply, a rejected queue name, …).
    #[error("queue error: {0}")]
    Queue(#[source] queue_core::Error),
    /// A response could not be built (for example a status URL that is not a valid header).
    #[error("invalid response: {0}")]
    InvalidResponse(&'static str),
    /// The request was refused: a dashboard action without a valid CSRF token or from
    /// another origin, or a dashboard access hook that said no.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// A credential the app requires is not configured (for example the dashboard password).
    #[error("missing credential: {0}")]
    MissingCredential(String),
}

impl From<queue_core::Error> for WebError {
    fn from(e: queue_core::Error) -> Self {
        if e.is_transient() {
            WebError::RedisUnavailable(e)
        } else if matches!(e, queue_core::Error::PayloadTooLarge { .. }) {
            WebError::PayloadTooLarge(e)
        } else {
            WebError::Queue(e)
        }
    }
}

impl WebError {
    /// The HTTP status this error answers with.
    ///
    /// ```
    /// use axum::http::StatusCode;
    /// use queue_web::WebError;
    /// assert_eq!(WebError::NotFound.status_code(), StatusCode::NOT_FOUND);
    /// assert_eq!(WebError::Unauthorized.status_code(), StatusCode::UNAUTHORIZED);
    /// ```
    pub fn status_code(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::RedisUnavailable(_) | WebError::TooManyWaiters => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            WebError::Queue(_) | WebError::InvalidResponse(_) | WebError::MissingCredential(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The text shown to the client: short, and free of internal detail for every 5xx.
    fn public_message(&self) -> String {
        match self {
            WebError::RedisUnavailable(_) => "redis unavailable".to_owned(),
            WebError::Queue(_) | WebError::InvalidResponse(_) | WebError::MissingCredential(_) => {
                "internal error".to_owned()
            }
            WebError::PayloadTooLarge(_) => "job too large".to_owned(),
            other => other.to_string(),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        if status.is_server_error() {
            // The client sees only the public message; the detail is for the operator.
            if matches!(
                self,
                WebError::RedisUnavailable(_) | WebError::TooManyWaiters
            ) {
                tracing::warn!(error = %self, status = status.as_u16(), "request failed");
            } else {
                tracing::error!(error = %self, status = status.as_u16(), "request failed");
            }
        }
        let mut response =
            (status, Json(json!({ "error": self.public_message() }))).into_response();
        let headers = response.headers_mut();
        match self {
            WebError::RedisUnavailable(_) | WebError::TooManyWaiters => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
                );
            }
            WebError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_core_errors_are_503() {
        let e = WebError::from(queue_core::Error::Timeout(std::time::Duration::from_secs(
            2,
        )));
        assert_eq!(e.status_code(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.public_message(), "redis unavailable");
    }

    #[test]
    fn other_core_errors_are_500_without_detail() {
        let e = WebError::from(queue_core::Error::InvalidQueueName("bad name".into()));
        assert_eq!(e.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.public_message(), "internal error");
    }
}
