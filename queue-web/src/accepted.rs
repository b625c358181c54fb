//! The `202 Accepted` answer of a handler that enqueued a job.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use queue_core::JobId;
use serde::Serialize;
use std::time::Duration;

use crate::error::WebError;

/// Default hint for the first poll of the status URL.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// `202 Accepted` with `Location: <status URL>`, `Retry-After` and `{"id", "status_url"}`.
///
/// The status URL is where [`status_router`](crate::status_router) is mounted, followed by
/// the job id; a relative URL (`/jobs/<id>`) is fine in `Location`.
///
/// ```
/// use axum::response::IntoResponse;
/// use queue_core::JobId;
/// use queue_web::Accepted;
///
/// let id = JobId::parse("b4a577edbccf1d805744efa9").unwrap();
/// let response = Accepted::under("/jobs", id).into_response();
/// assert_eq!(response.status(), 202);
/// assert_eq!(response.headers()["location"], "/jobs/b4a577edbccf1d805744efa9");
/// assert_eq!(response.headers()["retry-after"], "1");
/// ```
#[derive(Debug, Clone)]
pub struct Accepted {
    id: JobId,
    status_url: String,
    retry_after: Duration,
}

/// The JSON body of a 202.
#[derive(Serialize)]
struct AcceptedBody<'a> {
    id: &'a str,
    status_url: &'a str,
}

impl Accepted {
    /// A 202 for job `id` whose status is at `status_url`.
    pub fn new(id: JobId, status_url: impl Into<String>) -> Self {
        Self {
            id,
            status_url: status_url.into(),
            retry_after: DEFAULT_RETRY_AFTER,
        }
    }

    /// A 202 for job `id` whose status router is mounted at `base` (e.g. `/jobs` or
    /// `https://api.example.com/jobs`): the status URL is `{base}/{id}`.
    pub fn under(base: &str, id: JobId) -> Self {
        let url = format!("{}/{id}", base.trim_end_matches('/'));
        Self::new(id, url)
    }

    /// Sets the `Retry-After` hint (whole seconds, at least 1), e.g. the expected run time.
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.retry_after = after;
        self
    }

    /// The job id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// The status URL sent in `Location`.
    pub fn status_url(&self) -> &str {
        &self.status_url
    }
}

/// Whole seconds for a `Retry-After` header: rounded up, never 0 (which invites a hot loop).
pub(crate) fn retry_after_secs(after: Duration) -> u64 {
    let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    secs.max(1)
}

impl IntoResponse for Accepted {
    fn into_response(self) -> Response {
        let Ok(location) = HeaderValue::try_from(self.status_url.as_str()) else {
            // The job is enqueued, but the app built a URL with characters a header cannot
            // carry: a bug to fix, reported as a 500 with the detail in the log.
            tracing::error!(job_id = %self.id, "status URL is not a valid Location header");
            return WebError::InvalidResponse("status URL is not a valid header value")
                .into_response();
        };
        let body = AcceptedBody {
            id: self.id.as_str(),
            status_url: &self.status_url,
        };
        (
            StatusCode::ACCEPTED,
            [
                (header::LOCATION, location),
                (
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(self.retry_after)),
                ),
            ],
            Json(body),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_and_is_never_zero() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn under_joins_base_and_id_with_one_slash() {
        let id = JobId::parse("abc").unwrap();
        assert_eq!(
            Accepted::under("/jobs/", id.clone()).status_url(),
            "/jobs/abc"
        );
        assert_eq!(Accepted::under("/jobs", id).status_url(), "/jobs/abc");
    }

    #[test]
    fn a_url_that_is_not_a_header_is_a_500() {
        let id = JobId::parse("abc").unwrap();
        let response = Accepted::new(id, "/jobs/\nabc").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
