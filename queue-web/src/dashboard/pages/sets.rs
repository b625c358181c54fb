//! `GET /sets/{scheduled|retries|dead}`: one page of a sorted set, latest first, with the
//! error of each failed job and the actions on each entry and on the whole set.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use queue_core::Inspector;
use queue_core::inspect::JobSet;
use std::sync::Arc;

use super::{Layout, Pager, render};
use crate::WebError;
use crate::dashboard::params::{PageQuery, job_set, set_segment, set_title};
use crate::dashboard::state::Dashboard;
use crate::dashboard::view::EntryView;

#[derive(Template)]
#[template(path = "set.html")]
pub(crate) struct SetPage {
    layout: Layout,
    title: &'static str,
    segment: &'static str,
    /// Whether entries of this set can be killed (moved to dead).
    killable: bool,
    entries: Vec<EntryView>,
    pager: Pager,
}

pub(crate) async fn set(
    State(d): State<Arc<Dashboard>>,
    layout: Layout,
    Path(segment): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, WebError> {
    let set = job_set(&segment)?;
    let page = q.page()?;
    let inspect = Inspector::new(&d.client);
    let listing = inspect.set_page(set, page).await?;
    let now = inspect.redis_now().await?.as_secs_f64();
    let segment = set_segment(set);
    let pager = Pager::of(&listing, &layout.base.url(&format!("/sets/{segment}")));
    render(&SetPage {
        entries: listing
            .items
            .iter()
            .map(|e| EntryView::scored(e, now))
            .collect(),
        layout,
        title: set_title(set),
        segment,
        killable: set != JobSet::Dead,
        pager,
    })
}
