# Prints, as JSON, what Sidekiq's API classes read where `queue_core::inspect` reads too:
# queues (size, latency, jobs in `each` order), the three sorted sets (size, jids and times
# in `each` order), processes, Stats and Stats::History. Nothing here writes to Redis
# (`ProcessSet.new(false)` skips the pruning `ProcessSet.new` would do).
# Run by tests/sidekiq_interop.rs: REDIS_URL=redis://127.0.0.1:PORT ruby api.rb DAYS YYYY-MM-DD
require "date"
require "json"
require "sidekiq"
require "sidekiq/api"

Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }
days = Integer(ARGV.fetch(0))
history = Sidekiq::Stats::History.new(days, Date.parse(ARGV.fetch(1)))
stats = Sidekiq::Stats.new

set = lambda do |s|
  entries = s.map { |e| { "jid" => e.jid, "at" => e.at.to_f } }
  { "size" => s.size, "entries" => entries }
end

puts JSON.dump(
  "queues" => Sidekiq::Queue.all.map { |q|
    { "name" => q.name, "size" => q.size, "latency" => q.latency, "jids" => q.map(&:jid) }
  },
  "schedule" => set.call(Sidekiq::ScheduledSet.new),
  "retry" => set.call(Sidekiq::RetrySet.new),
  "dead" => set.call(Sidekiq::DeadSet.new),
  "processes" => Sidekiq::ProcessSet.new(false).map { |p|
    { "identity" => p.identity, "busy" => p["busy"], "beat" => p["beat"] }
  },
  "stats" => {
    "processed" => stats.processed, "failed" => stats.failed, "enqueued" => stats.enqueued,
    "retry_size" => stats.retry_size, "scheduled_size" => stats.scheduled_size,
    "dead_size" => stats.dead_size, "workers_size" => stats.workers_size
  },
  "history" => { "processed" => history.processed, "failed" => history.failed }
)
