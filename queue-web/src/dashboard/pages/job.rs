//! `GET /jobs/{id}`: one job's status record (state, progress, result, attempts, error).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use queue_core::JobStatus;
use std::sync::Arc;

use super::{Layout, render};
use crate::WebError;
use crate::dashboard::clock;
use crate::dashboard::params::job_id;
use crate::dashboard::state::Dashboard;
use crate::dashboard::view::{MAX_BACKTRACE_CHARS, cut};

#[derive(Template)]
#[template(path = "job.html")]
pub(crate) struct JobPage {
    layout: Layout,
    id: String,
    record: Option<RecordView>,
}

/// The record's fields as text.
pub(crate) struct RecordView {
    state: &'static str,
    cancellable: bool,
    queue: String,
    class: String,
    attempt: u32,
    percent: u8,
    message: String,
    result: String,
    error: String,
    owner: String,
    /// (label, time) of each timestamp the record has.
    times: Vec<(&'static str, String)>,
}

impl RecordView {
    fn of(r: &JobStatus) -> Self {
        let times = [
            ("created", r.created_at),
            ("enqueued", r.enqueued_at),
            ("runs at", r.run_at),
            ("started", r.started_at),
            ("finished", r.finished_at),
        ]
        .into_iter()
        .filter_map(|(label, t)| t.map(|t| (label, clock::utc(t))))
        .collect();
        Self {
            state: r.state.as_str(),
            cancellable: !r.state.is_terminal(),
            queue: r.queue.clone().unwrap_or_default(),
            class: r.class.clone().unwrap_or_default(),
            attempt: r.attempt,
            percent: r.progress.percent.min(100),
            message: r
                .progress
                .message
                .as_deref()
                .map(|m| cut(m, 500))
                .unwrap_or_default(),
            result: r
                .result
                .as_ref()
                .map(|v| {
                    cut(
                        &serde_json::to_string_pretty(v).unwrap_or_default(),
                        MAX_BACKTRACE_CHARS,
                    )
                })
                .unwrap_or_default(),
            error: r
                .error
                .as_deref()
                .map(|e| cut(e, MAX_BACKTRACE_CHARS))
                .unwrap_or_default(),
            owner: r.owner.clone().unwrap_or_default(),
            times,
        }
    }
}

pub(crate) async fn job(
    State(d): State<Arc<Dashboard>>,
    layout: Layout,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = job_id(&id)?;
    let record = d.client.status(&id).await?;
    let status = if record.is_some() {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    let page = render(&JobPage {
        layout,
        id: id.as_str().to_owned(),
        record: record.as_ref().map(RecordView::of),
    })?;
    Ok((status, page).into_response())
}
