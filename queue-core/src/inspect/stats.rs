//! The numbers metrics report (`Sidekiq::Stats`): counters, set sizes, queues, busy.

use redis::Value;
use std::time::Duration;

use super::queues::{add_queue_commands, names, queue_info};
use super::{Inspector, QueueInfo, checked_sum, count, counter, lenient_u64, parse, redis_time};
use crate::error::Result;
use crate::keys::Keys;

/// Lifetime counters and the sizes of the sorted sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Jobs processed, successes and failures (`stat:processed`), as Sidekiq counts.
    pub processed: u64,
    /// Failed executions (`stat:failed`).
    pub failed: u64,
    /// Jobs waiting for a retry (`ZCARD retry`).
    pub retry: u64,
    /// Jobs scheduled for later (`ZCARD schedule`).
    pub scheduled: u64,
    /// Jobs out of retries (`ZCARD dead`).
    pub dead: u64,
}

/// Everything metrics report, read at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    /// Every queue of the `queues` set, sorted by name.
    pub queues: Vec<QueueInfo>,
    /// Counters and set sizes.
    pub totals: Totals,
    /// Jobs waiting over all queues (Sidekiq's `Stats#enqueued`).
    pub enqueued: u64,
    /// Jobs running now: `busy` summed over the registered processes (Sidekiq's
    /// `Stats#workers_size`); a process whose hash expired counts 0.
    pub busy: u64,
}

impl Stats {
    /// The largest queue latency (zero without queues): the worst-off queue.
    ///
    /// ```
    /// use queue_core::inspect::{QueueInfo, Stats};
    /// use std::time::Duration;
    /// let q = |name: &str, secs| QueueInfo { name: name.into(), size: 1, latency: Duration::from_secs(secs) };
    /// let stats = Stats { queues: vec![q("a", 3), q("b", 7)], ..Stats::default() };
    /// assert_eq!(stats.max_latency(), Duration::from_secs(7));
    /// ```
    pub fn max_latency(&self) -> Duration {
        self.queues
            .iter()
            .map(|q| q.latency)
            .max()
            .unwrap_or(Duration::ZERO)
    }
}

/// Adds the five commands [`totals`] reads.
fn add_totals_commands(pipe: &mut redis::Pipeline, keys: &Keys) {
    pipe.cmd("GET")
        .arg(keys.stat_processed())
        .cmd("GET")
        .arg(keys.stat_failed())
        .cmd("ZCARD")
        .arg(keys.retry())
        .cmd("ZCARD")
        .arg(keys.schedule())
        .cmd("ZCARD")
        .arg(keys.dead());
}

/// Reads the replies of [`add_totals_commands`].
fn totals(replies: &[Value], keys: &Keys) -> Result<Totals> {
    let at = |i: usize| replies.get(i).unwrap_or(&Value::Nil);
    Ok(Totals {
        processed: counter(at(0), &keys.stat_processed())?,
        failed: counter(at(1), &keys.stat_failed())?,
        retry: count(at(2), &keys.retry())?,
        scheduled: count(at(3), &keys.schedule())?,
        dead: count(at(4), &keys.dead())?,
    })
}

impl Inspector<'_> {
    /// The lifetime counters and set sizes in one round trip: `GET stat:processed`,
    /// `GET stat:failed`, `ZCARD` of `retry`, `schedule` and `dead`.
    ///
    /// When queues are spread over a cluster's slots, the sum over every queue's slot.
    pub async fn totals(&self) -> Result<Totals> {
        if self.spread() {
            return Ok(self.spread_stats().await?.totals);
        }
        let keys = self.client.keys();
        let mut pipe = redis::pipe();
        add_totals_commands(&mut pipe, keys);
        let replies: Vec<Value> = self.query(&pipe).await?;
        totals(&replies, keys)
    }

    /// Everything metrics report, in two round trips whatever the number of jobs:
    /// 1. `TIME`, `SMEMBERS queues`, `SMEMBERS processes`, and [`Inspector::totals`]'s commands;
    /// 2. per queue `LLEN` + `LINDEX queue -1` (the oldest job), per process `HGET busy`.
    ///
    /// Every command is O(1) in the number of queued jobs (`LINDEX -1` walks from the tail),
    /// so a million waiting jobs cost what ten do.
    ///
    /// When queues are spread over a cluster's slots, each queue's slot is read so
    /// (concurrently) and the results are added up: 2 round trips per queue.
    pub async fn stats(&self) -> Result<Stats> {
        if self.spread() {
            return self.spread_stats().await;
        }
        self.stats_in_slot().await
    }

    /// [`Inspector::stats`] over every queue's slot, added up.
    async fn spread_stats(&self) -> Result<Stats> {
        let slots = self.queue_slots().await?;
        let each = futures_util::future::try_join_all(
            slots
                .iter()
                .map(|slot| async move { Inspector::in_slot(slot).stats_in_slot().await }),
        )
        .await?;
        let mut sum = Stats::default();
        for stats in each {
            let key = "stats of a queue slot";
            let t = &mut sum.totals;
            t.processed = checked_sum(t.processed, stats.totals.processed, key)?;
            t.failed = checked_sum(t.failed, stats.totals.failed, key)?;
            t.retry = checked_sum(t.retry, stats.totals.retry, key)?;
            t.scheduled = checked_sum(t.scheduled, stats.totals.scheduled, key)?;
            t.dead = checked_sum(t.dead, stats.totals.dead, key)?;
            sum.enqueued = checked_sum(sum.enqueued, stats.enqueued, key)?;
            sum.busy = checked_sum(sum.busy, stats.busy, key)?;
            sum.queues.extend(stats.queues);
        }
        sum.queues.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(sum)
    }

    /// [`Inspector::stats`] of this inspector's slot only.
    async fn stats_in_slot(&self) -> Result<Stats> {
        let keys = self.client.keys();
        let mut pipe = redis::pipe();
        pipe.cmd("TIME")
            .cmd("SMEMBERS")
            .arg(keys.queues())
            .cmd("SMEMBERS")
            .arg(keys.processes());
        add_totals_commands(&mut pipe, keys);
        let replies: Vec<Value> = self.query(&pipe).await?;
        let [time, queues, processes, rest @ ..] = replies.as_slice() else {
            return Err(super::unexpected("stats pipeline", &replies));
        };
        let now = redis_time(parse(time, "TIME")?);
        let queues = names(parse(queues, &keys.queues())?, "queues");
        let processes = names(parse(processes, &keys.processes())?, "processes");
        let mut stats = Stats {
            queues: Vec::with_capacity(queues.len()),
            totals: totals(rest, keys)?,
            enqueued: 0,
            busy: 0,
        };
        if queues.is_empty() && processes.is_empty() {
            return Ok(stats);
        }

        let mut pipe = redis::pipe();
        // A queue or process key of another type must not fail the overview: it reads as
        // empty (see `queue_info`) or idle.
        pipe.ignore_errors();
        for q in &queues {
            add_queue_commands(&mut pipe, &keys.queue(q));
        }
        for identity in &processes {
            pipe.cmd("HGET").arg(keys.process(identity)).arg("busy");
        }
        let replies: Vec<Value> = self.query(&pipe).await?;
        let (per_queue, per_process) = replies.split_at(replies.len().min(2 * queues.len()));
        for (name, pair) in queues.into_iter().zip(per_queue.chunks(2)) {
            let key = keys.queue(&name);
            let queue = queue_info(name, &key, pair, now)?;
            stats.enqueued = checked_sum(stats.enqueued, queue.size, &key)?;
            stats.queues.push(queue);
        }
        for (identity, busy) in processes.iter().zip(per_process) {
            // A foreign or half-written hash may hold anything: read it as Sidekiq's `to_i`.
            let busy: Option<String> = redis::from_redis_value_ref(busy).unwrap_or_default();
            let key = keys.process(identity);
            stats.busy = checked_sum(stats.busy, lenient_u64(busy.as_deref()), &key)?;
        }
        Ok(stats)
    }
}
