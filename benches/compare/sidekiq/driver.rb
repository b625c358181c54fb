# frozen_string_literal: true

# Sidekiq's side of benches/compare: one role per process, driven by compare.py over
# stdin/stdout (it writes `go` and `quit`; this prints `ready`, `gated` and `done JSON`).
#
#   REDIS_URL=redis://127.0.0.1:PORT ruby driver.rb ROLE N [CONCURRENCY] [PAYLOAD_BYTES]
#
# Roles (the same in the BullMQ and Rust drivers):
#   single N  N sequential Sidekiq::Client.push, each timed (after a warm-up)
#   bulk N    CONCURRENCY gate jobs pushed before `ready`, then on `go` N no-op jobs with
#             Sidekiq::Client.push_bulk in slices of 1,000 (the size Sidekiq's wiki advises
#             and Sidekiq 7 uses by default), timed
#   worker N  a real `sidekiq` server (Sidekiq::CLI, concurrency CONCURRENCY, queue `drain`)
#             in this process; `gated` once every thread holds a gate job; `go` releases
#             them; `done` when N no-op jobs ran (monotonic ns of the first and last end)
#   pickup N  a `sidekiq` server on queue `pickup`, and a client in this process: an idle
#             worker, one push, the time until the handler starts; N times after a warm-up
#
# Sidekiq runs at its defaults: BasicFetch (BRPOP), retries on, its per-job log lines
# (to stderr, which compare.py sends to a file), no status record (Sidekiq has none).

require "json"
require "sidekiq"

# Debian's redis gem (4.8) prints a deprecation warning on every SADD and BRPOP Sidekiq 6.4
# sends; writing those lines would be charged to Sidekiq's latency. Silenced: no command changes.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

ROLE = ARGV.fetch(0)
N = Integer(ARGV.fetch(1))
CONCURRENCY = Integer(ARGV.fetch(2, "10"))
PADDING = "x" * Integer(ARGV.fetch(3, "64"))
# Pickups before the measured ones (connections, code paths and caches warm).
PICKUP_WARMUP = 50
# Pause between a pickup's end and the next push, so that the worker is idle (blocked in
# its fetch) when the job arrives.
IDLE_PAUSE = 0.002

def now_ns = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)

def say(line)
  $stdout.puts(line)
  $stdout.flush
end

def expect(word)
  line = $stdin.gets
  raise "expected #{word.inspect}, got #{line.inspect}" unless line&.strip == word
end

def quantile_us(samples, q)
  sorted = samples.sort
  sorted[[(q * sorted.size).ceil - 1, 0].max] / 1000.0
end

# What the jobs report to the role's main thread.
EVENTS = Thread::Queue.new
GATE = { lock: Mutex.new, cond: ConditionVariable.new, open: false }

class CompareNoop
  include Sidekiq::Worker

  def perform(_n, _padding)
    EVENTS << [:end, now_ns]
  end
end

class ComparePickup
  include Sidekiq::Worker

  def perform(_n, _padding)
    EVENTS << [:start, now_ns]
  end
end

class CompareGate
  include Sidekiq::Worker

  def perform
    EVENTS << [:gate, now_ns]
    GATE[:lock].synchronize { GATE[:cond].wait(GATE[:lock]) until GATE[:open] }
  end
end

def job(klass, n, queue) = { "class" => klass, "queue" => queue, "args" => [n, PADDING] }

# Starts a real Sidekiq server (the CLI's own run loop) on `queue` in a background thread;
# its log goes to stderr so that stdout stays the control channel. `quit` ends it with TERM,
# as a platform would.
def start_server(queue)
  require "sidekiq/cli"
  Sidekiq.logger = Sidekiq::Logger.new($stderr)
  cli = Sidekiq::CLI.instance
  cli.parse(["-c", CONCURRENCY.to_s, "-q", queue, "-r", __FILE__, "-t", "5"])
  Thread.new { cli.run(boot_app: false) }
end

def wait_event(kind)
  loop do
    k, t = EVENTS.pop
    return t if k == kind
  end
end

case ROLE
when "single"
  warmup = [N / 20, 1].max
  warmup.times { |i| Sidekiq::Client.push(job("CompareNoop", i, "single")) }
  say "ready"
  expect "go"
  samples = Array.new(N) do |i|
    start = now_ns
    Sidekiq::Client.push(job("CompareNoop", i, "single"))
    now_ns - start
  end
  say "done #{JSON.generate(p50_us: quantile_us(samples, 0.5), p99_us: quantile_us(samples, 0.99))}"
  expect "quit"
when "bulk"
  CONCURRENCY.times { Sidekiq::Client.push("class" => "CompareGate", "queue" => "drain", "args" => []) }
  say "ready"
  expect "go"
  start = now_ns
  (0...N).each_slice(1000) do |slice|
    Sidekiq::Client.push_bulk("class" => "CompareNoop", "queue" => "drain",
      "args" => slice.map { |i| [i, PADDING] })
  end
  secs = (now_ns - start) / 1e9
  say "done #{JSON.generate(seconds: secs)}"
  expect "quit"
when "worker"
  server = start_server("drain")
  say "ready"
  CONCURRENCY.times { wait_event(:gate) }
  say "gated"
  expect "go"
  GATE[:lock].synchronize do
    GATE[:open] = true
    GATE[:cond].broadcast
  end
  first = wait_event(:end)
  last = first
  (N - 1).times { last = wait_event(:end) }
  say "done #{JSON.generate(first_end_ns: first, last_end_ns: last)}"
  expect "quit"
  Process.kill("TERM", Process.pid)
  server.join
when "pickup"
  server = start_server("pickup")
  # The server's threads block in BRPOP; the first pushes below also wait for them.
  say "ready"
  expect "go"
  samples = []
  (PICKUP_WARMUP + N).times do |i|
    sleep IDLE_PAUSE
    start = now_ns
    Sidekiq::Client.push(job("ComparePickup", i, "pickup"))
    started = wait_event(:start)
    samples << started - start if i >= PICKUP_WARMUP
  end
  say "done #{JSON.generate(p50_us: quantile_us(samples, 0.5), p99_us: quantile_us(samples, 0.99))}"
  expect "quit"
  Process.kill("TERM", Process.pid)
  server.join
else
  abort "unknown role #{ROLE}"
end
