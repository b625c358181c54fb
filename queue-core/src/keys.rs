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
    /// The app's own prefix, where the keys every queue shares live (paused queues,
    /// limiters, concurrency slots, the pub/sub channels). Equal to `prefix` except in a
    /// queue's slot (see [`Keys::queue_slot`]).
    home: String,
}

/// Separates the app's hash tag from the queue name in a queue slot's tag (`{app/mailers}`).
const QUEUE_SLOT_SEPARATOR: char = '/';

impl Keys {
    /// Keys under `prefix` (use `""` for Sidekiq's own names).
    pub fn new(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        Self {
            home: prefix.clone(),
            prefix,
        }
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The keys of queue `queue`'s own slot, when queues are spread over a cluster's slots:
    /// the hash tag of the prefix gets the queue name (`{app}:` becomes `{app/mailers}:`),
    /// so that the queue, its jobs' records, its schedule, retry and dead sets, its
    /// processing lists and counters live on whichever master owns that slot. The keys
    /// every queue shares ([`Keys::paused`], the limiters and concurrency slots) and the
    /// channels stay at the app's own prefix. A prefix without a hash tag has no slot to
    /// spread: the keys are returned unchanged.
    ///
    /// ```
    /// use queue_core::keys::Keys;
    /// let mailers = Keys::new("{app}:").queue_slot("mailers");
    /// assert_eq!(mailers.queue("mailers"), "{app/mailers}:queue:mailers");
    /// assert_eq!(mailers.status("j1"), "{app/mailers}:jobstatus:j1");
    /// assert_eq!(mailers.paused(), "{app}:paused");
    /// assert_eq!(mailers.wake_channel(), "{app}:wake");
    /// ```
    pub fn queue_slot(&self, queue: &str) -> Keys {
        let Some(open) = self.home.find('{') else {
            return self.clone();
        };
        let Some(close) = self.home[open..].find('}').map(|c| open + c) else {
            return self.clone();
        };
        let prefix = format!(
            "{}{QUEUE_SLOT_SEPARATOR}{queue}{}",
            &self.home[..close],
            &self.home[close..]
        );
        Keys {
            prefix,
            home: self.home.clone(),
        }
    }

    /// The app's own keys (the prefix the client was configured with), from any slot's keys.
    pub fn home(&self) -> Keys {
        Keys::new(self.home.clone())
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
        format!("{}paused", self.home)
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
        format!("{}wake", self.home)
    }

    /// Pub/sub channel on which the scripts announce a change of a status record that a
    /// long poll watches (message = `<rev> <status key>`).
    pub fn status_channel(&self) -> String {
        format!("{}jobstatus", self.home)
    }

    /// The job id of status record `key` (built by [`Keys::status`]), if it is one.
    ///
    /// ```
    /// use queue_core::keys::Keys;
    /// let keys = Keys::new("{app}:");
    /// assert_eq!(keys.job_of_status(&keys.status("j1")), Some("j1"));
    /// assert_eq!(keys.job_of_status("{app}:queue:j1"), None);
    /// assert_eq!(keys.job_of_status(&keys.queue_slot("q").status("j2")), Some("j2"));
    /// ```
    pub fn job_of_status<'k>(&self, key: &'k str) -> Option<&'k str> {
        if let Some(jid) = key.strip_prefix(self.status_prefix().as_str()) {
            return Some(jid);
        }
        // A record in a queue's own slot: `A{tag/QUEUE}Bjobstatus:ID` for the app's `A{tag}B`.
        let close = self.home.find('}')?;
        let rest = key.strip_prefix(&self.home[..close])?;
        let rest = rest.strip_prefix(QUEUE_SLOT_SEPARATOR)?;
        let (_queue, rest) = rest.split_once('}')?;
        rest.strip_prefix(&self.home[close + 1..])?
            .strip_prefix("jobstatus:")
    }

    /// One shard of the finished-record store ([`crate::finished_store`]): a hash of packed
    /// records (job id → record) of jobs kept `keep_secs` that finished in time bucket
    /// `bucket`, shard `shard` of the bucket.
    ///
    /// ```
    /// use queue_core::keys::Keys;
    /// assert_eq!(Keys::new("{app}:").finished_shard(86400, 490123, 7), "{app}:done:86400:490123:7");
    /// ```
    pub fn finished_shard(&self, keep_secs: u64, bucket: u64, shard: u32) -> String {
        format!("{}done:{keep_secs}:{bucket}:{shard}", self.prefix)
    }

    /// Set of the retention periods (seconds) the finished-record store holds records for,
    /// added by the script that packs a record, so that a reader knows which shards to look
    /// in.
    pub fn finished_keeps(&self) -> String {
        format!("{}done:keeps", self.prefix)
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
        format!("{}diagnostics:ledger", self.home)
    }

    /// Sorted set of the holders of a concurrency-limited job class's slots, across all
    /// processes (score = the slot's expiry, epoch ms).
    pub fn concurrency(&self, class: &str) -> String {
        format!("{}concurrency:{class}", self.home)
    }

    /// String holding the id of the job that owns uniqueness key `key` (`unique.rs`), with
    /// the lock's lifetime as its TTL.
    pub fn unique(&self, key: &str) -> String {
        format!("{}unique:{key}", self.prefix)
    }

    /// List of `admitted start end` (epoch ms) lines written by the `queue-worker` binary's
    /// limited diagnostic job (the limiter acceptance test reads it).
    pub fn diagnostics_spans(&self) -> String {
        format!("{}diagnostics:spans", self.home)
    }

    /// State of rate limiter `name` (`limiter_acquire.lua`): a sorted set for concurrent and
    /// window limiters, a string for a bucket.
    pub fn limiter(&self, name: &str) -> String {
        format!("{}limiter:{name}", self.home)
    }

    /// Hash of every limiter used: name → `kind limit span_ms` as last asked (for inspect and
    /// metrics).
    pub fn limiters(&self) -> String {
        format!("{}limiters", self.home)
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

    #[test]
    fn a_queue_slot_keeps_the_jobs_keys_and_shares_the_apps_own() {
        let home = Keys::new("x{app}:");
        let q = home.queue_slot("mail.er-s_1");
        assert_eq!(q.prefix(), "x{app/mail.er-s_1}:");
        for key in [
            q.queue("mail.er-s_1"),
            q.queues(),
            q.schedule(),
            q.retry(),
            q.dead(),
            q.status("j"),
            q.processing("w:1"),
            q.lease("w:1"),
            q.workers(),
            q.processes(),
            q.stat_processed(),
            q.unique("u"),
            q.periodic(),
            q.periodic_entry("n"),
        ] {
            assert!(key.starts_with("x{app/mail.er-s_1}:"), "{key}");
        }
        for (theirs, ours) in [
            (q.paused(), home.paused()),
            (q.wake_channel(), home.wake_channel()),
            (q.status_channel(), home.status_channel()),
            (q.concurrency("C"), home.concurrency("C")),
            (q.limiter("l"), home.limiter("l")),
            (q.limiters(), home.limiters()),
        ] {
            assert_eq!(theirs, ours);
        }
        assert_eq!(q.home(), home);
        assert_eq!(home.job_of_status(&q.status("j9")), Some("j9"));
        assert_eq!(q.job_of_status(&q.status("j9")), Some("j9"));
        assert_eq!(home.job_of_status("x{app/q}:queue:j9"), None);
        assert_eq!(home.job_of_status("x{other/q}:jobstatus:j9"), None);
        // No hash tag, nothing to spread.
        assert_eq!(Keys::new("app:").queue_slot("q"), Keys::new("app:"));
    }
}
