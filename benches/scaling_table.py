#!/usr/bin/env python3
"""Tables of benches/scaling.sh's output: median (range) per series and process count.

    python3 benches/scaling_table.py OUT_DIR

Per run: drain jobs/s (spread: the three apps' jobs over the union of their drain windows,
so a late start counts against it), Redis CPU µs/job at the app's master (spread: mean of
the three masters; queues: the sum over the three masters of one app whose queues are
spread), Redis CPU share of one core (µs/job × jobs/s), worker CPU (cores), the
loadtest's own ceiling, redis-benchmark LPUSH -P 16, steal (worst drain phase, and whole
run), 1-minute load at the start.
"""
import json, statistics, sys
from pathlib import Path


def run_figures(r):
    apps = r["apps"]
    jobs = sum(a["jobs"] for a in apps)
    start = min(a["drain_started_unix_ms"] for a in apps)
    end = max(a["drain_ended_unix_ms"] for a in apps)
    rate = jobs / ((end - start) / 1e3)
    cpu = statistics.mean(a["redis_cpu_us_per_job"] for a in apps)
    # Each master's CPU share: its µs per job × its own drain rate.
    shares = [a["redis_cpu_us_per_job"] * a["drain_jobs_per_s"] / 1e6 for a in apps]
    workers = sum(a["worker_cpu_us_per_job"] * a["drain_jobs_per_s"] / 1e6 for a in apps)
    return {
        "rate": rate,
        "cpu": cpu,
        "share": max(shares),
        "workers": workers,
        "ceiling": statistics.mean(a["redis_ceiling_jobs_per_s"] for a in apps),
        "bench": r["redis_benchmark_lpush_p16"],
        "steal": max(a["noise"]["bulk_and_drain"]["steal_pct"] or 0 for a in apps),
        "busy": max(a["noise"]["bulk_and_drain"]["busy_pct"] or 0 for a in apps),
        "run_steal": r["run_steal_pct"],
        "load": r["load_1m_start"],
        "skew_ms": max(a["drain_started_unix_ms"] for a in apps) - start,
        "fraction": statistics.mean(a["drain_fraction_of_ceiling"] for a in apps),
    }


def fmt(values, digits=0):
    m = statistics.median(values)
    f = lambda v: f"{v:,.{digits}f}"
    if len(values) == 1:
        return f(m)
    return f"{f(m)} ({f(min(values))}–{f(max(values))})"


out = Path(sys.argv[1])
for series in ["single", "cluster", "spread", "queues"]:
    path = out / f"{series}.jsonl"
    if not path.exists():
        continue
    rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
    by_n = {}
    for r in rows:
        by_n.setdefault(r["processes_per_app"], []).append(run_figures(r))
    print(f"\n### {series}\n")
    apps = len(rows[0]["apps"])
    # queues: one app over three masters; its INFO figures are the three masters' sum.
    where = "all three masters" if series == "queues" else "busiest master"
    print(f"| worker processes | drain jobs/s | Redis CPU µs/job | Redis CPU, cores ({where}) | worker CPU, cores | loadtest ceiling jobs/s | redis-benchmark LPUSH -P16 /s | steal % max, drain / run | busy % drain | load 1m | drain start skew ms |")
    print("|" + "---|" * 11)
    for n in sorted(by_n):
        fs = by_n[n]
        col = lambda k, d=0: fmt([f[k] for f in fs], d)
        label = f"{n}" if apps == 1 else f"{apps}×{n} = {apps * n}"
        runs = "" if len(fs) == 3 else f" ({len(fs)} runs)"
        print(f"| {label}{runs} | {col('rate')} | {col('cpu', 1)} | {col('share', 2)} | {col('workers', 2)} | {col('ceiling')} | {col('bench')} | {max(f['steal'] for f in fs):.1f} / {max(f['run_steal'] or 0 for f in fs):.1f} | {col('busy')} | {col('load', 2)} | {col('skew_ms') if apps > 1 else '-'} |")
