//! Every Redis key and channel name the framework uses, built in one place.
//!
//! With the default empty prefix the Sidekiq-owned keys are exactly Sidekiq's own
//! (`queue:default`, `queues`, `schedule`, `retry`, `dead`, `stat:processed`, …), so
//! Sidekiq's Ruby client, its Web UI and its API classes see our data. A prefix such as
//! `{myapp}:` namespaces everything and, because of the braces, puts every key into one
//! Redis Cluster hash slot so that multi-key scripts stay legal.
//!
//! Keys that Sidekiq does not know are ours; they live under the same prefix and under
//! names Sidekiq never uses (`jobstatus:`, `worker:`, `processing:`).

/// Builds key names from a fixed prefix.
///
/// ```
/// use queue_core::keys::Keys;
/// let keys = Keys::new("{app}:");
/// assert_eq!(keys.queue("default"), "{app}:queue:default");
/// assert_eq!(Keys::default().retry(), "retry");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (use `""` for Sidekiq's own names).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// List of jobs ready to run in `queue`; pushed on the left, taken from the right.
    pub fn queue(&self, queue: &str) -> String {
        format!("{}queue:{queue}", self.prefix)
    }

    /// The part of [`Keys::queue`] before the queue name (scripts append the name).
    pub fn queue_prefix(&self) -> String {
        format!("{}queue:", self.prefix)
    }

    /// Set of every queue name ever pushed to.
    pub fn queues(&self) -> String {
        format!("{}queues", self.prefix)
    }

    /// Sorted set of jobs waiting for their run time (score = run-at, epoch seconds).
    pub fn schedule(&self) -> String {
        format!("{}schedule", self.prefix)
    }

    /// Sorted set of failed jobs waiting for their next attempt (score = retry time).
    pub fn retry(&self) -> String {
        format!("{}retry", self.prefix)
    }

    /// Sorted set of jobs that ran out of retries (score = time of death).
    pub fn dead(&self) -> String {
        format!("{}dead", self.prefix)
    }

    /// Set of paused queue names: no worker takes jobs from these queues until resumed.
    pub fn paused(&self) -> String {
        format!("{}paused", self.prefix)
    }

    /// Lifetime counter of processed jobs (successes and failures, as Sidekiq counts).
    pub fn stat_processed(&self) -> String {
        format!("{}stat:processed", self.prefix)
    }

    /// Lifetime counter of failed executions.
    pub fn stat_failed(&self) -> String {
        format!("{}stat:failed", self.prefix)
    }

    /// Per-UTC-day counter of processed jobs; `day` is `YYYY-MM-DD`.
    pub fn stat_processed_on(&self, day: &str) -> String {
        format!("{}stat:processed:{day}", self.prefix)
    }

    /// Per-UTC-day counter of failed executions; `day` is `YYYY-MM-DD`.
    pub fn stat_failed_on(&self, day: &str) -> String {
        format!("{}stat:failed:{day}", self.prefix)
    }

    /// Hash holding the status record of job `jid`.
    pub fn status(&self, jid: &str) -> String {
        format!("{}{jid}", self.status_prefix())
    }

    /// The part of [`Keys::status`] before the job id (scripts append the id).
    pub fn status_prefix(&self) -> String {
        format!("{}jobstatus:", self.prefix)
    }

    /// Pub/sub channel on which enqueues announce new work (message = queue name).
    pub fn wake_channel(&self) -> String {
        format!("{}wake", self.prefix)
    }

    /// Pub/sub channel on which the scripts announce a change of a status record that a
    /// long poll watches (message = `<rev> <status key>`).
    pub fn status_channel(&self) -> String {
        format!("{}jobstatus", self.prefix)
    }

    /// The job id of status record `key` (built by [`Keys::status`]), if it is one.
    ///
    /// ```
    /// use queue_core::keys::Keys;
    /// let keys = Keys::new("{app}:");
    /// assert_eq!(keys.job_of_status(&keys.status("j1")), Some("j1"));
    /// assert_eq!(keys.job_of_status("{app}:queue:j1"), None);
    /// ```
    pub fn job_of_status<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.status_prefix().as_str())
    }

    /// Set of the identities of our worker processes (for the reaper).
    pub fn workers(&self) -> String {
        format!("{}workers", self.prefix)
    }

    /// Lease of worker process `identity`: exists while the process is alive.
    pub fn lease(&self, identity: &str) -> String {
        format!("{}{identity}", self.lease_prefix())
    }

    /// The part of [`Keys::lease`] before the identity.
    pub fn lease_prefix(&self) -> String {
        format!("{}worker:lease:", self.prefix)
    }

    /// List of the raw jobs that worker process `identity` has fetched and not yet finished.
    pub fn processing(&self, identity: &str) -> String {
        format!("{}{identity}", self.processing_prefix())
    }

    /// The part of [`Keys::processing`] before the identity.
    pub fn processing_prefix(&self) -> String {
        format!("{}processing:", self.prefix)
    }

    /// Sidekiq's set of process identities (`Sidekiq::ProcessSet`).
    pub fn processes(&self) -> String {
        format!("{}processes", self.prefix)
    }

    /// Sidekiq's per-process hash (`info`, `busy`, `beat`, …).
    pub fn process(&self, identity: &str) -> String {
        format!("{}{identity}", self.prefix)
    }

    /// Hash of the jobs processed and failed (`processed`, `failed`) in one minute, numbered
    /// from the epoch (unix seconds / 60), for the dashboard's last-hour chart. Written by
    /// workers' heartbeats; expires after two hours.
    pub fn stat_minute(&self, minute: u64) -> String {
        format!("{}stat:minute:{minute}", self.prefix)
    }

    /// Sidekiq's list of signals for process `identity` (`TSTP` quiet, `TERM` stop), pushed by
    /// an operator and popped by the process's heartbeat.
    pub fn signals(&self, identity: &str) -> String {
        format!("{}{identity}-signals", self.prefix)
    }

    /// Sidekiq's per-process hash of running jobs.
    pub fn process_work(&self, identity: &str) -> String {
        format!("{}{identity}:work", self.prefix)
    }

    /// Hash counting completed executions per job id, written by the diagnostic jobs of the
    /// `queue-worker` binary (for kill tests and smoke checks; unused otherwise).
    pub fn diagnostics_ledger(&self) -> String {
        format!("{}diagnostics:ledger", self.prefix)
    }

    /// Sorted set of the holders of a concurrency-limited job class's slots, across all
    /// processes (score = the slot's expiry, epoch ms).
    pub fn concurrency(&self, class: &str) -> String {
        format!("{}concurrency:{class}", self.prefix)
    }

    /// String holding the id of the job that owns uniqueness key `key` (`unique.rs`), with
    /// the lock's lifetime as its TTL.
    pub fn unique(&self, key: &str) -> String {
        format!("{}unique:{key}", self.prefix)
    }

    /// List of `admitted start end` (epoch ms) lines written by the `queue-worker` binary's
    /// limited diagnostic job (the limiter acceptance test reads it).
    pub fn diagnostics_spans(&self) -> String {
        format!("{}diagnostics:spans", self.prefix)
    }

    /// State of rate limiter `name` (`limiter_acquire.lua`): a sorted set for concurrent and
    /// window limiters, a string for a bucket.
    pub fn limiter(&self, name: &str) -> String {
        format!("{}limiter:{name}", self.prefix)
    }

    /// Hash of every limiter used: name → `kind limit span_ms` as last asked (for inspect and
    /// metrics).
    pub fn limiters(&self) -> String {
        format!("{}limiters", self.prefix)
    }

    /// Set of the registered periodic (cron) entries' names.
    pub fn periodic(&self) -> String {
        format!("{}periodic", self.prefix)
    }

    /// Hash of periodic entry `name`: its definition (`cron`, `tz`, `class`, `queue`,
    /// `missed`, `digest`) and its `last` and `next` tick (epoch s).
    pub fn periodic_entry(&self, name: &str) -> String {
        format!("{}periodic:{name}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_prefix_gives_sidekiq_names() {
        let k = Keys::default();
        assert_eq!(k.queue("critical"), "queue:critical");
        assert_eq!(k.queues(), "queues");
        assert_eq!(k.schedule(), "schedule");
        assert_eq!(k.retry(), "retry");
        assert_eq!(k.dead(), "dead");
        assert_eq!(k.paused(), "paused");
        assert_eq!(k.stat_processed(), "stat:processed");
        assert_eq!(k.stat_failed(), "stat:failed");
        assert_eq!(
            k.stat_processed_on("2026-01-02"),
            "stat:processed:2026-01-02"
        );
        assert_eq!(k.stat_failed_on("2026-01-02"), "stat:failed:2026-01-02");
        assert_eq!(k.processes(), "processes");
        assert_eq!(k.process("web.1:12:ab"), "web.1:12:ab");
        assert_eq!(k.signals("web.1:12:ab"), "web.1:12:ab-signals");
        assert_eq!(k.stat_minute(29_333_333), "stat:minute:29333333");
        assert_eq!(k.process_work("web.1:12:ab"), "web.1:12:ab:work");
    }

    #[test]
    fn our_keys_live_under_the_prefix() {
        let k = Keys::new("{app}:");
        assert_eq!(k.status("j1"), "{app}:jobstatus:j1");
        assert_eq!(k.status_prefix(), "{app}:jobstatus:");
        assert_eq!(k.queue_prefix(), "{app}:queue:");
        assert_eq!(k.wake_channel(), "{app}:wake");
        assert_eq!(k.status_channel(), "{app}:jobstatus");
        assert_eq!(k.workers(), "{app}:workers");
        assert_eq!(k.lease("w:1:x"), "{app}:worker:lease:w:1:x");
        assert_eq!(k.processing("w:1:x"), "{app}:processing:w:1:x");
        assert_eq!(k.concurrency("Report"), "{app}:concurrency:Report");
        assert_eq!(k.diagnostics_ledger(), "{app}:diagnostics:ledger");
        assert_eq!(k.unique("Report:ab12"), "{app}:unique:Report:ab12");
        assert_eq!(k.periodic(), "{app}:periodic");
        assert_eq!(k.limiter("stripe:t1"), "{app}:limiter:stripe:t1");
        assert_eq!(k.limiters(), "{app}:limiters");
        assert_eq!(k.periodic_entry("nightly"), "{app}:periodic:nightly");
    }
}
