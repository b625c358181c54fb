# Prints, as JSON, what Sidekiq's API classes see in Redis: one queue, the schedule, stats.
# Run by tests/sidekiq_interop.rs: REDIS_URL=redis://127.0.0.1:PORT ruby inspect.rb QUEUE
require "json"
require "sidekiq"
require "sidekiq/api"

Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }
queue = Sidekiq::Queue.new(ARGV.fetch(0))
stats = Sidekiq::Stats.new

job = lambda do |j|
  {
    "klass" => j.klass, "args" => j.args, "jid" => j.jid, "queue" => j.queue,
    "retry" => j.item["retry"], "created_at" => j.created_at.to_f,
    "enqueued_at" => j.enqueued_at&.to_f
  }
end

puts JSON.dump(
  "queues" => Sidekiq::Queue.all.map(&:name),
  "size" => queue.size,
  "latency" => queue.latency,
  "jobs" => queue.map(&job),
  "scheduled" => Sidekiq::ScheduledSet.new.map { |e| job.call(e).merge("at" => e.at.to_f) },
  "enqueued" => stats.enqueued,
  "scheduled_size" => stats.scheduled_size
)
