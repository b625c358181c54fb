//! `GET /search?q=…&in=…&from=N`: find jobs by id or class in one queue or set, with
//! bounded work per request.
//!
//! Redis has no index by class, so a search reads entries. One request reads at most
//! [`SCAN_BUDGET`] entries from offset `from` (in pages of 1,000) and stops early at
//! [`MAX_MATCHES`]; when entries remain, the page offers "continue" from where it stopped.
//! A job id is also looked up in the status records, O(1).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Html;
use queue_core::inspect::{Entry, MAX_PAGE_SIZE, Page};
use queue_core::{Inspector, JobId};
use serde::Deserialize;
use std::sync::Arc;

use super::{Layout, render};
use crate::WebError;
use crate::dashboard::params::{job_set, queue_name, set_segment};
use crate::dashboard::state::Dashboard;
use crate::dashboard::view::EntryView;

/// Most entries one search request reads.
pub const SCAN_BUDGET: u64 = 5_000;
/// Most matches one search request lists.
pub const MAX_MATCHES: usize = 50;
/// Longest search text, in bytes.
pub const MAX_QUERY_BYTES: usize = 200;
/// Highest offset accepted.
const MAX_FROM: u64 = 1_000_000_000;

#[derive(Deserialize, Default)]
pub(crate) struct SearchQuery {
    q: Option<String>,
    #[serde(rename = "in")]
    within: Option<String>,
    from: Option<String>,
}

/// Where a search looks.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Within {
    Set(queue_core::inspect::JobSet),
    Queue(String),
}

impl Within {
    fn parse(s: &str) -> Result<Self, WebError> {
        match s.strip_prefix("queue:") {
            Some(name) => Ok(Within::Queue(queue_name(name)?)),
            None => Ok(Within::Set(job_set(s)?)),
        }
    }

    fn param(&self) -> String {
        match self {
            Within::Set(s) => set_segment(*s).to_owned(),
            Within::Queue(q) => format!("queue:{q}"),
        }
    }
}

#[derive(Template)]
#[template(path = "search.html")]
pub(crate) struct SearchPage {
    layout: Layout,
    q: String,
    within: String,
    queues: Vec<String>,
    searched: bool,
    /// A job id whose status record exists.
    record: Option<String>,
    matches: Vec<EntryView>,
    scanned_from: u64,
    scanned_to: u64,
    total: u64,
    next: Option<String>,
    /// Whether matches get the set's actions, and which set (URL segment) they act on.
    set_actions: bool,
    segment: &'static str,
    killable: bool,
}

pub(crate) async fn search(
    State(d): State<Arc<Dashboard>>,
    layout: Layout,
    Query(query): Query<SearchQuery>,
) -> Result<Html<String>, WebError> {
    let q = query.q.unwrap_or_default().trim().to_owned();
    if q.len() > MAX_QUERY_BYTES {
        return Err(WebError::BadRequest("search text is at most 200 bytes"));
    }
    let within = Within::parse(query.within.as_deref().unwrap_or("dead"))?;
    let from = match query.from.as_deref() {
        None | Some("") => 0,
        Some(f) => f
            .parse::<u64>()
            .ok()
            .filter(|f| *f <= MAX_FROM)
            .ok_or(WebError::BadRequest("from must be an offset"))?,
    };
    let inspect = Inspector::new(&d.client);
    let queues = inspect
        .queues()
        .await?
        .into_iter()
        .map(|q| q.name)
        .collect();
    let mut page = SearchPage {
        layout,
        within: within.param(),
        queues,
        searched: !q.is_empty(),
        record: None,
        matches: Vec::new(),
        scanned_from: from,
        scanned_to: from,
        total: 0,
        next: None,
        set_actions: matches!(within, Within::Set(_)),
        segment: match within {
            Within::Set(s) => set_segment(s),
            Within::Queue(_) => "",
        },
        killable: !matches!(within, Within::Set(queue_core::inspect::JobSet::Dead)),
        q,
    };
    if page.q.is_empty() {
        return render(&page);
    }
    if let Ok(id) = JobId::parse(&page.q)
        && d.client.status(&id).await?.is_some()
    {
        page.record = Some(id.as_str().to_owned());
    }
    let now = inspect.redis_now().await?.as_secs_f64();
    let end = from + SCAN_BUDGET;
    let mut offset = from;
    'scan: while offset < end {
        let (items, total) = read(&inspect, &within, offset).await?;
        page.total = total;
        if items.is_empty() {
            break;
        }
        for (entry, score) in items {
            if offset >= end || page.matches.len() >= MAX_MATCHES {
                break 'scan;
            }
            offset += 1;
            if matches(&entry, &page.q) {
                let mut view = EntryView::of(&entry, now);
                if let Some(s) = score {
                    view.at = crate::dashboard::clock::utc(s);
                    view.score = format!("{s}");
                }
                page.matches.push(view);
            }
        }
    }
    page.scanned_to = offset;
    if offset < page.total {
        let params = serde_urlencoded::to_string([
            ("q", page.q.as_str()),
            ("in", page.within.as_str()),
            ("from", offset.to_string().as_str()),
        ])
        .unwrap_or_default();
        page.next = Some(format!("{}?{params}", page.layout.base.url("/search")));
    }
    render(&page)
}

/// The entries of `within` from position `offset` to the end of the
/// [`MAX_PAGE_SIZE`]-aligned page that holds it, with the listing's length.
async fn read(
    inspect: &Inspector<'_>,
    within: &Within,
    offset: u64,
) -> Result<(Vec<(Entry, Option<f64>)>, u64), WebError> {
    let size = u64::from(MAX_PAGE_SIZE);
    let index =
        u32::try_from(offset / size).map_err(|_| WebError::BadRequest("from is too far"))?;
    // Below MAX_PAGE_SIZE, so it fits a usize.
    let skip = (offset % size) as usize;
    let page = Page::new(index, MAX_PAGE_SIZE);
    Ok(match within {
        Within::Set(set) => {
            let l = inspect.set_page(*set, page).await?;
            let items = l
                .items
                .into_iter()
                .skip(skip)
                .map(|e| (e.entry, Some(e.at.as_secs_f64())))
                .collect();
            (items, l.total)
        }
        Within::Queue(name) => {
            let l = inspect.queue_page(name, page).await?;
            let items = l.items.into_iter().skip(skip).map(|e| (e, None)).collect();
            (items, l.total)
        }
    })
}

/// Whether `entry` is job `q` or a job whose class contains `q`.
fn matches(entry: &Entry, q: &str) -> bool {
    match entry {
        Entry::Job { job, .. } => job.jid.as_str() == q || job.class.contains(q),
        Entry::Malformed(m) => String::from_utf8_lossy(&m.raw).contains(q),
    }
}
