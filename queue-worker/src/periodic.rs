//! Periodic (cron) jobs: entries registered on the builder or from `PERIODIC_JOBS`, and the
//! loop that offers each tick to Redis.
//!
//! Every worker process runs the loop for every entry; which one pushes a tick is decided
//! in Redis (`periodic_tick.lua` moves the entry's `last` tick forward in the same step as the
//! push), so a tick is pushed exactly once however many processes run, start, or die with
//! SIGKILL, and with no leader to elect or lose. A tick's job id is `cron-<name>-<epoch s>`.
//!
//! ```no_run
//! use queue_core::{Client, Job};
//! use queue_worker::{Failure, JobContext, Missed, Periodic, Worker};
//! # use serde::{Deserialize, Serialize};
//! #[derive(Serialize, Deserialize)]
//! struct NightlyReport;
//! impl Job for NightlyReport { const NAME: &'static str = "NightlyReport"; }
//!
//! # async fn demo(client: Client) -> Result<(), queue_worker::Error> {
//! let worker = Worker::builder()
//!     .register(|_: NightlyReport, _: JobContext| async { Ok::<_, Failure>(()) })
//!     // 02:30 every day, Berlin time (DST handled), and once after an outage.
//!     .periodic(Periodic::new("nightly-report", "30 2 * * *", "Europe/Berlin", &NightlyReport)?
//!         .missed(Missed::RunOnce))
//!     .build(client)?;
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use queue_core::periodic::{PeriodicDefinition, TickKind, Ticked};
use queue_core::{EnqueueOptions, Job, NewJob};
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::shared::retry_transient;

/// The longest a tick may be late and still count as on time: ticks later than this (all
/// workers were down) follow the entry's [`Missed`] policy. Shorter for entries whose ticks
/// come more often: at most the time between two ticks.
pub const MAX_GRACE: Duration = Duration::from_secs(60);

/// The longest the loop sleeps before it looks at the clock again (a far tick, a clock step).
const MAX_NAP: Duration = Duration::from_secs(30);

/// How long to wait before offering again a tick Redis's clock has not reached.
const EARLY_RETRY: Duration = Duration::from_millis(20);
/// How much later than its grace a tick may reach Redis (by Redis's clock) and still be
/// pushed: room for this process's clock running behind Redis's. Later than that, the offer
/// waited out a Redis stall, and pushing it would add a burst of old ticks after the stall.
pub const STALE_SLACK: Duration = Duration::from_secs(5);

/// What happens to ticks missed while no worker ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missed {
    /// They are not run (Sidekiq Enterprise's and asynq's behaviour).
    #[default]
    Skip,
    /// The newest missed tick runs once when a worker is back.
    RunOnce,
}

impl Missed {
    fn as_str(self) -> &'static str {
        match self {
            Self::Skip => queue_core::periodic::MISSED_SKIP,
            Self::RunOnce => queue_core::periodic::MISSED_RUN_ONCE,
        }
    }
}

/// A periodic entry: a name, a cron expression in a time zone, and the job each tick pushes.
#[derive(Debug, Clone)]
pub struct Periodic {
    def: PeriodicDefinition,
    cron: Cron,
    tz: Tz,
    missed: Missed,
}

impl Periodic {
    /// An entry pushing `job` at each tick of `cron` (5 fields, or 6 with seconds first) in
    /// time zone `tz` (an IANA name such as `"UTC"` or `"America/New_York"`).
    pub fn new<J: Job>(name: &str, cron: &str, tz: &str, job: &J) -> Result<Self> {
        Self::untyped(name, cron, tz, NewJob::typed(job, EnqueueOptions::new())?)
    }

    /// An entry pushing the untyped `job` (its `options.queue` and `retry` apply; an id or run
    /// time set there is ignored: the tick decides both).
    pub fn untyped(name: &str, cron: &str, tz: &str, job: NewJob) -> Result<Self> {
        let parsed = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(cron)
            .map_err(|e| Error::InvalidSetting {
                name: "periodic cron expression",
                reason: format!("{cron:?}: {e}"),
            })?;
        let zone = tz.parse::<Tz>().map_err(|e| Error::InvalidSetting {
            name: "periodic time zone",
            reason: format!("{tz:?}: {e}"),
        })?;
        let def = PeriodicDefinition {
            name: name.to_owned(),
            cron: cron.to_owned(),
            tz: tz.to_owned(),
            missed: Missed::Skip.as_str().to_owned(),
            job,
        };
        def.validate()?;
        Ok(Self {
            def,
            cron: parsed,
            tz: zone,
            missed: Missed::Skip,
        })
    }

    /// Sets the policy for ticks missed while no worker ran (default [`Missed::Skip`]).
    pub fn missed(mut self, missed: Missed) -> Self {
        self.missed = missed;
        self.def.missed = missed.as_str().to_owned();
        self
    }

    /// The entry's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// The first tick strictly after `t`.
    fn tick_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The last tick at or before `t`.
    fn tick_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.tz);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// How late a tick may be and still be on time: the time between two ticks, at most
    /// [`MAX_GRACE`].
    fn grace(&self, now: DateTime<Utc>) -> Duration {
        let gap = self.tick_after(now).and_then(|a| {
            self.tick_after(a)
                .map(|b| (b - a).to_std().unwrap_or(MAX_GRACE))
        });
        gap.unwrap_or(MAX_GRACE).min(MAX_GRACE)
    }
}

/// One entry of `PERIODIC_JOBS` (a JSON array).
#[derive(Debug, Deserialize)]
struct ConfiguredEntry {
    name: String,
    cron: String,
    #[serde(default = "utc")]
    tz: String,
    class: String,
    #[serde(default)]
    args: Vec<serde_json::Value>,
    #[serde(default)]
    queue: Option<String>,
    #[serde(default)]
    missed: Missed,
    #[serde(default = "tracked")]
    track_status: bool,
}

fn utc() -> String {
    "UTC".to_owned()
}

fn tracked() -> bool {
    true
}

/// Reads periodic entries from JSON such as
/// `[{"name":"nightly","cron":"30 2 * * *","tz":"Europe/Berlin","class":"NightlyReport","args":[],"missed":"run_once"}]`
/// (`tz` defaults to UTC, `queue` to `default`, `missed` to `skip`).
///
/// ```
/// let entries = queue_worker::periodic_from_json(
///     r#"[{"name":"tick","cron":"* * * * * *","class":"queue::Noop"}]"#,
/// ).unwrap();
/// assert_eq!(entries[0].name(), "tick");
/// ```
pub fn periodic_from_json(json: &str) -> Result<Vec<Periodic>> {
    let entries: Vec<ConfiguredEntry> =
        serde_json::from_str(json).map_err(|e| Error::InvalidSetting {
            name: "PERIODIC_JOBS",
            reason: e.to_string(),
        })?;
    entries
        .into_iter()
        .map(|e| {
            let mut job = NewJob::new(e.class, e.args);
            job.track_status = e.track_status;
            if let Some(q) = e.queue {
                job.queue = q;
            }
            Ok(Periodic::untyped(&e.name, &e.cron, &e.tz, job)?.missed(e.missed))
        })
        .collect()
}

/// An entry's place in the loop: the next tick to offer.
struct Slot {
    entry: Periodic,
    digest: String,
    next: Option<DateTime<Utc>>,
}

/// The loop offering every entry's ticks; one per worker process.
pub(crate) struct PeriodicLoop {
    client: queue_core::Client,
    slots: Vec<Slot>,
    clock_offset_ms: i64,
}

impl PeriodicLoop {
    /// A loop for `entries` (none: the loop returns at once).
    pub(crate) fn new(
        client: queue_core::Client,
        entries: Vec<Periodic>,
        clock_offset_ms: i64,
    ) -> Self {
        let slots = entries
            .into_iter()
            .map(|entry| Slot {
                digest: entry.def.digest(),
                entry,
                next: None,
            })
            .collect();
        Self {
            client,
            slots,
            clock_offset_ms,
        }
    }

    /// Registers this process's entries (forgetting removed ones) before the loop starts.
    ///
    /// A key of another type in the way (`periodic`, `periodic:NAME`: another app's, under
    /// the same prefix) is logged and this process offers no ticks; it still works its
    /// queues. Exiting instead would stop every job for a registry only cron entries need.
    pub(crate) async fn register(&mut self) -> Result<()> {
        if self.slots.is_empty() {
            return Ok(());
        }
        let defs: Vec<PeriodicDefinition> =
            self.slots.iter().map(|s| s.entry.def.clone()).collect();
        let removed = match retry_transient("registering periodic entries", || {
            self.client.register_periodic(&defs)
        })
        .await
        {
            Ok(removed) => removed,
            Err(e @ queue_core::Error::WrongType { .. }) => {
                tracing::error!(error = %e,
                    "periodic entries not registered; this process pushes no periodic jobs until the key is removed and it restarts");
                self.slots.clear();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        tracing::info!(entries = defs.len(), removed, "periodic entries registered");
        Ok(())
    }

    /// Offers each tick when it comes, until `stop`.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        if self.slots.is_empty() {
            return;
        }
        let now = Utc::now();
        for slot in &mut self.slots {
            let grace = chrono::Duration::from_std(slot.entry.grace(now)).unwrap_or_default();
            if slot.entry.missed == Missed::RunOnce
                && let Some(missed) = slot.entry.tick_at_or_before(now - grace)
            {
                offer(
                    &self.client,
                    self.clock_offset_ms,
                    slot,
                    missed,
                    TickKind::Missed,
                    &stop,
                )
                .await;
            }
            // Ticks inside the grace window are on time: a process that starts just after a
            // tick (a restart, a deploy) still pushes it if nobody did.
            slot.next = slot.entry.tick_after(now - grace);
        }
        loop {
            let Some(soonest) = self.slots.iter().filter_map(|s| s.next).min() else {
                return;
            };
            let wait = (soonest - Utc::now())
                .to_std()
                .unwrap_or_default()
                .min(MAX_NAP);
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            let now = Utc::now();
            for slot in &mut self.slots {
                let Some(tick) = slot.next.filter(|t| *t <= now) else {
                    continue;
                };
                let grace = chrono::Duration::from_std(slot.entry.grace(now)).unwrap_or_default();
                if now - tick <= grace {
                    offer(
                        &self.client,
                        self.clock_offset_ms,
                        slot,
                        tick,
                        TickKind::Due,
                        &stop,
                    )
                    .await;
                } else {
                    // This process stalled past the grace: the ticks it slept through are
                    // missed here (another process may have pushed them).
                    tracing::warn!(entry = slot.entry.name(), tick = %tick, "periodic tick missed by this process");
                }
                let mut next = slot.entry.tick_after(tick);
                // Skip, bounded, to the first tick still inside the grace window.
                for _ in 0..10_000 {
                    match next {
                        Some(t) if now - t > grace => next = slot.entry.tick_after(t),
                        _ => break,
                    }
                }
                slot.next = next;
            }
        }
    }
}

/// Offers one tick until Redis answers (a Redis error is retried while the tick is still on
/// time; an `Early` answer means this process's clock runs ahead of Redis's).
async fn offer(
    client: &queue_core::Client,
    clock_offset_ms: i64,
    slot: &Slot,
    tick: DateTime<Utc>,
    kind: TickKind,
    stop: &CancellationToken,
) {
    let name = slot.entry.name();
    let next = slot.entry.tick_after(tick).map_or(0, |t| t.timestamp());
    let mut backoff = Duration::from_millis(50);
    let mut failures = 0;
    while failures < 100 {
        match client
            .enqueue_tick_shifted(
                &slot.entry.def,
                &slot.digest,
                tick.timestamp(),
                next,
                kind,
                clock_offset_ms,
                Some(slot.entry.grace(tick) + STALE_SLACK),
            )
            .await
        {
            Ok(Ticked::Pushed { late_ms }) => {
                tracing::info!(
                    entry = name,
                    tick = tick.timestamp(),
                    late_ms,
                    "periodic job enqueued"
                );
                return;
            }
            Ok(Ticked::PushedOverFuture { late_ms, last }) => {
                tracing::warn!(
                    entry = name,
                    tick = tick.timestamp(),
                    late_ms,
                    replaced_last = last,
                    "periodic job enqueued; the entry's last tick lay in the future (planted, or Redis's clock stepped back) and was replaced"
                );
                return;
            }
            Ok(Ticked::AlreadyDone) => return,
            Ok(Ticked::Stale { late_ms }) => {
                tracing::warn!(
                    entry = name,
                    tick = tick.timestamp(),
                    late_ms,
                    "periodic tick reached Redis too late (a Redis stall?); not pushed"
                );
                return;
            }
            Ok(Ticked::NotRegistered) => {
                tracing::debug!(
                    entry = name,
                    "periodic entry registered with another definition; not pushed here"
                );
                return;
            }
            Ok(Ticked::Early) => {
                // Not counted as a failure: a process whose clock runs seconds ahead of
                // Redis's waits for Redis to reach the tick rather than give it up (it used to
                // give up after 2 s, so with every clock that far ahead no tick ever ran).
                if (Utc::now() - tick).to_std().unwrap_or_default() > MAX_GRACE {
                    tracing::warn!(
                        entry = name,
                        tick = tick.timestamp(),
                        "periodic tick still ahead of Redis's clock after a minute; this process's clock runs fast"
                    );
                    return;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(EARLY_RETRY) => {}
                }
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(entry = name, error = %e, "could not offer a periodic tick; retrying");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                if (Utc::now() - tick).to_std().unwrap_or_default() > slot.entry.grace(Utc::now()) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Report;
    impl Job for Report {
        const NAME: &'static str = "Report";
    }

    #[test]
    fn ticks_follow_the_time_zone_and_grace_follows_the_gap() {
        let e = Periodic::new("morning", "0 9 * * *", "America/New_York", &Report).unwrap();
        let jan = Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0).unwrap();
        // 09:00 EST is 14:00 UTC in January, 13:00 UTC (EDT) in July.
        assert_eq!(
            e.tick_after(jan),
            Some(Utc.with_ymd_and_hms(2026, 1, 15, 14, 0, 0).unwrap())
        );
        let jul = Utc.with_ymd_and_hms(2026, 7, 15, 12, 0, 0).unwrap();
        assert_eq!(
            e.tick_after(jul),
            Some(Utc.with_ymd_and_hms(2026, 7, 15, 13, 0, 0).unwrap())
        );
        assert_eq!(e.grace(jan), MAX_GRACE);
        let fast = Periodic::new("fast", "*/2 * * * * *", "UTC", &Report).unwrap();
        assert_eq!(fast.grace(jan), Duration::from_secs(2));
        assert_eq!(
            fast.tick_at_or_before(Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 3).unwrap()),
            Some(Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 2).unwrap())
        );
    }

    #[test]
    fn bad_expressions_zones_and_names_are_refused() {
        assert!(Periodic::new("x", "not cron", "UTC", &Report).is_err());
        assert!(Periodic::new("x", "* * * * *", "Mars/Olympus", &Report).is_err());
        assert!(Periodic::new("no spaces", "* * * * *", "UTC", &Report).is_err());
        assert!(periodic_from_json("{}").is_err());
        let e = periodic_from_json(
            r#"[{"name":"n","cron":"0 2 * * *","class":"C","missed":"run_once","queue":"low"}]"#,
        )
        .unwrap();
        assert_eq!(e[0].missed, Missed::RunOnce);
        assert_eq!(e[0].def.job.queue, "low");
        assert_eq!(e[0].def.tz, "UTC");
    }
}
