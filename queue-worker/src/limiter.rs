//! Rate limiters shared by every worker process, modelled on Sidekiq Enterprise's: named,
//! so one can be per tenant or per API (`"stripe"`, `format!("db:{tenant}")`), and usable
//! inside a handler or on a job type.
//!
//! - **concurrent** `(name, n)`: at most `n` holders at once; the slot is held until the
//!   permit is dropped (or, if the process dies, until its lease expires: `slot_leases.rs`);
//! - **window** `(name, n, interval)`: at most `n` admissions in any `interval` (sliding);
//! - **bucket** `(name, n, interval)`: `n` per `interval`, evenly spaced.
//!
//! A handler waits for an admission up to [`DEFAULT_WAIT`] (`.wait(d)` changes it), asking
//! again when the limiter says one frees up (plus a growing random part). Still over the
//! limit, it returns the limiter's error, which it passes on with `?`: the job goes back to the
//! schedule set for about as long as the limiter says an admission takes to free up (plus
//! jitter), **without** using a retry or counting a failure, as `defer.lua` does for
//! `Job::CONCURRENCY_LIMIT`.
//!
//! ```no_run
//! use queue_core::Job;
//! use queue_worker::{Failure, JobContext, Limit, Worker};
//! use serde::{Deserialize, Serialize};
//! use std::time::Duration;
//! #[derive(Serialize, Deserialize)]
//! struct Charge { tenant: String }
//! impl Job for Charge { const NAME: &'static str = "Charge"; }
//! #[derive(Serialize, Deserialize)]
//! struct Report;
//! impl Job for Report { const NAME: &'static str = "Report"; }
//! async fn report(_: Report, _: JobContext) -> Result<(), Failure> { Ok(()) }
//!
//! async fn charge(job: Charge, ctx: JobContext) -> Result<(), Failure> {
//!     // 100 calls per second to the payment API, across every dyno.
//!     ctx.limiter("stripe").window(100, Duration::from_secs(1)).await?;
//!     // At most 5 at once per tenant; the slot is held while `_slot` lives.
//!     let _slot = ctx.limiter(&format!("db:{}", job.tenant)).concurrent(5).await?;
//!     Ok(())
//! }
//!
//! # fn demo(max_db_connections: u32) {
//! // Or on a job type, with numbers read at run time:
//! let builder = Worker::builder()
//!     .register(charge)
//!     .register(report)
//!     .limit::<Report>("reports-db", Limit::Concurrent(max_db_connections));
//! # }
//! ```

use futures_util::future::BoxFuture;
use queue_core::Client;
use queue_core::scripts::{self, Admission, HeldSlot, LimiterKind, SlotSet};
use std::sync::Arc;
use std::time::Duration;

use crate::context::JobContext;
use crate::failure::Failure;
use crate::registry::{Attempt, Perform};
use crate::slot_leases::SlotLeases;

/// How long a handler waits for an admission by default before its job is rescheduled
/// (Sidekiq Enterprise's `wait_timeout` default is also 5 s).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// The first pause between two asks, doubled after each refusal up to [`MAX_ASK_JITTER`]: the
/// jobs waiting on one limiter spread out instead of asking all at once.
const FIRST_ASK_JITTER: Duration = Duration::from_millis(20);
/// The largest random part of the pause between two asks.
const MAX_ASK_JITTER: Duration = Duration::from_millis(500);

/// A named limiter, from [`JobContext::limiter`].
#[derive(Debug)]
pub struct Limiter<'a> {
    ctx: &'a JobContext,
    name: String,
    wait: Duration,
}

/// A concurrent limiter's slot: given back when dropped.
#[derive(Debug)]
#[must_use = "the slot is given back as soon as the permit is dropped"]
pub struct LimiterPermit {
    /// `None` in a test context (`JobContext::for_test`), where limits do not apply.
    client: Option<Client>,
    name: String,
    holder: String,
    /// Renews the slot with the process's lease until the permit drops.
    leases: SlotLeases,
}

impl Drop for LimiterPermit {
    fn drop(&mut self) {
        let Some(client) = self.client.clone() else {
            return;
        };
        let (name, holder) = (
            std::mem::take(&mut self.name),
            std::mem::take(&mut self.holder),
        );
        self.leases.forget(&HeldSlot {
            set: SlotSet::Limiter(name.clone()),
            holder: holder.clone(),
        });
        // Drop cannot wait: the release runs on its own. If it fails, the slot expires.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = scripts::limiter_release(&client, &name, &holder).await {
                    tracing::warn!(limiter = %name, error = %e, "could not release a limiter slot; it expires on its own");
                }
            });
        }
    }
}

impl JobContext {
    /// The limiter called `name`, shared by every process on this Redis (a name may carry a
    /// tenant or an API: `"stripe"`, `"db:tenant-42"`).
    pub fn limiter(&self, name: &str) -> Limiter<'_> {
        Limiter {
            ctx: self,
            name: name.to_owned(),
            wait: DEFAULT_WAIT,
        }
    }
}

impl Limiter<'_> {
    /// Waits at most `wait` for an admission (default [`DEFAULT_WAIT`]; zero: ask once), then
    /// returns the over-limit error that reschedules the job.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// At most `n` of these at once across every process; held until the permit is dropped.
    pub async fn concurrent(self, n: u32) -> Result<LimiterPermit, Failure> {
        let holder = format!("{}:{}", self.ctx.id, fastrand::u64(..));
        // The slot lasts as long as the lease, renewed with it while the permit lives: a
        // process that dies holding it gives it back when its jobs are recovered.
        let leases = self.ctx.slot_leases.clone();
        let kind = LimiterKind::Concurrent {
            limit: n,
            lifetime: leases.lifetime(),
        };
        self.admit(kind, &holder).await?;
        if self.ctx.client().is_some() {
            leases.hold(HeldSlot {
                set: SlotSet::Limiter(self.name.clone()),
                holder: holder.clone(),
            });
        }
        Ok(LimiterPermit {
            client: self.ctx.client().cloned(),
            name: self.name,
            holder,
            leases,
        })
    }

    /// At most `n` admissions in any `interval` across every process.
    pub async fn window(self, n: u32, interval: Duration) -> Result<(), Failure> {
        self.admit(
            LimiterKind::Window { limit: n, interval },
            &fastrand::u64(..).to_string(),
        )
        .await
        .map(|_| ())
    }

    /// `n` admissions per `interval`, evenly spaced, across every process.
    pub async fn bucket(self, n: u32, interval: Duration) -> Result<(), Failure> {
        self.admit(LimiterKind::Bucket { limit: n, interval }, "")
            .await
            .map(|_| ())
    }

    /// Like [`Limiter::window`], returning the admission's time on Redis's clock (epoch ms).
    pub async fn window_at(self, n: u32, interval: Duration) -> Result<u64, Failure> {
        self.admit(
            LimiterKind::Window { limit: n, interval },
            &fastrand::u64(..).to_string(),
        )
        .await
    }

    /// Asks until admitted or [`Limiter::wait`] runs out. Between asks it sleeps until the
    /// limiter says an admission frees up (or 10 ms when it cannot say) plus a random part
    /// that doubles after each refusal: waiting holds this job's worker slot, never a
    /// limiter's, and costs one script call per ask.
    async fn admit(&self, kind: LimiterKind, holder: &str) -> Result<u64, Failure> {
        // A handler called directly in a test has no Redis: its limiters admit at once.
        let Some(client) = self.ctx.client() else {
            return Ok(queue_core::Timestamp::now().as_secs_f64() as u64 * 1000);
        };
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut jitter = FIRST_ASK_JITTER;
        loop {
            let hint = match scripts::limiter_acquire(client, &self.name, kind, holder).await {
                Ok(Admission::Admitted { at_ms }) => return Ok(at_ms),
                Ok(Admission::Over(hint)) => hint,
                // Redis trouble: an ordinary failure (a retry), not a free pass.
                Err(e) => return Err(Failure::from(e)),
            };
            let pause = hint.unwrap_or(Duration::from_millis(10))
                + Duration::from_millis(fastrand::u64(0..=jitter.as_millis() as u64));
            if tokio::time::Instant::now() + pause > deadline || self.ctx.is_cancelled() {
                return Err(Failure::over_limit(&self.name, hint));
            }
            tokio::select! {
                _ = self.ctx.cancelled() => return Err(Failure::over_limit(&self.name, hint)),
                _ = tokio::time::sleep(pause) => {}
            }
            jitter = (jitter * 2).min(MAX_ASK_JITTER);
        }
    }
}

/// A limit set on a job type with [`WorkerBuilder::limit`](crate::WorkerBuilder::limit):
/// every job of the type passes it before its handler runs (a concurrent slot is held until
/// the handler returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// At most this many at once.
    Concurrent(u32),
    /// At most `n` admissions in any interval (a sliding window).
    Window(u32, Duration),
    /// `n` per interval, evenly spaced.
    Bucket(u32, Duration),
}

/// `perform` with the limits `limits` (name, limit) passed first, in order.
pub(crate) fn limited(perform: Arc<Perform>, limits: Vec<(String, Limit)>) -> Arc<Perform> {
    let limits = Arc::new(limits);
    Arc::new(move |args, ctx: JobContext| {
        let asking = ctx.clone();
        let inner = perform(args, ctx)?;
        let limits = Arc::clone(&limits);
        let fut: BoxFuture<'static, Attempt> = Box::pin(async move {
            let mut held = Vec::new();
            for (name, limit) in limits.iter() {
                let limiter = asking.limiter(name);
                match *limit {
                    Limit::Concurrent(n) => held.push(limiter.concurrent(n).await?),
                    Limit::Window(n, per) => limiter.window(n, per).await?,
                    Limit::Bucket(n, per) => limiter.bucket(n, per).await?,
                }
            }
            let out = inner.await;
            drop(held);
            out
        });
        Ok(fut)
    })
}

/// The delay before an over-limit job is looked at again: what the limiter said (or 100 ms
/// when it cannot know), plus up to half of it again (at least 100 ms) as jitter, so that
/// the jobs waiting on one limiter do not all come back at once; at most 5 s.
///
/// ```
/// # use queue_worker::limiter::over_limit_delay;
/// # use std::time::Duration;
/// let d = over_limit_delay(Some(Duration::from_millis(400)));
/// assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(600));
/// assert!(over_limit_delay(Some(Duration::from_secs(60))) <= Duration::from_secs(5));
/// ```
pub fn over_limit_delay(wait: Option<Duration>) -> Duration {
    let base = wait.unwrap_or(Duration::from_millis(100));
    let spread = (base.as_millis() as u64 / 2).max(100);
    (base + Duration::from_millis(fastrand::u64(0..=spread))).min(Duration::from_secs(5))
}
