# Pushes jobs with Sidekiq's own client, as a Ruby app would, and prints their jids as JSON.
# Run by tests/sidekiq_interop.rs: REDIS_URL=redis://127.0.0.1:PORT ruby push.rb QUEUE
require "json"
require "sidekiq"

Sidekiq.configure_client { |c| c.redis = { url: ENV.fetch("REDIS_URL") } }
queue = ARGV.fetch(0)

now = Sidekiq::Client.push(
  "class" => "HardJob", "queue" => queue, "args" => [1, "x", { "k" => "v" }],
  "retry" => 3, "tags" => ["t1"]
)
later = Sidekiq::Client.push(
  "class" => "HardJob", "queue" => queue, "args" => [2], "at" => Time.now.to_f + 3600
)
puts JSON.dump("now" => now, "later" => later)
