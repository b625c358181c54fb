//! The report job's work: one page a step, progress after every page, the result in Redis.
//!
//! Nothing is written to local disk: a dyno's filesystem is wiped on restart and not shared
//! with the web dyno, so the result (a JSON summary and the report's text) is returned by
//! the handler and stored in the job's status record, where the status URL shows it.

use queue_worker::{Failure, JobContext};
use serde_json::{Value, json};
use std::time::Duration;

use crate::jobs::{MAX_PAGES, ReportJob};

/// Time spent on one page: a report of N pages takes N times this.
pub const PAGE_TIME: Duration = Duration::from_secs(1);
/// Length of a report that asks for no number of pages, when `REPORT_SECONDS` is unset.
pub const DEFAULT_REPORT_SECONDS: u32 = 45;

/// How the worker runs reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportSettings {
    /// Pages of a report that asks for none (one page takes [`PAGE_TIME`]).
    pub default_pages: u32,
}

impl Default for ReportSettings {
    fn default() -> Self {
        Self {
            default_pages: DEFAULT_REPORT_SECONDS,
        }
    }
}

impl ReportSettings {
    /// Reads `REPORT_SECONDS` (whole seconds, 1 to 600; default 45).
    pub fn from_env() -> Result<Self, queue_worker::Error> {
        Self::from_value(std::env::var("REPORT_SECONDS").ok().as_deref())
    }

    /// Like [`ReportSettings::from_env`], from the variable's value.
    ///
    /// ```
    /// use examples::report::ReportSettings;
    /// assert_eq!(ReportSettings::from_value(None).unwrap().default_pages, 45);
    /// assert_eq!(ReportSettings::from_value(Some("3")).unwrap().default_pages, 3);
    /// assert!(ReportSettings::from_value(Some("0")).is_err());
    /// ```
    pub fn from_value(value: Option<&str>) -> Result<Self, queue_worker::Error> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Self::default());
        };
        let secs = v
            .parse::<u32>()
            .ok()
            .filter(|s| (1..=MAX_PAGES).contains(s))
            .ok_or_else(|| queue_worker::Error::InvalidSetting {
                name: "REPORT_SECONDS",
                reason: format!("{v:?} is not a whole number of seconds from 1 to {MAX_PAGES}"),
            })?;
        Ok(Self {
            default_pages: secs,
        })
    }
}

/// Runs one report: a progress update per page; stops and hands the job back when asked.
///
/// Cancellation comes from the worker's shutdown (after `SHUTDOWN_TIMEOUT`) or the job's
/// timeout. The job then returns a retryable failure at once; at shutdown the worker turns
/// that into a hand-back to the front of the queue, where another worker starts it again
/// from page 1 (at-least-once: a report may be crunched twice, never lost).
pub async fn perform(
    job: ReportJob,
    ctx: JobContext,
    settings: ReportSettings,
) -> Result<Value, Failure> {
    let pages = job.pages.unwrap_or(settings.default_pages).max(1);
    let mut totals = Totals::default();
    for page in 1..=pages {
        progress(
            &ctx,
            percent(page - 1, pages),
            format!("crunching page {page}/{pages}"),
        )
        .await;
        tokio::select! {
            _ = ctx.cancelled() => {
                tracing::info!(job_id = %ctx.id(), page, pages, "report interrupted");
                return Err(Failure::retry(format!("interrupted at page {page}/{pages}")));
            }
            _ = tokio::time::sleep(PAGE_TIME) => {}
        }
        totals.add(page, rows_on_page(&job.title, page));
    }
    progress(&ctx, 100, "writing summary").await;
    Ok(result(&job.title, pages, &totals, ctx.attempt()))
}

/// Records progress; a Redis hiccup here is logged and the report goes on.
async fn progress(ctx: &JobContext, percent: u8, message: impl Into<String>) {
    if let Err(e) = ctx.progress(percent, message).await {
        tracing::warn!(job_id = %ctx.id(), error = %e, "could not record progress; carrying on");
    }
}

/// Percentage of `done` out of `total`, rounded down.
fn percent(done: u32, total: u32) -> u8 {
    u8::try_from(u64::from(done) * 100 / u64::from(total.max(1))).unwrap_or(100)
}

/// Running figures of a report.
#[derive(Debug, Default)]
struct Totals {
    rows: u64,
    busiest: (u32, u64),
}

impl Totals {
    fn add(&mut self, page: u32, rows: u64) {
        self.rows += rows;
        if rows > self.busiest.1 {
            self.busiest = (page, rows);
        }
    }
}

/// The made-up number of rows on a page: the same title always gives the same report.
fn rows_on_page(title: &str, page: u32) -> u64 {
    // FNV-1a: tiny and stable across Rust versions (unlike `DefaultHasher`).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in title.bytes().chain(page.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    1_000 + hash % 9_000
}

/// The stored result: a JSON summary for programs and the report's text for people.
fn result(title: &str, pages: u32, totals: &Totals, attempt: u32) -> Value {
    let average = totals.rows / u64::from(pages.max(1));
    let text = format!(
        "Report \"{title}\"\n  pages crunched: {pages}\n  rows: {}\n  busiest page: {} ({} rows)\n  average: {} rows a page",
        thousands(totals.rows),
        totals.busiest.0,
        thousands(totals.busiest.1),
        thousands(average),
    );
    json!({
        "summary": {
            "title": title,
            "pages": pages,
            "rows": totals.rows,
            "busiest_page": totals.busiest.0,
            "average_rows": average,
            "attempt": attempt,
        },
        "text": text,
    })
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_rises_to_100() {
        assert_eq!(percent(0, 8), 0);
        assert_eq!(percent(3, 8), 37);
        assert_eq!(percent(8, 8), 100);
        assert_eq!(percent(1, 0), 100);
    }

    #[test]
    fn reports_are_deterministic() {
        assert_eq!(rows_on_page("Q3", 1), rows_on_page("Q3", 1));
        assert!((1_000..10_000).contains(&rows_on_page("Q3", 2)));
    }

    #[test]
    fn the_result_has_a_summary_and_text() {
        let mut totals = Totals::default();
        totals.add(1, 1_200);
        totals.add(2, 9_000);
        let r = result("Q3", 2, &totals, 1);
        assert_eq!(r["summary"]["rows"], 10_200);
        assert_eq!(r["summary"]["busiest_page"], 2);
        let text = r["text"].as_str().unwrap();
        assert!(text.contains("Report \"Q3\""), "{text}");
        assert!(text.contains("rows: 10,200"), "{text}");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
