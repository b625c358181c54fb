//! The job-status router: `GET {base}/{id}`, with optional long polling (`?wait=N`).
//!
//! # Response
//! `200` with `Cache-Control: no-store` and
//! ```json
//! {"id":"…","state":"running","progress":{"percent":40,"message":"resizing"},"attempt":1,
//!  "created_at":1760000000.1,"enqueued_at":1760000000.1,"started_at":1760000003.2}
//! ```
//! - `state`: `queued`, `scheduled`, `running`, `retrying`, `succeeded`, `dead`, `cancelled`;
//! - `result` (the stored JSON value, `null` if none) only when `succeeded`;
//! - `error` (last error, `"<class>: <message>"`, the job's own error only: panics and
//!   Redis errors are in the worker log, not here) only when `retrying` or `dead`;
//! - timestamps are epoch seconds, present once known: `created_at`, `enqueued_at`, `run_at`,
//!   `started_at`, `finished_at`.
//!
//! A non-terminal state adds `Retry-After` (seconds until polling again is useful). The job's
//! arguments are never shown: they are not in the status record, and this route never reads
//! the job payload.
//!
//! Unknown, expired, malformed and forbidden ids all answer `404 {"error":"not found"}` (see
//! [`access`](crate::access)).
//!
//! # Long polling
//! `?wait=N` (seconds, fractions allowed, capped at [`MAX_WAIT`]) holds the request until the
//! record's state or progress changes, then answers with the new record a round trip or two
//! after the change (it is pushed, see [`long_poll`](crate::long_poll)), or answers the
//! unchanged record after `N` seconds. A terminal state answers at once. Each process holds
//! at most [`StatusState::max_waiters`] waiting requests; one more answers `503` with
//! `Retry-After: 1`.
//!
//! Every answer carries `rev`, the record's change counter. A client that passes it back
//! (`?wait=20&rev=7`) gets an answer at once if anything changed since it last looked, so
//! no state between two polls is skipped (without `rev`, the wait starts from the record
//! as read when the request arrives).

use axum::Json;
use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use queue_core::{Client, JobId, JobState, JobStatus, Progress};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::accepted::retry_after_secs;
use crate::access::Access;
use crate::error::WebError;
use crate::long_poll::{DEFAULT_MAX_WAITERS, Poller};
use crate::timeout::{REQUEST_TIMEOUT, request_timeout_layer};

/// Longest `?wait=` honoured, in seconds' worth.
///
/// A long poll ends at this cap, then reads Redis once more (bounded by the client's
/// timeout), and must still answer before [`REQUEST_TIMEOUT`] (25 s), itself under the
/// platform router's 30 s. Clients simply poll again.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

// A capped wait plus two bounded Redis reads (before and after) fits in the request deadline.
const _: () = assert!(
    MAX_WAIT.as_secs() + 2 * queue_core::config::DEFAULT_TIMEOUT.as_secs()
        < REQUEST_TIMEOUT.as_secs()
);

/// `Retry-After` while queued or running: the state can change any moment.
const ACTIVE_RETRY_AFTER: Duration = Duration::from_secs(1);
/// `Retry-After` while retrying without a known next run time (Sidekiq's first retry
/// waits at least 15 s).
const RETRYING_RETRY_AFTER: Duration = Duration::from_secs(5);
/// Upper bound of any `Retry-After`, so a far-future schedule does not silence a client.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What the status router needs: the queue client, the access hook and the shared poller.
///
/// Cheap to clone; clones share one long-poll poller (create one state per process).
#[derive(Clone)]
pub struct StatusState {
    client: Client,
    access: Arc<dyn Access>,
    poller: Poller,
}

impl fmt::Debug for StatusState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusState")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl StatusState {
    /// State reading through `client` and letting `access` decide who sees which job.
    ///
    /// Use [`CapabilityUrl`](crate::CapabilityUrl) to let anyone holding a status URL read it.
    pub fn new(client: Client, access: impl Access) -> Self {
        Self {
            poller: Poller::new(client.clone(), DEFAULT_MAX_WAITERS),
            client,
            access: Arc::new(access),
        }
    }

    /// How many long polls of this process are waiting for a change right now.
    pub fn long_poll_waiters(&self) -> usize {
        self.poller.waiting()
    }

    /// Caps this process's concurrent long polls at `max` (default
    /// [`DEFAULT_MAX_WAITERS`]); beyond it a `?wait=` request answers `503` with
    /// `Retry-After: 1`. Each waiter holds a connection, so keep `max` under the process's
    /// open-file limit. Set it before cloning the state: clones share one poller.
    pub fn max_waiters(mut self, max: usize) -> Self {
        self.poller = Poller::new(self.client.clone(), max);
        self
    }

    /// Reads the record of `id` if it exists and the request may see it.
    async fn read(&self, id: &JobId, parts: &Parts) -> Result<JobStatus, WebError> {
        match self.client.status(id).await? {
            Some(job) if self.access.allows(parts, &job) => Ok(job),
            _ => Err(WebError::NotFound),
        }
    }
}

/// The status router: `GET /{id}`, to mount anywhere, e.g. `.nest("/jobs", status_router(state))`.
///
/// It carries `Cache-Control: no-store` on every answer and the [`REQUEST_TIMEOUT`] layer.
/// Paths it does not know (`/jobs`, `/jobs/a/b`) answer the same 404 as an unknown job;
/// `/jobs/` (nothing after the slash) is left to the application's fallback by axum's `nest`.
pub fn status_router<S>(state: StatusState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/{id}", get(get_status))
        .fallback(not_found)
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(request_timeout_layer())
        .with_state(state)
}

async fn not_found() -> WebError {
    WebError::NotFound
}

/// Query parameters of the status route.
#[derive(Debug, Deserialize)]
struct StatusQuery {
    /// Long-poll for up to this many seconds.
    wait: Option<f64>,
    /// The `rev` the client last saw: answer at once if the record has moved past it.
    rev: Option<u64>,
}

fn parse_wait(
    query: Result<Query<StatusQuery>, QueryRejection>,
) -> Result<(Duration, Option<u64>), WebError> {
    let Ok(Query(StatusQuery { wait, rev })) = query else {
        return Err(WebError::BadRequest(
            "wait must be a number of seconds and rev a whole number",
        ));
    };
    let wait = match wait {
        None => Duration::ZERO,
        Some(w) if w.is_finite() && w >= 0.0 => {
            Duration::from_secs_f64(w.min(MAX_WAIT.as_secs_f64()))
        }
        Some(_) => return Err(WebError::BadRequest("wait must be a number of seconds")),
    };
    Ok((wait, rev))
}

async fn get_status(
    State(state): State<StatusState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<StatusQuery>, QueryRejection>,
    parts: Parts,
) -> Result<Response, WebError> {
    let (wait, seen_rev) = parse_wait(query)?;
    // A path that is not a valid id answers exactly like an unknown one.
    let Ok(Path(raw)) = path else {
        return Err(WebError::NotFound);
    };
    let id = JobId::parse(&raw).map_err(|_| WebError::NotFound)?;
    if wait.is_zero() {
        return Ok(render(&id, &state.read(&id, &parts).await?));
    }
    let _place = state.poller.place().ok_or(WebError::TooManyWaiters)?;
    // Registered before the read, so that no change after the read is missed.
    let interest = state.poller.register(&id);
    // The mark lands before the access check: a refused caller only makes the record's
    // changes announced for a while, and learns nothing (the same 404 as an unknown id).
    let watched = match state.poller.read_and_watch(&id, wait).await? {
        Some(w) if state.access.allows(&parts, &w.status) => w,
        _ => return Err(WebError::NotFound),
    };
    let mut job = watched.status;
    let moved_since_seen = seen_rev.is_some_and(|seen| seen != job.rev);
    // Unannounced (Redis refused the mark at maxmemory): answer now, and the client polls
    // again after `Retry-After`, rather than wait for an announcement that will not come.
    if watched.announced && !job.state.is_terminal() && !moved_since_seen {
        let deadline = Instant::now() + wait;
        if state
            .poller
            .wait_for_change(interest, job.rev, deadline)
            .await
        {
            job = state.read(&id, &parts).await?;
        }
        // At the deadline no change was announced: answer the record as read.
    }
    Ok(render(&id, &job))
}

/// The JSON body of a status answer.
#[derive(Serialize)]
struct StatusBody<'a> {
    id: &'a str,
    state: JobState,
    progress: &'a Progress,
    attempt: u32,
    rev: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enqueued_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<f64>,
}

static NULL: Value = Value::Null;

fn render(id: &JobId, job: &JobStatus) -> Response {
    let body = StatusBody {
        id: id.as_str(),
        state: job.state,
        progress: &job.progress,
        attempt: job.attempt,
        rev: job.rev,
        result: (job.state == JobState::Succeeded).then(|| job.result.as_ref().unwrap_or(&NULL)),
        error: matches!(job.state, JobState::Retrying | JobState::Dead)
            .then_some(job.error.as_deref())
            .flatten(),
        created_at: job.created_at,
        enqueued_at: job.enqueued_at,
        run_at: job.run_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
    };
    let mut response = Json(body).into_response();
    if let Some(after) = retry_after(job, now_secs()) {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(retry_after_secs(after)),
        );
    }
    response
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// When polling again is useful; `None` for a terminal state, which never changes.
fn retry_after(job: &JobStatus, now: f64) -> Option<Duration> {
    let until_run_at = || {
        job.run_at
            .filter(|at| *at > now)
            .map(|at| Duration::from_secs_f64(at - now).min(MAX_RETRY_AFTER))
    };
    match job.state {
        JobState::Succeeded | JobState::Dead | JobState::Cancelled | JobState::Expired => None,
        JobState::Queued | JobState::Running => Some(ACTIVE_RETRY_AFTER),
        JobState::Scheduled => Some(until_run_at().unwrap_or(ACTIVE_RETRY_AFTER)),
        JobState::Retrying => Some(until_run_at().unwrap_or(RETRYING_RETRY_AFTER)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn job(state: &str, run_at: Option<f64>) -> JobStatus {
        let mut h = HashMap::from([("state".to_owned(), state.to_owned())]);
        if let Some(at) = run_at {
            h.insert("run_at".to_owned(), at.to_string());
        }
        JobStatus::from_hash(h).unwrap()
    }

    #[test]
    fn retry_after_follows_the_state() {
        let now = 1_000.0;
        assert_eq!(retry_after(&job("succeeded", None), now), None);
        assert_eq!(retry_after(&job("cancelled", None), now), None);
        assert_eq!(
            retry_after(&job("running", None), now),
            Some(ACTIVE_RETRY_AFTER)
        );
        assert_eq!(
            retry_after(&job("scheduled", Some(1_010.0)), now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after(&job("scheduled", Some(100_000.0)), now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            retry_after(&job("retrying", Some(10.0)), now),
            Some(RETRYING_RETRY_AFTER)
        );
    }

    #[test]
    fn wait_is_capped_and_validated() {
        let q = |w: Option<f64>| Ok(Query(StatusQuery { wait: w, rev: None }));
        assert_eq!(parse_wait(q(None)).unwrap().0, Duration::ZERO);
        assert_eq!(
            parse_wait(q(Some(1.5))).unwrap().0,
            Duration::from_millis(1500)
        );
        assert_eq!(parse_wait(q(Some(1e9))).unwrap().0, MAX_WAIT);
        assert!(parse_wait(q(Some(-1.0))).is_err());
        assert!(parse_wait(q(Some(f64::NAN))).is_err());
    }
}
