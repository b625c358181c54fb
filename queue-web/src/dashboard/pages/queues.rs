//! `GET /queues` (every queue: size, latency, paused) and `GET /queues/{name}` (its jobs,
//! paged).

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use queue_core::Inspector;
use std::sync::Arc;

use super::{Layout, Pager, render};
use crate::WebError;
use crate::dashboard::clock;
use crate::dashboard::params::{PageQuery, queue_name};
use crate::dashboard::state::Dashboard;
use crate::dashboard::view::EntryView;

/// One row of the queues table.
pub(crate) struct QueueRow {
    name: String,
    size: u64,
    latency: String,
    paused: bool,
}

#[derive(Template)]
#[template(path = "queues.html")]
pub(crate) struct QueuesPage {
    layout: Layout,
    queues: Vec<QueueRow>,
}

pub(crate) async fn queues(
    State(d): State<Arc<Dashboard>>,
    layout: Layout,
) -> Result<Html<String>, WebError> {
    let inspect = Inspector::new(&d.client);
    let paused = inspect.paused().await?;
    let queues = inspect
        .queues()
        .await?
        .into_iter()
        .map(|q| QueueRow {
            paused: paused.contains(&q.name),
            latency: clock::short(q.latency),
            size: q.size,
            name: q.name,
        })
        .collect();
    render(&QueuesPage { layout, queues })
}

#[derive(Template)]
#[template(path = "queue.html")]
pub(crate) struct QueuePage {
    layout: Layout,
    name: String,
    size: u64,
    latency: String,
    paused: bool,
    entries: Vec<EntryView>,
    pager: Pager,
}

pub(crate) async fn queue(
    State(d): State<Arc<Dashboard>>,
    layout: Layout,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, WebError> {
    let name = queue_name(&name)?;
    let page = q.page()?;
    let inspect = Inspector::new(&d.client);
    let info = inspect.queue(&name).await?;
    let listing = inspect.queue_page(&name, page).await?;
    let paused = inspect.paused().await?.contains(&name);
    let now = inspect.redis_now().await?.as_secs_f64();
    let pager = Pager::of(&listing, &layout.base.url(&format!("/queues/{name}")));
    render(&QueuePage {
        entries: listing
            .items
            .iter()
            .map(|e| EntryView::of(e, now))
            .collect(),
        layout,
        size: info.size,
        latency: clock::short(info.latency),
        paused,
        name,
        pager,
    })
}
