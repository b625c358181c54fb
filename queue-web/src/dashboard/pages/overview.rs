//! `GET /`: counts, throughput charts and queue latency.

use askama::Template;
use axum::extract::State;
use axum::response::Html;
use queue_core::Inspector;
use queue_core::inspect::Stats;
use std::sync::Arc;

use super::{Layout, render};
use crate::WebError;
use crate::dashboard::chart::Chart;
use crate::dashboard::clock;
use crate::dashboard::state::Dashboard;

/// Days in the history chart.
pub const HISTORY_DAYS: u32 = 30;
/// Minutes in the last-hour chart.
pub const HOUR_MINUTES: u32 = 60;
/// Most queues the overview lists (the queues page lists them all).
const MAX_QUEUES_SHOWN: usize = 20;

#[derive(Template)]
#[template(path = "overview.html")]
pub(crate) struct OverviewPage {
    layout: Layout,
    stats: Stats,
    max_latency: String,
    days: Chart,
    hour: Option<Chart>,
    /// (name, size, latency) of the queues shown.
    queues: Vec<(String, u64, String)>,
    more_queues: usize,
}

pub(crate) async fn overview(
    State(d): State<Arc<Dashboard>>,
    layout: Layout,
) -> Result<Html<String>, WebError> {
    let inspect = Inspector::new(&d.client);
    let stats = inspect.stats().await?;
    let now = inspect.redis_now().await?;
    let mut history = inspect.history(HISTORY_DAYS, now).await?;
    history.reverse();
    let days: Vec<(String, u64, u64)> = history
        .into_iter()
        .map(|day| (day.day, day.processed, day.failed))
        .collect();
    let minutes: Vec<(String, u64, u64)> = inspect
        .recent_throughput(HOUR_MINUTES)
        .await?
        .into_iter()
        .map(|m| {
            (
                clock::hour_minute(m.minute.as_secs_f64()),
                m.processed,
                m.failed,
            )
        })
        .collect();
    let mut queues: Vec<_> = stats
        .queues
        .iter()
        .map(|q| (q.name.clone(), q.size, q.latency))
        .collect();
    // The worst-off queues first.
    queues.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)));
    let more_queues = queues.len().saturating_sub(MAX_QUEUES_SHOWN);
    queues.truncate(MAX_QUEUES_SHOWN);
    render(&OverviewPage {
        layout,
        max_latency: clock::short(stats.max_latency()),
        stats,
        days: Chart::new(&days),
        hour: Some(Chart::new(&minutes)),
        queues: queues
            .into_iter()
            .map(|(n, s, l)| (n, s, clock::short(l)))
            .collect(),
        more_queues,
    })
}
