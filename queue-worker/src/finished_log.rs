//! One log line per finished job attempt, folded into per-second summaries under load.
//!
//! In each one-second window, the first [`LINES_PER_WINDOW`] finished attempts get a line
//! each:
//!
//! ```text
//! at=info target=queue_worker::finished msg="job finished" job_id=… class=Resize outcome=succeeded duration_ms=12.4 count#jobs.succeeded=1 sample#jobs.duration_ms=12.4
//! ```
//!
//! The rest are only counted, and when the window ends one summary line covers them:
//!
//! ```text
//! at=info target=queue_worker::finished msg="jobs finished" count#jobs.succeeded=48211 count#jobs.failed=3 count#jobs.dead=0 sample#jobs.duration_ms.p50=0.8 sample#jobs.duration_ms.p95=2.1 sample#jobs.duration_ms.p99=4.0 sample#jobs.duration_ms.max=31.2
//! ```
//!
//! So a quiet worker logs every job, and a drain of 50,000 jobs a second logs at most
//! `LINES_PER_WINDOW + 1` lines per window; since a summary is written when the next window
//! opens, any sliding second holds at most twice that, 8 lines. Every attempt is counted on exactly one line, so
//! the platform's log metrics, which add up `count#` values and read `sample#` ones, see the
//! true totals. The window starts at the first attempt after a quiet spell; the worker's
//! loop closes it every second, and at shutdown.
//!
//! Quantiles come from a uniform sample of at most [`MAX_SAMPLES`] durations per window (a
//! reservoir), so memory stays bounded whatever the rate; the maximum is exact.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Attempts logged one by one in each window before the rest are folded into the summary.
pub const LINES_PER_WINDOW: usize = 3;
/// Length of a window.
pub const WINDOW: Duration = Duration::from_secs(1);
/// Durations kept per window for the summary's quantiles.
pub const MAX_SAMPLES: usize = 4096;
/// Target of the finished-job lines (filter them with `RUST_LOG=queue_worker::finished=warn`).
pub const TARGET: &str = "queue_worker::finished";

/// How an attempt ended, as the finished-job lines and the metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    Succeeded,
    /// Failed, and will be retried.
    Failed,
    /// Failed, and went to the dead set.
    Dead,
}

impl Ended {
    fn index(self) -> usize {
        match self {
            Ended::Succeeded => 0,
            Ended::Failed => 1,
            Ended::Dead => 2,
        }
    }
}

/// The finished-job log of one worker process.
#[derive(Debug, Default)]
pub(crate) struct FinishedLog {
    window: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    start: Option<Instant>,
    lines: usize,
    folded: [u64; 3],
    seen: u64,
    samples: Vec<f64>,
    max_ms: f64,
}

/// What a closed window folded.
struct Summary {
    counts: [u64; 3],
    samples: Vec<f64>,
    max_ms: f64,
}

impl Window {
    /// Closes the window if it is over at `now`; its summary when it folded anything.
    fn roll(&mut self, now: Instant) -> Option<Summary> {
        let start = *self.start.get_or_insert(now);
        if now.saturating_duration_since(start) < WINDOW {
            return None;
        }
        let old = std::mem::take(self);
        self.start = Some(now);
        (old.seen > 0).then_some(Summary {
            counts: old.folded,
            samples: old.samples,
            max_ms: old.max_ms,
        })
    }

    fn fold(&mut self, ended: Ended, ms: f64) {
        self.folded[ended.index()] += 1;
        self.seen += 1;
        self.max_ms = self.max_ms.max(ms);
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(ms);
        } else {
            // Reservoir sampling: each of the `seen` durations is kept with equal chance.
            let slot = fastrand::u64(0..self.seen);
            if let Ok(slot) = usize::try_from(slot)
                && slot < MAX_SAMPLES
            {
                self.samples[slot] = ms;
            }
        }
    }
}

fn lock(m: &Mutex<Window>) -> std::sync::MutexGuard<'_, Window> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FinishedLog {
    /// Records an attempt of job `jid` of `class` that ended as `ended` after `took`.
    pub(crate) fn record(&self, jid: &str, class: &str, ended: Ended, took: Duration) {
        self.record_at(Instant::now(), jid, class, ended, took);
    }

    fn record_at(&self, now: Instant, jid: &str, class: &str, ended: Ended, took: Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        let (summary, own_line) = {
            let mut w = lock(&self.window);
            let summary = w.roll(now);
            let own_line = w.lines < LINES_PER_WINDOW;
            if own_line {
                w.lines += 1;
            } else {
                w.fold(ended, ms);
            }
            (summary, own_line)
        };
        if let Some(summary) = summary {
            summary.log();
        }
        if own_line {
            log_one(jid, crate::retry::for_log(class), ended, ms);
        }
    }

    /// Closes the window if it is over at `now`, logging its summary.
    fn flush_at(&self, now: Instant) {
        let summary = lock(&self.window).roll(now);
        if let Some(summary) = summary {
            summary.log();
        }
    }

    /// Closes the window now, however young (at shutdown).
    pub(crate) fn flush(&self) {
        let now = Instant::now();
        let summary = {
            let mut w = lock(&self.window);
            w.start = w.start.map(|_| now - WINDOW);
            w.roll(now)
        };
        if let Some(summary) = summary {
            summary.log();
        }
    }

    /// Closes each window when it is over, until `stop`; then closes the last one.
    pub(crate) async fn run(log: Arc<crate::shared::Shared>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(WINDOW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => log.extensions.finished.flush_at(Instant::now()),
            }
        }
        log.extensions.finished.flush();
    }
}

fn log_one(jid: &str, class: &str, ended: Ended, ms: f64) {
    let ms = round(ms);
    match ended {
        Ended::Succeeded => {
            tracing::info!(target: TARGET, job_id = jid, class, outcome = "succeeded",
            duration_ms = ms, "count#jobs.succeeded" = 1, "sample#jobs.duration_ms" = ms, "job finished")
        }
        Ended::Failed => tracing::info!(target: TARGET, job_id = jid, class, outcome = "failed",
            duration_ms = ms, "count#jobs.failed" = 1, "sample#jobs.duration_ms" = ms, "job finished"),
        Ended::Dead => tracing::info!(target: TARGET, job_id = jid, class, outcome = "dead",
            duration_ms = ms, "count#jobs.dead" = 1, "sample#jobs.duration_ms" = ms, "job finished"),
    }
}

/// Milliseconds to one decimal: finer is noise in a log line.
fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

impl Summary {
    fn log(mut self) {
        self.samples.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let n = self.samples.len();
            let i = ((n as f64 * p).ceil() as usize).clamp(1, n.max(1)) - 1;
            round(self.samples.get(i).copied().unwrap_or(0.0))
        };
        let [succeeded, failed, dead] = self.counts;
        // An identifier first: a leading string literal would be read as the message.
        tracing::info!(target: TARGET,
            jobs = succeeded + failed + dead,
            "count#jobs.succeeded" = succeeded,
            "count#jobs.failed" = failed,
            "count#jobs.dead" = dead,
            "sample#jobs.duration_ms.p50" = q(0.50),
            "sample#jobs.duration_ms.p95" = q(0.95),
            "sample#jobs.duration_ms.p99" = q(0.99),
            "sample#jobs.duration_ms.max" = round(self.max_ms),
            "jobs finished");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::io::Write;

    /// Collects formatted lines for a test subscriber.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Lines logged while `f` runs, in the platform's logfmt.
    fn captured(f: impl FnOnce()) -> Vec<String> {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(queue_core::platform::Logfmt)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        line.split(' ')
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
    }

    #[test]
    fn a_quiet_worker_logs_each_job() {
        let log = FinishedLog::default();
        let t0 = Instant::now();
        let lines = captured(|| {
            log.record_at(
                t0,
                "j1",
                "Resize",
                Ended::Succeeded,
                Duration::from_millis(12),
            );
            log.record_at(
                t0 + Duration::from_secs(5),
                "j2",
                "Resize",
                Ended::Dead,
                Duration::from_millis(3),
            );
            log.flush_at(t0 + Duration::from_secs(10));
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert_eq!(field(&lines[0], "job_id"), Some("j1"));
        assert_eq!(field(&lines[0], "count#jobs.succeeded"), Some("1"));
        assert_eq!(field(&lines[0], "duration_ms"), Some("12.0"));
        assert_eq!(field(&lines[1], "outcome"), Some("dead"));
        assert_eq!(field(&lines[1], "count#jobs.dead"), Some("1"));
    }

    /// 100,000 attempts over two seconds (50,000 a second, by a synthetic clock): each
    /// second logs at most `LINES_PER_WINDOW` + 1 lines, and the `count#` values add up to
    /// every attempt.
    #[test]
    fn a_drain_of_100_000_jobs_logs_under_10_lines_a_second() {
        let log = FinishedLog::default();
        let t0 = Instant::now();
        const JOBS: u64 = 100_000;
        let step = Duration::from_secs(2) / JOBS as u32;
        let mut stamps = Vec::new();
        let lines = captured(|| {
            for n in 0..JOBS {
                let at = t0 + step * n as u32;
                let ended = if n % 1000 == 0 {
                    Ended::Failed
                } else {
                    Ended::Succeeded
                };
                log.record_at(
                    at,
                    &format!("j{n}"),
                    "Noop",
                    ended,
                    Duration::from_micros(n % 2000),
                );
                stamps.push(at);
            }
            log.flush_at(t0 + Duration::from_secs(3));
        });
        // Two windows: each its own lines, then its summary (written by the first record of
        // the next window, or by the final flush).
        let summaries: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("msg=\"jobs finished\""))
            .collect();
        let singles = lines.len() - summaries.len();
        assert_eq!(summaries.len(), 2, "{lines:#?}");
        assert_eq!(singles, 2 * LINES_PER_WINDOW);
        assert!(lines.len() / 2 < 10);
        let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
        for line in &lines {
            for key in [
                "count#jobs.succeeded",
                "count#jobs.failed",
                "count#jobs.dead",
            ] {
                if let Some(v) = field(line, key) {
                    *totals.entry(key).or_default() += v.parse::<u64>().unwrap();
                }
            }
        }
        assert_eq!(totals.values().sum::<u64>(), JOBS);
        assert_eq!(totals["count#jobs.failed"], JOBS / 1000);
        let p50: f64 = field(summaries[0], "sample#jobs.duration_ms.p50")
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.7..1.3).contains(&p50), "p50 {p50}");
        let max: f64 = field(summaries[0], "sample#jobs.duration_ms.max")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(max, 2.0);
    }
}
