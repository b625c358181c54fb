//! The POST actions: each checks its inputs, calls one `queue_core` verb and redirects
//! (`303`) back to the page it came from with a fixed `?done=` code. CSRF and `Origin`
//! were checked in front of them (`csrf.rs`); a GET of any of these paths is `405`.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use queue_core::inspect::{Acted, JobSet};
use queue_core::{Inspector, Timestamp};
use serde::Deserialize;
use std::sync::Arc;

use crate::WebError;
use crate::dashboard::base::Base;
use crate::dashboard::params::{job_id, job_set, queue_name, set_segment};
use crate::dashboard::signing::unhex;
use crate::dashboard::state::Dashboard;
use crate::dashboard::view::MAX_DELETABLE_RAW_BYTES;

/// The form naming one entry of a set: by score and job id, or (an entry without a usable
/// id) by its bytes, hex-encoded.
#[derive(Debug, Deserialize)]
pub(crate) struct EntryForm {
    score: Option<String>,
    jid: Option<String>,
    raw: Option<String>,
}

/// The verbs on one entry.
#[derive(Debug, Clone, Copy)]
enum EntryVerb {
    Retry,
    Delete,
    Kill,
}

/// The entry's stored bytes, or `None` when it is no longer in the set.
async fn resolve(
    d: &Dashboard,
    set: JobSet,
    form: &EntryForm,
) -> Result<Option<Vec<u8>>, WebError> {
    if let Some(raw) = form.raw.as_deref().filter(|r| !r.is_empty()) {
        let bytes = unhex(raw).ok_or(WebError::BadRequest("raw must be hex"))?;
        if bytes.len() > MAX_DELETABLE_RAW_BYTES {
            return Err(WebError::BadRequest("raw entry too large"));
        }
        return Ok(Some(bytes));
    }
    let id = job_id(form.jid.as_deref().unwrap_or(""))?;
    let score = form
        .score
        .as_deref()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite())
        .ok_or(WebError::BadRequest("score must be a number"))?;
    let found = Inspector::new(&d.client)
        .set_entry(set, Timestamp::from_secs_f64(score), &id)
        .await?;
    Ok(found.map(|e| e.entry.raw().to_vec()))
}

async fn on_entry(
    d: Arc<Dashboard>,
    base: Base,
    segment: String,
    form: EntryForm,
    verb: EntryVerb,
) -> Result<Redirect, WebError> {
    let set = job_set(&segment)?;
    let inspect = Inspector::new(&d.client);
    let acted = match resolve(&d, set, &form).await? {
        None => Acted::Gone,
        Some(raw) => match verb {
            EntryVerb::Retry => inspect.retry_now(set, &raw).await?,
            EntryVerb::Delete => inspect.delete(set, &raw).await?,
            EntryVerb::Kill => inspect.kill(set, &raw).await?,
        },
    };
    let done = match (acted, verb) {
        (Acted::Done, EntryVerb::Retry) => "retried",
        (Acted::Done, EntryVerb::Delete) => "deleted",
        (Acted::Done, EntryVerb::Kill) => "killed",
        (Acted::Gone, _) => "gone",
        (Acted::Cancelled, _) => "cancelled",
        (Acted::Blocked, _) => "blocked",
        (Acted::NotAJob, _) => "notajob",
    };
    Ok(back_to_set(&base, set, done))
}

fn back_to_set(base: &Base, set: JobSet, done: &str) -> Redirect {
    Redirect::to(&base.url(&format!("/sets/{}?done={done}", set_segment(set))))
}

/// `POST /sets/{set}/retry`: retry now.
pub(crate) async fn retry(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Path(segment): Path<String>,
    Form(form): Form<EntryForm>,
) -> Result<Redirect, WebError> {
    on_entry(d, base, segment, form, EntryVerb::Retry).await
}

/// `POST /sets/{set}/delete`.
pub(crate) async fn delete(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Path(segment): Path<String>,
    Form(form): Form<EntryForm>,
) -> Result<Redirect, WebError> {
    on_entry(d, base, segment, form, EntryVerb::Delete).await
}

/// `POST /sets/{set}/kill`: move to the dead set.
pub(crate) async fn kill(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Path(segment): Path<String>,
    Form(form): Form<EntryForm>,
) -> Result<Redirect, WebError> {
    on_entry(d, base, segment, form, EntryVerb::Kill).await
}

/// `POST /sets/{set}/retry-all`.
pub(crate) async fn retry_all(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Path(segment): Path<String>,
) -> Result<Redirect, WebError> {
    let set = job_set(&segment)?;
    let report = Inspector::new(&d.client).retry_all(set).await?;
    tracing::info!(
        set = set.as_str(),
        done = report.done,
        left = report.left,
        "dashboard: retry all"
    );
    Ok(back_to_set(&base, set, "retried-all"))
}

/// `POST /sets/{set}/clear`.
pub(crate) async fn clear(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Path(segment): Path<String>,
) -> Result<Redirect, WebError> {
    let set = job_set(&segment)?;
    let report = Inspector::new(&d.client).clear(set).await?;
    tracing::info!(set = set.as_str(), done = report.done, "dashboard: clear");
    Ok(back_to_set(&base, set, "cleared"))
}

/// `POST /queues/{name}/pause`.
pub(crate) async fn pause(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Path(name): Path<String>,
) -> Result<Redirect, WebError> {
    let name = queue_name(&name)?;
    Inspector::new(&d.client).pause(&name).await?;
    Ok(Redirect::to(&base.url("/queues?done=paused")))
}

/// `POST /queues/{name}/resume`.
pub(crate) async fn resume(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Path(name): Path<String>,
) -> Result<Redirect, WebError> {
    let name = queue_name(&name)?;
    Inspector::new(&d.client).resume(&name).await?;
    Ok(Redirect::to(&base.url("/queues?done=resumed")))
}

/// `POST /jobs/{id}/cancel`.
pub(crate) async fn cancel(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Path(id): Path<String>,
) -> Result<Redirect, WebError> {
    let id = job_id(&id)?;
    let done = if d.client.cancel(&id).await? {
        "cancel-sent"
    } else {
        "cancel-refused"
    };
    Ok(Redirect::to(
        &base.url(&format!("/jobs/{}?done={done}", id.as_str())),
    ))
}

/// Longest process identity accepted (`hostname:pid:nonce`).
const MAX_IDENTITY_BYTES: usize = 512;

/// The form naming a worker process.
#[derive(Debug, Deserialize)]
pub(crate) struct ProcessForm {
    identity: String,
}

fn identity(form: &ProcessForm) -> Result<&str, WebError> {
    let id = form.identity.as_str();
    let valid =
        !id.is_empty() && id.len() <= MAX_IDENTITY_BYTES && !id.chars().any(char::is_control);
    valid
        .then_some(id)
        .ok_or(WebError::BadRequest("not a process identity"))
}

/// `POST /busy/quiet`: the process stops taking jobs (Sidekiq's "Quiet").
pub(crate) async fn quiet(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Form(form): Form<ProcessForm>,
) -> Result<Redirect, WebError> {
    Inspector::new(&d.client).quiet(identity(&form)?).await?;
    Ok(Redirect::to(&base.url("/busy?done=quieted")))
}

/// `POST /busy/stop`: the process shuts down as on SIGTERM (Sidekiq's "Stop").
pub(crate) async fn stop(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    Form(form): Form<ProcessForm>,
) -> Result<Redirect, WebError> {
    Inspector::new(&d.client).stop(identity(&form)?).await?;
    Ok(Redirect::to(&base.url("/busy?done=stopped")))
}
