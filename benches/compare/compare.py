#!/usr/bin/env python3
"""Runs the same no-op workload through Sidekiq, BullMQ and this project against one
private redis-server, and writes one JSON file (python3 standard library only).

Started by benches/compare/run.sh, which installs the three sides first:

    python3 benches/compare/compare.py --ours PATH/TO/compare [--runs 3] [--jobs 20000]
        [--singles 2000] [--pickups 200] [--concurrency 10] [--payload-bytes 64]
        [--out docs/compare/compare.json]

Each system has a driver (sidekiq/driver.rb, bullmq/driver.js, the `compare` binary) that
plays one role per process and speaks the same lines on stdin/stdout, so that everything
Redis-side is measured here, from outside, the same way for the three:

- single: sequential single enqueues, timed by the driver (median, p99), and the Redis
  commands and CPU they cost;
- bulk: the jobs pushed with each system's bulk call, timed by the driver; `INFO memory`
  used_memory before and after gives the bytes each queued job holds;
- drain: a worker at concurrency C whose C slots hold gate jobs (so it is connected and
  warm), then released: jobs/s from the first to the last no-op handler end, Redis CPU
  (`INFO cpu`) and commands (`INFO commandstats`) per job from the release until the
  system has settled (its acks landed), the worker process's connections (`CLIENT LIST`
  matched to its sockets), CPU and peak RSS;
- pickup: an idle worker and a client in one process: one enqueue, the time until the
  handler starts.

Between systems: FLUSHALL and CONFIG RESETSTAT. Every phase records CPU steal and busy
share from /proc/stat and the load average. Each run starts with `redis-benchmark -t lpush
-P 16 -n 1000000 -q` on the same server, the same-run baseline. The systems' order rotates
from run to run, so that none is always first or last. Medians over the runs are written
beside every run's figures.
"""

import argparse
import json
import os
import platform
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Longest wait for one control line from a driver (a drain of 20,000 jobs through the
# slowest system takes a few seconds; a stuck one fails the run instead of hanging it).
LINE_TIMEOUT_S = 300
# Longest wait for a system to settle after its last handler ended (its last acks).
SETTLE_TIMEOUT_S = 30
# Steal above which a phase's figures should not be quoted (as in the loadtest).
UNRELIABLE_STEAL_PCT = 5.0
# A run, and each system in it, starts once the CPU was this idle over this window
# (docs/benchmarks.md, "Noise"), or after --quiet-wait seconds, whichever comes first.
QUIET_IDLE_PCT = 85.0
QUIET_WINDOW_S = 3.0


# --- A minimal RESP2 client: the orchestrator's one connection ---------------------------


class Redis:
    """One connection; counts the commands it sends, so that phases can subtract them."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.file = self.sock.makefile("rb")
        self.sent = Counter()

    def call(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(parts))
        name = str(args[0]).lower()
        if name in ("client", "config") and len(args) > 1:
            name = f"{name}|{str(args[1]).lower()}"
        self.sent[name] += 1
        return self._reply()

    def _reply(self):
        line = self.file.readline()
        if not line:
            raise ConnectionError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.file.read(n + 2)[:-2]
            return data.decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"unexpected reply {line!r}")


def parse_info(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            k, v = line.split(":", 1)
            out[k] = v
    return out


def command_calls(info):
    """cmdstat_NAME -> calls (commands run inside scripts are counted too)."""
    calls = {}
    for k, v in info.items():
        if k.startswith("cmdstat_"):
            fields = dict(f.split("=", 1) for f in v.split(","))
            calls[k[len("cmdstat_"):]] = int(fields["calls"])
    return calls


class Snapshot:
    def __init__(self, redis):
        # The mark is taken before the INFO is sent: that INFO is counted in its own reply's
        # successor, i.e. it belongs to the phase that this snapshot opens.
        self.mark = Counter(redis.sent)
        info = parse_info(redis.call("INFO", "all"))
        self.cpu = float(info["used_cpu_sys"]) + float(info["used_cpu_user"])
        self.memory = int(info["used_memory"])
        self.calls = command_calls(info)
        self.at = time.monotonic()


def phase_stats(before, after, jobs):
    """Redis CPU, memory and commands per job between two snapshots, less this script's own."""
    ours = after.mark - before.mark
    calls = {}
    for name in set(before.calls) | set(after.calls):
        n = after.calls.get(name, 0) - before.calls.get(name, 0) - ours.get(name, 0)
        if n > 0:
            calls[name] = n
    total = sum(calls.values())
    scripts = sum(n for name, n in calls.items() if name in ("eval", "evalsha", "fcall", "eval_ro", "evalsha_ro"))
    return {
        "redis_cpu_us_per_job": (after.cpu - before.cpu) * 1e6 / jobs,
        "memory_bytes_per_job": (after.memory - before.memory) / jobs,
        "commands_per_job": total / jobs,
        "script_calls_per_job": scripts / jobs,
        "commandstats_per_job": {k: round(v / jobs, 4) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])},
    }


# --- The machine: noise, processes, sockets ----------------------------------------------


def cpu_ticks():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    fields += [0] * (10 - len(fields))
    # guest and guest_nice are already in user and nice.
    return {"total": sum(fields[:8]), "idle": fields[3] + fields[4], "steal": fields[7]}


def load_1m():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def builds_running():
    """Compiler and linker processes on the machine now (another session's build)."""
    n = 0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    n += f.read().strip() in ("rustc", "cc", "cc1", "ld", "cargo", "clippy-driver")
            except OSError:
                continue
    return n


class Noise:
    def __init__(self):
        self.ticks = cpu_ticks()
        self.load = load_1m()
        self.builds = builds_running()
        self.at = time.monotonic()

    def end(self):
        t = cpu_ticks()
        total = t["total"] - self.ticks["total"]
        pct = lambda n: round(100.0 * n / total, 2) if total > 0 else None
        steal = pct(t["steal"] - self.ticks["steal"])
        return {
            "seconds": round(time.monotonic() - self.at, 3),
            "steal_pct": steal,
            "busy_pct": pct(total - (t["idle"] - self.ticks["idle"])),
            "load_1m_start": self.load,
            "load_1m_end": load_1m(),
            # Busy share counts this run's own processes too; builds beside it are the noise.
            "builds_running": max(self.builds, builds_running()),
            "unreliable": steal is not None and steal > UNRELIABLE_STEAL_PCT,
        }


def wait_quiet(limit_s):
    """Waits until the CPU was at least QUIET_IDLE_PCT idle over QUIET_WINDOW_S (no build
    running beside the run), at most `limit_s`; returns the idle share of the last window."""
    deadline = time.monotonic() + limit_s
    while True:
        a = cpu_ticks()
        time.sleep(QUIET_WINDOW_S)
        b = cpu_ticks()
        total = b["total"] - a["total"]
        idle = 100.0 * (b["idle"] - a["idle"]) / total if total > 0 else 100.0
        if idle >= QUIET_IDLE_PCT or time.monotonic() > deadline:
            return round(idle, 1)


def process_cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(rest[11]) + int(rest[12])) / ticks


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def local_ports(pid):
    """Local TCP ports of the sockets process `pid` holds."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[9] in inodes:
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        except OSError:
            continue
    return ports


def connections_of(redis, pid):
    """The connections of CLIENT LIST that process `pid` holds."""
    ports = local_ports(pid)
    n = 0
    for line in redis.call("CLIENT", "LIST").splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split(" ") if "=" in kv)
        if int(fields["addr"].rsplit(":", 1)[1]) in ports:
            n += 1
    return n


# --- Drivers ------------------------------------------------------------------------------


class Driver:
    """One driver process in one role; stderr goes to a log file."""

    def __init__(self, system, role, n, args, redis_url, logdir):
        cmd = SYSTEMS[system]["command"](args) + [role, str(n), str(args.concurrency), str(args.payload_bytes)]
        self.log = open(os.path.join(logdir, f"{system}-{role}.log"), "ab")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=dict(os.environ, REDIS_URL=redis_url, **SYSTEMS[system].get("env", {})),
            cwd=SYSTEMS[system]["cwd"],
        )
        self.pid = self.proc.pid
        self.name = f"{system} {role}"
        # A reader thread, so that a wait for a line has a deadline.
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode().strip())
        self.lines.put("(end of output)")

    def expect(self, word):
        try:
            line = self.lines.get(timeout=LINE_TIMEOUT_S)
        except queue.Empty:
            line = "(nothing)"
        if not line.startswith(word):
            raise RuntimeError(f"{self.name}: expected {word!r}, got {line!r} (see {self.log.name})")
        rest = line[len(word):].strip()
        return json.loads(rest) if rest else None

    def send(self, word):
        self.proc.stdin.write(f"{word}\n".encode())
        self.proc.stdin.flush()

    def quit(self):
        self.send("quit")
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise RuntimeError(f"{self.name}: did not exit after quit")
        self.log.close()
        if code != 0:
            raise RuntimeError(f"{self.name}: exit code {code} (see {self.log.name})")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def ours_command(args):
    return [args.ours]


SYSTEMS = {
    "ours": {
        "label": "dynoqueue",
        "command": ours_command,
        "cwd": ROOT,
        # Acks land after the handler ends: settled once stat:processed counts every job.
        "settled": lambda r, n: int(r.call("GET", "stat:processed") or 0) >= n,
    },
    # The same, without the status record (what the record costs, not a default).
    "ours_untracked": {
        "label": "dynoqueue, status off",
        "command": ours_command,
        "cwd": ROOT,
        "env": {"COMPARE_STATUS": "off"},
        "settled": lambda r, n: int(r.call("GET", "stat:processed") or 0) >= n,
    },
    "sidekiq": {
        "label": "Sidekiq",
        "command": lambda args: ["ruby", os.path.join(HERE, "sidekiq", "driver.rb")],
        "cwd": HERE,
        # BRPOP took each job off the queue for good: nothing is left to land.
        "settled": lambda r, n: r.call("LLEN", "queue:drain") == 0,
    },
    "bullmq": {
        "label": "BullMQ",
        "command": lambda args: ["node", os.path.join(HERE, "bullmq", "driver.js")],
        "cwd": os.path.join(HERE, "bullmq"),
        # Each job is moved to `completed` after its handler ends.
        "settled": lambda r, n: r.call("ZCARD", "bull:drain:completed") >= n,
    },
}


def run_system(system, redis, url, args, logdir):
    """Every phase of one system; returns its figures."""
    out = {"noise": {}}
    drivers = []

    def driver(role, n):
        d = Driver(system, role, n, args, url, logdir)
        drivers.append(d)
        return d

    try:
        redis.call("FLUSHALL")
        redis.call("CONFIG", "RESETSTAT")

        # Single enqueues.
        d = driver("single", args.singles)
        d.expect("ready")
        noise = Noise()
        before = Snapshot(redis)
        d.send("go")
        lat = d.expect("done")
        after = Snapshot(redis)
        out["noise"]["single"] = noise.end()
        s = phase_stats(before, after, args.singles)
        out["single_p50_us"] = lat["p50_us"]
        out["single_p99_us"] = lat["p99_us"]
        out["single_commands_per_job"] = s["commands_per_job"]
        out["single_redis_cpu_us_per_job"] = s["redis_cpu_us_per_job"]
        out["single_commandstats"] = s["commandstats_per_job"]
        out["client_connections"] = connections_of(redis, d.pid)
        d.quit()
        redis.call("FLUSHALL")

        # Bulk enqueue (the gates go first, before the snapshot).
        d = driver("bulk", args.jobs)
        d.expect("ready")
        noise = Noise()
        before = Snapshot(redis)
        d.send("go")
        bulk = d.expect("done")
        after = Snapshot(redis)
        out["noise"]["bulk"] = noise.end()
        s = phase_stats(before, after, args.jobs)
        out["bulk_jobs_per_s"] = args.jobs / bulk["seconds"]
        out["bulk_commands_per_job"] = s["commands_per_job"]
        out["bulk_script_calls_per_job"] = s["script_calls_per_job"]
        out["bulk_redis_cpu_us_per_job"] = s["redis_cpu_us_per_job"]
        out["memory_bytes_per_job"] = s["memory_bytes_per_job"]
        out["bulk_commandstats"] = s["commandstats_per_job"]
        out["bulk_client_connections"] = connections_of(redis, d.pid)
        d.quit()

        # Drain of the queued jobs at concurrency C.
        d = driver("worker", args.jobs)
        d.expect("ready")
        d.expect("gated")
        gated_connections = connections_of(redis, d.pid)
        noise = Noise()
        before = Snapshot(redis)
        cpu_before = process_cpu_secs(d.pid)
        d.send("go")
        ends = d.expect("done")
        cpu_after = process_cpu_secs(d.pid)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        total = args.jobs + args.concurrency
        while not SYSTEMS[system]["settled"](redis, total):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{system}: the drain did not settle")
            time.sleep(0.001)
        after = Snapshot(redis)
        out["noise"]["drain"] = noise.end()
        s = phase_stats(before, after, args.jobs)
        span_s = (ends["last_end_ns"] - ends["first_end_ns"]) / 1e9
        out["drain_jobs_per_s"] = (args.jobs - 1) / span_s
        out["drain_redis_cpu_us_per_job"] = s["redis_cpu_us_per_job"]
        out["drain_commands_per_job"] = s["commands_per_job"]
        out["drain_script_calls_per_job"] = s["script_calls_per_job"]
        out["drain_commandstats"] = s["commandstats_per_job"]
        out["worker_connections"] = max(gated_connections, connections_of(redis, d.pid))
        out["worker_cpu_us_per_job"] = (cpu_after - cpu_before) * 1e6 / args.jobs
        out["worker_peak_rss_mb"] = peak_rss_mb(d.pid)
        d.quit()
        redis.call("FLUSHALL")

        # Pickup latency.
        d = driver("pickup", args.pickups)
        d.expect("ready")
        noise = Noise()
        d.send("go")
        lat = d.expect("done")
        out["noise"]["pickup"] = noise.end()
        out["pickup_p50_us"] = lat["p50_us"]
        out["pickup_p99_us"] = lat["p99_us"]
        d.quit()
    finally:
        for d in drivers:
            d.kill()
    return out


# --- Redis ----------------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(workdir):
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--logfile", os.path.join(workdir, "redis.log")],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            r = Redis(port)
            r.call("PING")
            return proc, port, r
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)


def baseline(port):
    """redis-benchmark -t lpush -P 16 -n 1000000 -q: LPUSH requests per second."""
    text = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", "lpush", "-P", "16", "-n", "1000000", "-q"],
        capture_output=True, text=True, check=True,
    ).stdout
    line = [l for l in text.replace("\r", "\n").splitlines() if l.startswith("LPUSH:")][-1]
    return float(line.split()[1])


def versions(args, port):
    def out(cmd, cwd=ROOT):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    bullmq_dir = os.path.join(HERE, "bullmq")
    return {
        "redis": parse_info(Redis(port).call("INFO", "server")).get("redis_version"),
        "sidekiq": out(["ruby", "-e", 'require "sidekiq"; print Sidekiq::VERSION']),
        "ruby": out(["ruby", "-e", "print RUBY_VERSION"]),
        "redis_rb": out(["ruby", "-e", 'require "redis"; print Redis::VERSION']),
        "bullmq": out(["node", "-p", 'require("bullmq/package.json").version'], bullmq_dir),
        "ioredis": out(["node", "-p", 'require("ioredis/package.json").version'], bullmq_dir),
        "node": out(["node", "--version"]),
        "ours_commit": out(["git", "rev-parse", "--short", "HEAD"]),
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
    }


# The figures the table and the chart show: key, label, unit, whether lower is better.
MEASURES = [
    ("single_p50_us", "single enqueue, median", "µs", True),
    ("single_p99_us", "single enqueue, p99", "µs", True),
    ("single_commands_per_job", "single enqueue, Redis commands per job", "", True),
    ("single_redis_cpu_us_per_job", "single enqueue, Redis CPU per job", "µs", True),
    ("bulk_jobs_per_s", "bulk enqueue", "jobs/s", False),
    ("bulk_commands_per_job", "bulk enqueue, Redis commands per job", "", True),
    ("bulk_redis_cpu_us_per_job", "bulk enqueue, Redis CPU per job", "µs", True),
    ("memory_bytes_per_job", "Redis memory per queued job", "B", True),
    ("drain_jobs_per_s", "drain at concurrency 10", "jobs/s", False),
    ("drain_redis_cpu_us_per_job", "drain, Redis CPU per job", "µs", True),
    ("drain_commands_per_job", "drain, Redis commands per job", "", True),
    ("pickup_p50_us", "pickup latency, median", "µs", True),
    ("pickup_p99_us", "pickup latency, p99", "µs", True),
    ("worker_connections", "worker connections at concurrency 10", "", True),
    ("client_connections", "enqueuing client connections", "", True),
    ("worker_cpu_us_per_job", "worker process CPU per job", "µs", True),
    ("worker_peak_rss_mb", "worker process peak RSS", "MB", True),
]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ours", required=True, help="path of the built `compare` binary")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--jobs", type=int, default=20_000, help="jobs of the bulk enqueue, memory and drain")
    p.add_argument("--singles", type=int, default=2_000, help="sequential single enqueues")
    p.add_argument("--pickups", type=int, default=200, help="measured pickups")
    p.add_argument("--concurrency", type=int, default=10)
    p.add_argument("--payload-bytes", type=int, default=64)
    p.add_argument("--quiet-wait", type=float, default=600,
                   help="longest wait, in seconds, for a quiet CPU before each run")
    p.add_argument("--systems", default="ours,sidekiq,bullmq,ours_untracked")
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "compare", "compare.json"))
    args = p.parse_args()
    systems = args.systems.split(",")

    workdir = tempfile.mkdtemp(prefix="compare-")
    logdir = os.path.join(workdir, "logs")
    os.makedirs(logdir)
    print(f"compare: drivers' logs in {logdir}", file=sys.stderr)
    proc, port, redis = start_redis(workdir)
    url = f"redis://127.0.0.1:{port}"
    runs = []
    try:
        meta_versions = versions(args, port)
        for i in range(args.runs):
            order = systems[i % len(systems):] + systems[: i % len(systems)]
            idle = wait_quiet(args.quiet_wait)
            run = {"run": i + 1, "order": order, "idle_pct_before": idle, "load_1m_start": load_1m()}
            redis.call("FLUSHALL")
            noise = Noise()
            run["baseline_lpush_per_s"] = baseline(port)
            run["baseline_noise"] = noise.end()
            redis.call("FLUSHALL")
            run["systems"] = {}
            run["idle_pct_before_system"] = {}
            for system in order:
                print(f"compare: run {i + 1}/{args.runs}: {system}…", file=sys.stderr)
                run["idle_pct_before_system"][system] = wait_quiet(args.quiet_wait)
                run["systems"][system] = run_system(system, redis, url, args, logdir)
            run["load_1m_end"] = load_1m()
            runs.append(run)
    finally:
        proc.terminate()
        proc.wait()

    medians = {
        s: {k: statistics.median(r["systems"][s][k] for r in runs) for k, *_ in MEASURES}
        for s in systems
    }
    steal = [n["steal_pct"] for r in runs for s in r["systems"].values() for n in s["noise"].values()
             if n["steal_pct"] is not None]
    result = {
        "command": "benches/compare/run.sh " + " ".join(sys.argv[1:]).replace(f"--ours {args.ours}", "").strip(),
        "params": {
            "runs": args.runs, "jobs": args.jobs, "singles": args.singles, "pickups": args.pickups,
            "concurrency": args.concurrency, "payload_bytes": args.payload_bytes,
        },
        "versions": meta_versions,
        "settings": {
            "ours_untracked": "the same with status tracking off (COMPARE_STATUS=off): no status record; shown to measure what the record costs",
            "ours": "defaults: status tracking on (a status record per job, kept after success), reliable fetch, no prefix",
            "sidekiq": "defaults: BasicFetch (BRPOP), retry on, per-job log lines (to a file); no status record exists",
            "bullmq": "defaults: removeOnComplete unset, so every completed job (hash + `completed` zset entry) is kept; events stream capped near 10,000",
        },
        "measures": [{"key": k, "label": l, "unit": u, "lower_is_better": lo} for k, l, u, lo in MEASURES],
        "baseline_lpush_per_s_median": statistics.median(r["baseline_lpush_per_s"] for r in runs),
        "steal_pct_max": max(steal) if steal else None,
        "load_1m": [r["load_1m_start"] for r in runs] + [runs[-1]["load_1m_end"]],
        "idle_pct_before_runs": [r["idle_pct_before"] for r in runs],
        "phases_beside_a_build": [f"run {r['run']} {s} {ph}" for r in runs for s, f in r["systems"].items()
                                  for ph, n in f["noise"].items() if n["builds_running"]],
        "unreliable_phases": [f"run {r['run']} {s} {ph}" for r in runs for s, f in r["systems"].items()
                              for ph, n in f["noise"].items() if n["unreliable"]],
        "medians": medians,
        "runs": runs,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"compare: wrote {args.out}", file=sys.stderr)
    # The logs are kept when a run fails (the exception skips this).
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
