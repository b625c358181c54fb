//! What an app adds around its jobs (middleware, hooks) and what the worker observes of
//! them (the finished-job log, the metrics): kept together so that the runner reaches all
//! of it through one field of [`Shared`](crate::shared::Shared).

use std::sync::Arc;
use std::time::Duration;

use crate::finished_log::{Ended, FinishedLog};
use crate::hooks::Hooks;
use crate::middleware::Middleware;
use crate::worker_metrics::WorkerMetrics;

/// Middleware, hooks, the finished-job log and the metrics of one worker.
#[derive(Default)]
pub(crate) struct Extensions {
    pub(crate) middleware: Vec<Arc<dyn Middleware>>,
    pub(crate) hooks: Hooks,
    pub(crate) finished: FinishedLog,
    pub(crate) metrics: WorkerMetrics,
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions")
            .field("middleware", &self.middleware.len())
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl Extensions {
    /// An attempt of job `jid` of `class` ended as `ended` after `took`: one finished-job line (or a
    /// share of a summary) and the metrics.
    pub(crate) fn ended(&self, jid: &str, class: &str, ended: Ended, took: Duration) {
        self.finished.record(jid, class, ended, took);
        self.metrics.ended(class, ended, took);
    }
}
