//! The report: targets, JSON helpers and the table.

use crate::drain::Drain;
use crate::options::Options;
use crate::slowlog::SlowRow;
use benches::CommandStats;
use serde_json::{Map, Value, json};

/// A target of issue 16: metric, comparison, bound.
pub(crate) struct Target {
    pub(crate) metric: &'static str,
    pub(crate) at_most: bool,
    pub(crate) bound: f64,
    /// A throughput, which a host slower or faster than the reference scales by its
    /// `redis-benchmark` baseline (`--redis-benchmark`).
    pub(crate) scaled: bool,
}

impl Target {
    /// The bound on a host whose baseline is `scale` times the reference's.
    pub(crate) fn bound_at(&self, scale: f64) -> f64 {
        if self.scaled {
            self.bound * scale
        } else {
            self.bound
        }
    }
}

/// Issue 16's targets that `loadtest` measures: default settings, reliable fetch and status
/// tracking on, one worker process at concurrency 10 (the web process's connections and a
/// finished record's bytes in a status store redesign are measured elsewhere).
pub(crate) const TARGETS: &[Target] = &[
    Target {
        metric: "drain_jobs_per_s",
        at_most: false,
        bound: 100_000.0,
        scaled: true,
    },
    Target {
        metric: "redis_cpu_us_per_job",
        at_most: true,
        bound: 7.0,
        scaled: false,
    },
    Target {
        metric: "bulk_enqueue_jobs_per_s",
        at_most: false,
        bound: 250_000.0,
        scaled: true,
    },
    Target {
        metric: "enqueue_p50_ratio",
        at_most: true,
        bound: 1.5,
        scaled: false,
    },
    Target {
        metric: "enqueue_p99_us",
        at_most: true,
        bound: 250.0,
        scaled: false,
    },
    Target {
        metric: "pickup_p50_us",
        at_most: true,
        bound: 300.0,
        scaled: false,
    },
    Target {
        metric: "pickup_p99_us",
        at_most: true,
        bound: 1_000.0,
        scaled: false,
    },
    Target {
        metric: "redis_bytes_per_job",
        at_most: true,
        bound: 250.0,
        scaled: false,
    },
    Target {
        metric: "redis_bytes_per_finished_job",
        at_most: true,
        bound: 120.0,
        scaled: false,
    },
    Target {
        metric: "worker_peak_rss_mb_c100",
        at_most: true,
        bound: 20.0,
        scaled: false,
    },
    Target {
        metric: "redis_connections",
        at_most: true,
        bound: 1.0,
        scaled: false,
    },
    Target {
        metric: "redis_connections_c100",
        at_most: true,
        bound: 1.0,
        scaled: false,
    },
];

pub(crate) fn round(x: f64, digits: i32) -> Value {
    let p = 10f64.powi(digits);
    json!((x * p).round() / p)
}

pub(crate) fn stats_json(stats: &CommandStats, jobs: f64) -> Value {
    let mut rows: Vec<_> = stats.0.iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.1.usec));
    let mut out = Map::new();
    for (name, s) in rows {
        out.insert(
            name.clone(),
            json!({
                "calls_per_job": round(s.calls as f64 / jobs, 4),
                "usec_per_job": round(s.usec as f64 / jobs, 3),
            }),
        );
    }
    Value::Object(out)
}

pub(crate) fn slowlog_json(rows: &[SlowRow], jobs: f64) -> Value {
    let mut out = Map::new();
    for r in rows {
        out.insert(
            r.name.clone(),
            json!({
                "calls": r.calls,
                "calls_per_job": round(r.calls as f64 / jobs, 4),
                "usec_per_call": round(r.usec as f64 / r.calls.max(1) as f64, 2),
                "usec_per_job": round(r.usec as f64 / jobs, 3),
                "jobs_per_call": r.jobs.map(|j| round(j as f64 / r.calls.max(1) as f64, 2)),
            }),
        );
    }
    Value::Object(out)
}

pub(crate) fn print_table(
    opts: &Options,
    scale: f64,
    out: &Map<String, Value>,
    met: &Map<String, Value>,
    connection_names: &[String],
    main: &Drain,
) {
    println!(
        "\nloadtest: {} jobs, {} worker process(es) × concurrency {}, payload {} B, status tracking {}",
        opts.jobs,
        opts.processes,
        opts.concurrency,
        opts.payload_bytes,
        if opts.status { "on" } else { "off" }
    );
    println!("{:<28} {:>14}   target", "metric", "value");
    for (k, v) in out {
        if matches!(
            k.as_str(),
            "profile" | "targets_met" | "noise" | "unreliable_phases" | "handoffs"
        ) {
            continue;
        }
        let target = TARGETS.iter().find(|t| t.metric == k).map(|t| {
            let ok = met.get(k.as_str()).and_then(Value::as_bool) == Some(true);
            format!(
                "{} {} {}",
                if t.at_most { "≤" } else { "≥" },
                t.bound_at(scale),
                if ok { "met" } else { "NOT MET" }
            )
        });
        println!(
            "{k:<28} {:>14}   {}",
            v.to_string(),
            target.unwrap_or_default()
        );
    }
    if let Some(Value::Object(phases)) = out.get("noise") {
        println!("\nnoise per phase (steal above 5% makes a phase unreliable):");
        for (name, n) in phases {
            println!(
                "  {name:<22} {:>8} s   steal {:>6} %   busy {:>6} %{}",
                n["seconds"],
                n["steal_pct"],
                n["busy_pct"],
                if n["unreliable"] == json!(true) {
                    "   UNRELIABLE"
                } else {
                    ""
                }
            );
        }
    }
    if let Some(Value::Object(h)) = out.get("handoffs") {
        println!("\nhand-offs (perf stat, per job / enqueue / pickup):");
        for (window, counts) in h {
            println!("  {window:<22} {counts}");
        }
    }
    println!(
        "worker connections: {}",
        if connection_names.is_empty() {
            "-".to_owned()
        } else {
            connection_names.join(", ")
        }
    );
    if opts.profile || opts.slowlog {
        let jobs = opts.jobs as f64;
        for (title, stats) in [
            ("bulk enqueue", &main.bulk_stats),
            ("drain", &main.drain_stats),
        ] {
            println!("\nINFO commandstats, {title}, per job (script time includes its commands):");
            let mut rows: Vec<_> = stats.0.iter().collect();
            rows.sort_by_key(|r| std::cmp::Reverse(r.1.usec));
            for (name, s) in rows {
                println!(
                    "  {name:<16} calls/job {:>8.4}   µs/job {:>8.3}",
                    s.calls as f64 / jobs,
                    s.usec as f64 / jobs
                );
            }
        }
        if let Some(rows) = &main.slowlog {
            println!("\nSLOWLOG of the drain (execution time only, by script):");
            for r in rows {
                println!(
                    "  {:<16} calls {:>8}  calls/job {:>7.4}  µs/call {:>7.2}  µs/job {:>7.3}  jobs/call {}",
                    r.name,
                    r.calls,
                    r.calls as f64 / jobs,
                    r.usec as f64 / r.calls.max(1) as f64,
                    r.usec as f64 / jobs,
                    r.jobs
                        .map(|j| format!("{:.2}", j as f64 / r.calls.max(1) as f64))
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
    }
}
