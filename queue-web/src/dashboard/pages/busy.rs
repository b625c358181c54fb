//! `GET /busy`: the worker processes, the jobs each holds, and for how long.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use futures_util::future::join_all;
use queue_core::inspect::{Info, Page, ProcessInfo};
use queue_core::{Inspector, JobId};
use std::sync::Arc;

use super::{Layout, render};
use crate::WebError;
use crate::dashboard::clock;
use crate::dashboard::params::PageQuery;
use crate::dashboard::state::Dashboard;
use crate::dashboard::view::{EntryView, cut};

/// Processes per page.
pub const PROCESSES_PER_PAGE: usize = 10;
/// Jobs listed per process (its in-flight list may hold more: the count says so). With
/// [`PROCESSES_PER_PAGE`] this bounds the status records one page reads.
pub const JOBS_PER_PROCESS: u32 = 10;

pub(crate) struct ProcessView {
    identity: String,
    hostname: String,
    pid: String,
    concurrency: String,
    queues: String,
    busy: u64,
    beat: String,
    quiet: bool,
    rss_mib: u64,
    jobs: Vec<(EntryView, String)>,
    in_flight: u64,
}

#[derive(Template)]
#[template(path = "busy.html")]
pub(crate) struct BusyPage {
    layout: Layout,
    processes: Vec<ProcessView>,
    total: usize,
    number: usize,
    prev: Option<String>,
    next: Option<String>,
    signals: bool,
}

fn info_text(info: &Info, field: &str) -> String {
    match info {
        Info::Json(map) => map
            .get(field)
            .map(|v| {
                cut(
                    &v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    200,
                )
            })
            .unwrap_or_default(),
        _ => String::new(),
    }
}

pub(crate) async fn busy(
    State(d): State<Arc<Dashboard>>,
    layout: Layout,
    Query(q): Query<PageQuery>,
) -> Result<Html<String>, WebError> {
    let number = q.page()?.index() as usize;
    let inspect = Inspector::new(&d.client);
    let now = inspect.redis_now().await?.as_secs_f64();
    let all = inspect.processes().await?;
    let total = all.len();
    let shown: Vec<ProcessInfo> = all
        .into_iter()
        .skip(number.saturating_mul(PROCESSES_PER_PAGE))
        .take(PROCESSES_PER_PAGE)
        .collect();
    let mut processes = Vec::with_capacity(shown.len());
    for p in shown {
        let listing = inspect
            .in_flight(&p.identity, Page::new(0, JOBS_PER_PROCESS))
            .await?;
        let views: Vec<EntryView> = listing
            .items
            .iter()
            .map(|e| EntryView::of(e, now))
            .collect();
        let records = join_all(views.iter().map(|v| async {
            match v.jid.as_deref().map(JobId::parse) {
                Some(Ok(id)) => d.client.status(&id).await.ok().flatten(),
                _ => None,
            }
        }))
        .await;
        let jobs = views
            .into_iter()
            .zip(records)
            .map(|(v, r)| {
                let running = r
                    .and_then(|r| r.started_at)
                    .map(|s| clock::relative(s, now))
                    .unwrap_or_else(|| "-".to_owned());
                (v, running)
            })
            .collect();
        processes.push(ProcessView {
            hostname: info_text(&p.info, "hostname"),
            pid: info_text(&p.info, "pid"),
            concurrency: info_text(&p.info, "concurrency"),
            queues: info_text(&p.info, "queues"),
            busy: p.busy,
            beat: p
                .beat
                .map(|b| clock::relative(b.as_secs_f64(), now))
                .unwrap_or_default(),
            quiet: p.quiet,
            rss_mib: p.rss_kib / 1024,
            jobs,
            in_flight: listing.total,
            // Uncut: the quiet and stop forms name the process by it.
            identity: p.identity,
        });
    }
    let link = |n: usize| format!("{}?page={n}", layout.base.url("/busy"));
    let prev = (number > 0).then(|| link(number));
    let next = ((number + 1) * PROCESSES_PER_PAGE < total).then(|| link(number + 2));
    render(&BusyPage {
        layout,
        processes,
        total,
        number: number + 1,
        prev,
        next,
        signals: true,
    })
}
