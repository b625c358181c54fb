//! Periodic (cron) entries as Redis knows them: their registration, the enqueue of one tick,
//! and the job id a tick gets.
//!
//! Parsing cron expressions and deciding when a tick is due is the worker's part
//! (`queue_worker::periodic`); this module is the atomic part. Each tick is pushed by
//! `periodic_tick.lua`, which moves the entry's `last` tick forward in the same step: every
//! process running the entry offers every tick, and exactly one push happens, whichever
//! processes start, die or are killed meanwhile. The tick also names the job
//! ([`tick_job_id`]), so a status URL says which run it is.

use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::time::Duration;

use crate::client::{Client, NewJob, new_status, secs_str};
use crate::error::{Error, Result};
use crate::job_id::JobId;
use crate::scripts;
use crate::status::JobState;
use crate::timestamp::Timestamp;

/// Longest entry name: a tick's job id is `cron-<name>-<epoch s>` and ids have 64 characters.
pub const MAX_PERIODIC_NAME_LEN: usize = 40;
/// [`PeriodicDefinition::missed`] of the run-once policy (the newest missed tick runs once).
pub const MISSED_RUN_ONCE: &str = "once";
/// [`PeriodicDefinition::missed`] of the skip policy (missed ticks are not run).
pub const MISSED_SKIP: &str = "skip";

/// The definition of a periodic entry, as registered in Redis and shown by `inspect`.
#[derive(Debug, Clone)]
pub struct PeriodicDefinition {
    /// Unique name (`[A-Za-z0-9_-]`, at most [`MAX_PERIODIC_NAME_LEN`]).
    pub name: String,
    /// The cron expression.
    pub cron: String,
    /// IANA time zone name.
    pub tz: String,
    /// Policy for ticks missed while no worker ran: `skip` or `once`.
    pub missed: String,
    /// The job each tick pushes (class, arguments, queue, retry, tracking).
    pub job: NewJob,
}

impl PeriodicDefinition {
    /// Checks the name.
    pub fn validate(&self) -> Result<()> {
        let ok = !self.name.is_empty()
            && self.name.len() <= MAX_PERIODIC_NAME_LEN
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(())
        } else {
            Err(Error::InvalidPeriodicName(self.name.clone()))
        }
    }

    /// A short digest of everything that defines the entry: a process whose definition
    /// differs from the registered one does not enqueue its ticks.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for part in [
            self.name.as_str(),
            &self.cron,
            &self.tz,
            &self.missed,
            &self.job.class,
            self.job.options.queue.as_deref().unwrap_or(&self.job.queue),
        ] {
            h.update(part.as_bytes());
            h.update(b"\0");
        }
        h.update(serde_json::to_vec(&self.job.args).unwrap_or_default());
        let mut out = String::with_capacity(32);
        for b in &h.finalize()[..16] {
            let _ = write!(out, "{b:02x}");
        }
        out
    }
}

/// The job id of tick `tick` (epoch s) of entry `name`.
///
/// ```
/// # use queue_core::periodic::tick_job_id;
/// assert_eq!(tick_job_id("nightly", 1_767_225_600).as_str(), "cron-nightly-1767225600");
/// ```
pub fn tick_job_id(name: &str, tick: i64) -> JobId {
    JobId::from_stored(format!("cron-{name}-{tick}"))
}

/// Whether a tick is on time or the newest one missed while no worker ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickKind {
    /// A tick at (or just after) its time.
    Due,
    /// The newest tick missed while no worker ran (the run-once policy): pushed only when an
    /// earlier tick of the entry ran and nothing since.
    Missed,
}

/// What [`Client::enqueue_tick`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticked {
    /// Pushed, this late by Redis's clock (ms).
    Pushed {
        /// Redis's clock at the push minus the tick time.
        late_ms: i64,
    },
    /// This tick, or a later one, was already pushed (by this process or another).
    AlreadyDone,
    /// The entry is registered with another definition, or not at all: not this process's
    /// to run (a newer deploy changed or removed it).
    NotRegistered,
    /// Redis's clock has not reached the tick yet: offer it again shortly.
    Early,
    /// The offer reached Redis too late to count as on time (it waited out a Redis stall, or
    /// this process's clock runs far behind Redis's); nothing was written.
    Stale {
        /// Redis's clock minus the tick time.
        late_ms: i64,
    },
    /// Pushed, over an entry whose `last` tick lay more than a minute ahead of Redis's clock
    /// (planted, or left by a Redis clock that stepped back): trusted, it would have stopped
    /// the entry until then. No tick is pushed before Redis's clock reaches it, so that `last`
    /// was not a tick this entry ran; it is replaced by this one.
    PushedOverFuture {
        /// Redis's clock at the push minus the tick time.
        late_ms: i64,
        /// The `last` tick (epoch s) that was replaced.
        last: i64,
    },
}

impl Client {
    /// Registers `entries` as the periodic entries, forgetting registered entries that are not
    /// among them (their ticks stop). Returns how many were forgotten.
    ///
    /// When queues are spread over a cluster's slots, an entry lives in its queue's slot
    /// (its tick is pushed there atomically), so each slot of the entries' queues is
    /// registered on its own; an entry of a queue none of them uses is not forgotten.
    pub async fn register_periodic(&self, entries: &[PeriodicDefinition]) -> Result<usize> {
        for e in entries {
            e.validate()?;
        }
        if !self.config().spread_queues {
            return self.register_periodic_in_slot(entries).await;
        }
        let mut by_queue: Vec<(&str, Vec<PeriodicDefinition>)> = Vec::new();
        for e in entries {
            let queue = e.job.options.queue.as_deref().unwrap_or(&e.job.queue);
            match by_queue.iter_mut().find(|(q, _)| *q == queue) {
                Some((_, group)) => group.push(e.clone()),
                None => by_queue.push((queue, vec![e.clone()])),
            }
        }
        let mut removed = 0;
        for (queue, group) in by_queue {
            removed += self
                .for_queue(queue)
                .register_periodic_in_slot(&group)
                .await?;
            // A queue fed only by cron is listed too, even if no worker here works it.
            self.note_queue(queue).await;
        }
        Ok(removed)
    }

    /// [`Client::register_periodic`] in this client's slot.
    async fn register_periodic_in_slot(&self, entries: &[PeriodicDefinition]) -> Result<usize> {
        let keys = self.keys();
        let mut conn = self.connection();
        let registered: Vec<String> = match self
            .bounded(
                redis::cmd("SMEMBERS")
                    .arg(keys.periodic())
                    .query_async(&mut conn),
            )
            .await
        {
            // Another type at `periodic`: the script names the key (`Error::WrongType`).
            Err(Error::Redis(e)) if e.code() == Some("WRONGTYPE") => Vec::new(),
            other => other?,
        };
        let removed: Vec<&str> = registered
            .iter()
            .map(String::as_str)
            .filter(|name| !entries.iter().any(|e| e.name == *name))
            .collect();
        scripts::periodic_register(self, entries, &removed).await
    }

    /// Offers tick `tick` (epoch s) of entry `def` (digest `digest`); `next` is the tick after
    /// it, recorded for `inspect`. Pushes the job unless the tick (or a later one) was pushed.
    pub async fn enqueue_tick(
        &self,
        def: &PeriodicDefinition,
        digest: &str,
        tick: i64,
        next: i64,
        kind: TickKind,
    ) -> Result<Ticked> {
        self.enqueue_tick_shifted(def, digest, tick, next, kind, 0, None)
            .await
    }

    /// [`Client::enqueue_tick`] with Redis's clock shifted by `clock_offset_ms` as the script
    /// sees it (the worker's `clock_offset_ms`: tests only, 0 in production), and a tick
    /// that reaches Redis more than `stale_after` late (by Redis's clock) refused as
    /// [`Ticked::Stale`]: under the run-once policy ([`PeriodicDefinition::missed`]) only when
    /// the tick after it is due too. An offer that waited in a frozen Redis is run only if
    /// it is still on time, so a Redis stall does not end in a burst of old ticks.
    #[allow(clippy::too_many_arguments)]
    pub async fn enqueue_tick_shifted(
        &self,
        def: &PeriodicDefinition,
        digest: &str,
        tick: i64,
        next: i64,
        kind: TickKind,
        clock_offset_ms: i64,
        stale_after: Option<Duration>,
    ) -> Result<Ticked> {
        let now = Timestamp::now();
        let now_s = secs_str(now);
        let jid = tick_job_id(&def.name, tick);
        let mut job = def.job.clone();
        job.options.job_id = Some(jid.clone());
        job.options.run_at = None;
        let p = self.prepare(&job, now)?;
        let status = p
            .track
            .then(|| new_status(JobState::Queued, &p.queue, &p.class, &now_s, None, true));
        scripts::periodic_tick(
            &self.for_queue(&p.queue),
            &scripts::PeriodicTick {
                name: &def.name,
                digest,
                tick,
                next,
                kind,
                // The id as pushed: it names its queue when queues are spread.
                jid: p.jid.as_str(),
                queue: &p.queue,
                json: &p.json,
                status: status.as_deref(),
                clock_offset_ms,
                stale_after_ms: stale_after.map_or(0, |d| d.as_millis().max(1) as u64),
                newest_may_run: def.missed == MISSED_RUN_ONCE,
            },
        )
        .await
    }
}
