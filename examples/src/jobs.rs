//! The job types the web process enqueues and the worker process runs.
//!
//! Both binaries link this file, so a job's name and arguments cannot drift apart between
//! the enqueuing side and the performing side. Renaming [`Job::NAME`] orphans jobs that are
//! already queued: during a deploy, old and new dynos run side by side.

use queue_core::Job;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest report title accepted by the web process, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Most pages one report may ask for (a page takes [`crate::report::PAGE_TIME`]).
pub const MAX_PAGES: u32 = 600;

/// Build a report: one page per step, with progress after every page.
///
/// The worker decides the default length (`REPORT_SECONDS`, one page a second); a request
/// may ask for a number of pages instead.
///
/// ```
/// use examples::ReportJob;
/// use queue_core::Job;
/// let job = ReportJob::new("Q3");
/// assert_eq!(job.to_args().unwrap(), vec![serde_json::json!({"title": "Q3"})]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportJob {
    /// What the report is about, shown in its progress and result.
    pub title: String,
    /// Pages to crunch; `None` uses the worker's `REPORT_SECONDS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
}

impl ReportJob {
    /// A report of the worker's default length.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            pages: None,
        }
    }

    /// Checks what a web request asked for; the error is safe to show to the caller.
    ///
    /// ```
    /// use examples::ReportJob;
    /// assert!(ReportJob::new("Q3").validate().is_ok());
    /// assert!(ReportJob::new("  ").validate().is_err());
    /// assert!(ReportJob { title: "Q3".into(), pages: Some(0) }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), &'static str> {
        let chars = self.title.trim().chars().count();
        if chars == 0 || chars > MAX_TITLE_CHARS {
            return Err("title must be 1 to 200 characters");
        }
        if let Some(pages) = self.pages
            && !(1..=MAX_PAGES).contains(&pages)
        {
            return Err("pages must be between 1 and 600");
        }
        Ok(())
    }
}

impl Job for ReportJob {
    const NAME: &'static str = "ReportJob";
    // The `default` queue, like `FlakyJob`: `queue_worker::run` takes its queues from
    // `WORKER_QUEUES` (default `default`), so a worker needs no setting to run both.

    /// The longest report plus a margin: a stuck attempt is failed and retried.
    fn timeout() -> Option<Duration> {
        Some(crate::report::PAGE_TIME * MAX_PAGES + Duration::from_secs(60))
    }
}

/// A job that fails its first attempt as a flaky upstream would, and succeeds on the next.
///
/// ```
/// use examples::FlakyJob;
/// use queue_core::Job;
/// assert_eq!(FlakyJob::NAME, "FlakyJob");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlakyJob {
    /// Free text, echoed in the result.
    pub label: String,
}

impl Job for FlakyJob {
    const NAME: &'static str = "FlakyJob";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_with_and_without_pages() {
        let args = vec![serde_json::json!({"title": "Q3", "pages": 4})];
        let job = ReportJob::from_args(ReportJob::NAME, &args).unwrap();
        assert_eq!(job.pages, Some(4));
        let args = vec![serde_json::json!({"title": "Q3"})];
        assert_eq!(
            ReportJob::from_args(ReportJob::NAME, &args).unwrap(),
            ReportJob::new("Q3")
        );
    }

    #[test]
    fn titles_and_pages_are_bounded() {
        assert!(
            ReportJob::new("x".repeat(MAX_TITLE_CHARS))
                .validate()
                .is_ok()
        );
        assert!(
            ReportJob::new("x".repeat(MAX_TITLE_CHARS + 1))
                .validate()
                .is_err()
        );
        let long = ReportJob {
            title: "Q3".into(),
            pages: Some(MAX_PAGES + 1),
        };
        assert!(long.validate().is_err());
    }
}
