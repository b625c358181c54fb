//! The coordinator: runs the phases in order, then prints the report.

use crate::baseline::ping_phase;
use crate::ceiling::ceiling_phase;
use crate::drain::{Drain, drain_phase};
use crate::enqueue::enqueue_phase;
use crate::error::Result;
use crate::histogram::us;
use crate::noise::measured;
use crate::options::Options;
use crate::pickup::pickup_phase;
use crate::redis_benchmark::{REFERENCE_LPUSH_PER_S, redis_benchmark_phase};
use crate::report::{TARGETS, print_table, round, slowlog_json, stats_json};
use crate::target::Target;
use benches::{info, info_f64, load_average};
use queue_core::Client;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Bound on each call of the driving client (see `coordinator_main`).
pub(crate) const BULK_TIMEOUT: Duration = Duration::from_secs(30);
/// Fewest LPUSH + RPOP pairs of the ceiling phase (a small `--jobs` still measures it well).
const CEILING_MIN_PAIRS: u64 = 100_000;
/// Concurrency of the second drain, where connections and RSS are checked.
pub(crate) const HIGH_CONCURRENCY: usize = 100;

pub(crate) async fn coordinator_main(opts: &Options) -> Result<()> {
    let load_start = load_average();
    let target = Target::from_env(opts);
    let prefix = target.prefix(opts);
    // `push_bulk` sends all its 1,000-job chunks at once and bounds each by the client
    // timeout from that same start, so a bulk of 100,000 jobs that takes more than the
    // default 2 s in all (a loaded 2-core machine) fails although every chunk is progressing.
    // The driving client gets a longer bound; the workers keep the default.
    let config = target
        .config(&prefix)?
        .connection_name("loadtest-client")
        .timeout(BULK_TIMEOUT);
    let client = Client::connect(config).await?;
    let clear = || target.clear(&client, &prefix);
    clear().await?;
    // The server (in cluster mode: the master of the run's slot) that INFO describes.
    let redis_port = info_f64(
        &info(&mut client.raw_connection(), "server").await?,
        "tcp_port",
    );
    let padding = "x".repeat(opts.payload_bytes);
    let progress = |what: &str| {
        if !opts.json {
            eprintln!("loadtest: {what}…");
        }
    };

    let mut noise = Vec::new();
    let baseline = if opts.redis_benchmark && target.is_private_server() {
        progress("redis-benchmark -t lpush -P 16 (the host's baseline)");
        Some(
            measured(
                "redis_benchmark",
                &mut noise,
                redis_benchmark_phase(&client, redis_port as u16),
            )
            .await?,
        )
    } else {
        None
    };
    progress("PING round trips");
    let pings = measured("ping", &mut noise, ping_phase(&client, opts.ping_samples)).await?;
    progress("Redis's own ceiling (pipelined LPUSH + RPOP)");
    let ceiling_key = client.keys().queue("loadtest-ceiling");
    let ceiling = measured(
        "ceiling",
        &mut noise,
        ceiling_phase(&client, &ceiling_key, opts.jobs.max(CEILING_MIN_PAIRS)),
    )
    .await?;
    progress("sequential enqueues");
    let (enqueues, enqueue_handoffs) = measured(
        "enqueue",
        &mut noise,
        enqueue_phase(&client, opts, &padding),
    )
    .await?;
    clear().await?;
    progress("bulk enqueue and drain");
    let main = measured(
        "bulk_and_drain",
        &mut noise,
        drain_phase(
            &target,
            &client,
            opts,
            &padding,
            opts.processes,
            opts.concurrency,
            opts.slowlog,
        ),
    )
    .await?;
    clear().await?;
    let high = if opts.c100 {
        progress("drain at concurrency 100");
        let d = measured(
            "bulk_and_drain_c100",
            &mut noise,
            drain_phase(&target, &client, opts, &padding, 1, HIGH_CONCURRENCY, false),
        )
        .await?;
        clear().await?;
        Some(d)
    } else {
        None
    };
    progress("pickup latency");
    let (pickups, pickup_handoffs) = measured(
        "pickup",
        &mut noise,
        pickup_phase(&target, &client, opts, &padding),
    )
    .await?;
    clear().await?;
    let load_end = load_average();

    let ping = us(&pings, 0.5);
    let jobs = opts.jobs as f64;
    let mb = |kib: &[u64]| kib.iter().copied().max().unwrap_or(0) as f64 / 1024.0;
    let conns = |d: &Drain| d.connections.iter().map(Vec::len).max().unwrap_or(0);
    let mut out = Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_owned(), v);
    };
    put("jobs", json!(opts.jobs));
    put("concurrency", json!(opts.concurrency));
    put("processes", json!(opts.processes));
    put("worker_threads", json!(opts.worker_threads));
    if let Some(n) = opts.event_interval {
        put("event_interval", json!(n));
    }
    if let Some(cpus) = &opts.worker_cpus {
        put("worker_cpus", json!(cpus));
    }
    put("client_threads", json!(opts.client_threads));
    put("payload_bytes", json!(opts.payload_bytes));
    put("status_tracking", json!(opts.status));
    put("redis", json!(target.label()));
    put("key_prefix", json!(prefix));
    put("redis_port", json!(redis_port as u64));
    if let Some(b) = baseline {
        put("redis_benchmark_lpush_per_s", round(b, 0));
    }
    put("load_avg_1m_start", round(load_start, 2));
    put("load_avg_1m_end", round(load_end, 2));
    put("ping_rtt_us", round(ping, 1));
    put("redis_ceiling_jobs_per_s", round(ceiling, 0));
    put("ping_p99_us", round(us(&pings, 0.99), 1));
    for (name, q) in [("p50", 0.5), ("p99", 0.99), ("p999", 0.999)] {
        put(&format!("enqueue_{name}_us"), round(us(&enqueues, q), 1));
        put(
            &format!("enqueue_{name}_ratio"),
            round(us(&enqueues, q) / ping, 2),
        );
    }
    put("bulk_enqueue_jobs_per_s", round(jobs / main.bulk_secs, 0));
    put(
        "bulk_redis_cpu_us_per_job",
        round(main.bulk_cpu_us_per_job, 2),
    );
    put("redis_bytes_per_job", round(main.bulk_bytes_per_job, 0));
    put(
        "redis_bytes_per_finished_job",
        round(main.finished_bytes_per_job, 0),
    );
    put("drain_jobs_per_s", round(jobs / main.drain_secs, 0));
    put("drain_seconds", round(main.drain_secs, 3));
    put("drain_started_unix_ms", round(main.started_unix_ms, 0));
    put("drain_ended_unix_ms", round(main.ended_unix_ms, 0));
    put(
        "drain_fraction_of_ceiling",
        round(jobs / main.drain_secs / ceiling, 3),
    );
    put("redis_cpu_us_per_job", round(main.drain_cpu_us_per_job, 2));
    put(
        "worker_cpu_us_per_job",
        round(main.worker_cpu_us_per_job, 2),
    );
    for (name, q) in [("p50", 0.5), ("p99", 0.99)] {
        put(&format!("pickup_{name}_us"), round(us(&pickups, q), 1));
        put(
            &format!("pickup_{name}_ratio"),
            round(us(&pickups, q) / ping, 2),
        );
    }
    put("redis_connections", json!(conns(&main)));
    put("worker_peak_rss_mb", round(mb(&main.peak_rss_kib), 1));
    if let Some(h) = &high {
        put("drain_jobs_per_s_c100", round(jobs / h.drain_secs, 0));
        put(
            "drain_fraction_of_ceiling_c100",
            round(jobs / h.drain_secs / ceiling, 3),
        );
        put(
            "redis_cpu_us_per_job_c100",
            round(h.drain_cpu_us_per_job, 2),
        );
        put(
            "worker_cpu_us_per_job_c100",
            round(h.worker_cpu_us_per_job, 2),
        );
        put("redis_connections_c100", json!(conns(h)));
        put("worker_peak_rss_mb_c100", round(mb(&h.peak_rss_kib), 1));
    }
    // Throughput targets follow the host: scaled by its same-run baseline when measured.
    let scale = baseline.map_or(1.0, |b| b / REFERENCE_LPUSH_PER_S);
    put("target_scale", round(scale, 3));
    let mut met = Map::new();
    for t in TARGETS {
        if let Some(v) = out.get(t.metric).and_then(Value::as_f64) {
            let ok = if t.at_most {
                v <= t.bound_at(scale)
            } else {
                v >= t.bound_at(scale)
            };
            met.insert(t.metric.to_owned(), json!(ok));
        }
    }
    if opts.handoffs {
        let mut h = Map::new();
        let mut put = |k: &str, c: &Option<crate::handoffs::Counts>, per: f64| {
            if let Some(c) = c {
                h.insert(k.to_owned(), c.json_per(per));
            }
        };
        put("worker_per_job", &main.handoffs, jobs);
        put(
            "worker_per_job_c100",
            &high.as_ref().and_then(|d| d.handoffs.clone()),
            jobs,
        );
        put(
            "client_per_enqueue",
            &enqueue_handoffs,
            opts.enqueue_samples as f64,
        );
        put(
            "process_per_pickup",
            &pickup_handoffs,
            opts.pickup_samples as f64,
        );
        out.insert("handoffs".into(), Value::Object(h));
    }
    let connection_names = main.connections.first().cloned().unwrap_or_default();
    if opts.profile || opts.slowlog {
        let mut p = Map::new();
        p.insert(
            "bulk_commandstats".into(),
            stats_json(&main.bulk_stats, jobs),
        );
        p.insert(
            "drain_commandstats".into(),
            stats_json(&main.drain_stats, jobs),
        );
        if let Some(h) = &high {
            p.insert(
                "drain_commandstats_c100".into(),
                stats_json(&h.drain_stats, jobs),
            );
        }
        if let Some(rows) = &main.slowlog {
            p.insert("drain_slowlog".into(), slowlog_json(rows, jobs));
        }
        p.insert("worker_connections".into(), json!(connection_names));
        out.insert("profile".into(), Value::Object(p));
    }
    out.insert("targets_met".into(), Value::Object(met.clone()));
    let unreliable: Vec<&str> = noise
        .iter()
        .filter(|n| n.unreliable())
        .map(|n| n.name)
        .collect();
    out.insert(
        "noise".into(),
        Value::Object(
            noise
                .iter()
                .map(|n| (n.name.to_owned(), n.json()))
                .collect(),
        ),
    );
    out.insert("unreliable_phases".into(), json!(unreliable));

    if opts.json {
        println!("{}", Value::Object(out));
        return Ok(());
    }
    print_table(opts, scale, &out, &met, &connection_names, &main);
    Ok(())
}
