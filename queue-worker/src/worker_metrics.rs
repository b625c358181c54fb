//! This process's job metrics, in the Prometheus text format (`prometheus-client`):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `queue_worker_jobs_processed_total` | counter: attempts that ended (succeeded or failed) | `class` |
//! | `queue_worker_jobs_failed_total` | counter: failed attempts | `class` |
//! | `queue_worker_jobs_retried_total` | counter: failed attempts sent to the retry set | `class` |
//! | `queue_worker_jobs_dead_total` | counter: failed attempts sent to the dead set | `class` |
//! | `queue_worker_job_duration_seconds` | histogram: attempt durations | `class` |
//! | `queue_worker_jobs_in_flight` | gauge: attempts running now | |
//!
//! Only classes this worker registered get a label value (a job of an unknown class never
//! reaches a runner), so the label set stays as small as the app's list of job types.
//! Attempts handed back at a shutdown are not counted: they did not end.
//!
//! Read by [`RunningWorker::metrics_text`](crate::RunningWorker::metrics_text), and over
//! HTTP from the listener `WORKER_METRICS_ADDR` starts (`metrics_listener.rs`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

use crate::finished_log::Ended;

type Class = [(&'static str, String); 1];

/// Upper bounds of the duration buckets: 1 ms to about 9 minutes, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// The metrics of one worker process.
#[derive(Debug)]
pub(crate) struct WorkerMetrics {
    registry: Registry,
    processed: Family<Class, Counter>,
    failed: Family<Class, Counter>,
    retried: Family<Class, Counter>,
    dead: Family<Class, Counter>,
    duration: Family<Class, Histogram>,
    in_flight: Gauge,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        let processed = Family::<Class, Counter>::default();
        let failed = Family::<Class, Counter>::default();
        let retried = Family::<Class, Counter>::default();
        let dead = Family::<Class, Counter>::default();
        let duration = Family::<Class, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        let in_flight = Gauge::default();
        let mut registry = Registry::with_prefix("queue_worker");
        registry.register(
            "jobs_processed",
            "Job attempts that ended, succeeded or failed",
            processed.clone(),
        );
        registry.register("jobs_failed", "Job attempts that failed", failed.clone());
        registry.register(
            "jobs_retried",
            "Failed job attempts sent to the retry set",
            retried.clone(),
        );
        registry.register(
            "jobs_dead",
            "Failed job attempts sent to the dead set",
            dead.clone(),
        );
        registry.register_with_unit(
            "job_duration",
            "Duration of job attempts",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "jobs_in_flight",
            "Job attempts running now",
            in_flight.clone(),
        );
        Self {
            registry,
            processed,
            failed,
            retried,
            dead,
            duration,
            in_flight,
        }
    }
}

impl WorkerMetrics {
    /// An attempt started.
    pub(crate) fn started(&self) {
        self.in_flight.inc();
    }

    /// An attempt that started stopped running (any outcome, handed back too).
    pub(crate) fn stopped(&self) {
        self.in_flight.dec();
    }

    /// An attempt of `class` ended as `ended` after `took`.
    pub(crate) fn ended(&self, class: &str, ended: Ended, took: Duration) {
        let label = [("class", class.to_owned())];
        self.processed.get_or_create(&label).inc();
        self.duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        match ended {
            Ended::Succeeded => {}
            Ended::Failed => {
                self.failed.get_or_create(&label).inc();
                self.retried.get_or_create(&label).inc();
            }
            Ended::Dead => {
                self.failed.get_or_create(&label).inc();
                self.dead.get_or_create(&label).inc();
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_class_in_prometheus_text() {
        let m = WorkerMetrics::default();
        m.started();
        m.ended("Resize", Ended::Succeeded, Duration::from_millis(3));
        m.ended("Resize", Ended::Failed, Duration::from_millis(5));
        m.ended("Mail", Ended::Dead, Duration::from_secs(2));
        let text = m.text();
        for line in [
            r#"queue_worker_jobs_processed_total{class="Resize"} 2"#,
            r#"queue_worker_jobs_failed_total{class="Resize"} 1"#,
            r#"queue_worker_jobs_retried_total{class="Resize"} 1"#,
            r#"queue_worker_jobs_dead_total{class="Mail"} 1"#,
            r#"queue_worker_job_duration_seconds_count{class="Mail"} 1"#,
            r#"queue_worker_job_duration_seconds_bucket{le="0.004",class="Resize"} 1"#,
            "queue_worker_jobs_in_flight 1",
            "# TYPE queue_worker_job_duration_seconds histogram",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
        assert!(!text.contains(r#"queue_worker_jobs_dead_total{class="Resize"}"#));
    }
}
