//! The exchange: one task, one round trip per cycle, acks out and jobs in.
//!
//! Each cycle sends the acks that piled up since the last one and asks for as many jobs as
//! there is room for, in one `ack_fetch.lua` call. At most two calls are out at a time, so
//! everything that finishes meanwhile rides on the next one: the busier the worker, the
//! bigger the batches, and the cheaper each job is for Redis.
//!
//! Prefetch: the room asked for is the free slots plus, while slots keep turning over, up to
//! `prefetch` jobs to wait for the next free slot. They are in the processing list like any
//! fetched job (a crash loses none of them), and they let the fetch overlap the jobs that
//! are running instead of waiting for them. A job that waits longer than
//! `prefetch_max_wait` (1 s), or is still waiting at shutdown, is handed back.
//!
//! When the queues are empty, the task waits for a wake-up that our enqueue scripts publish,
//! or for `idle_poll` to catch jobs pushed by other clients: no sleep-polling on the hot
//! path.

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use queue_core::scripts::{AckFetch, AckFetched, Taken, ack_fetch};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio_util::task::TaskTracker;

use crate::ack::{ACK_BATCH, Ack};
use crate::membership::Identity;
use crate::shared::Shared;

/// Longest idle wait when `idle_poll` is too large to add to a time.
const MAX_IDLE_WAIT: Duration = Duration::from_secs(24 * 3600);
/// Longest pause after a failed call (Redis down): backs off from 50 ms up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What one call did.
struct Cycle {
    /// Per ack: whether it landed (false: the job had been recovered by another worker).
    acked: Vec<bool>,
    taken: Taken,
}

/// Calls out at once. With two, Redis runs one while this process handles the reply of the
/// other and runs its jobs, so the two sides work in parallel instead of taking turns.
const CALLS_IN_FLIGHT: usize = 2;

/// A call that came back, with what it carried.
struct Returned {
    result: queue_core::Result<Cycle>,
    acks: Vec<Ack>,
    permits: Option<OwnedSemaphorePermit>,
    ident: Arc<Identity>,
    asked: usize,
}

/// Runs until the worker is quiet and every runner has reported (the last acks flushed).
/// Runners go to `running`.
pub(crate) async fn run(shared: Arc<Shared>, running: TaskTracker) {
    // The process's room: every queue slot's exchange takes from it (`room.rs`).
    let room = Arc::clone(&shared.room);
    let mut freed = room.watch();
    // One permit per job running.
    let slots = Arc::clone(&shared.run_slots);
    let (ack_sender, mut acks) = mpsc::unbounded_channel();
    // Handed to runners; dropped at quiet, so the channel closes when the last one ends.
    let mut sender = Some(ack_sender);
    let ack_cap = ACK_BATCH.max(shared.config.fetch_batch);
    let mut pending: Vec<Ack> = Vec::with_capacity(ack_cap);
    let mut calls = FuturesUnordered::new();
    // Jobs the process finished (over all its queues) when this exchange last fetched:
    // the turnover since then sizes the prefetch. Counted over the process, a queue that
    // has not fetched for a while sees more room, not less, so no queue's prefetch keeps
    // the others' jobs out.
    let mut finished_at_last_fetch = room.finished();
    // Set when a fetch found fewer jobs than it asked for: until a wake-up or this deadline
    // (`idle_poll` after that fetch), only acks go out.
    let mut idle: Option<tokio::time::Instant> = None;
    let mut closed = false;
    let mut backoff = Duration::from_millis(50);
    loop {
        let quiet = shared.quiet.is_cancelled();
        if quiet {
            sender = None;
        }
        collect(&mut acks, &mut pending, ack_cap);
        let turnover = room.finished().wrapping_sub(finished_at_last_fetch);
        // Nothing is taken under a fenced identity (`fence.rs`) while a fresh one registers.
        let want = if quiet || shared.membership.current().fenced.is_cancelled() {
            0
        } else {
            room_for_in_use(&shared, room.in_use(), turnover)
        };
        if calls.len() < CALLS_IN_FLIGHT && (!pending.is_empty() || (want > 0 && idle.is_none())) {
            if calls.is_empty() {
                // Runners finishing right now send their acks within a few polls: yield once
                // so they share this round trip (no timer, so a lone ack or an idle pickup is
                // not delayed).
                tokio::task::yield_now().await;
                collect(&mut acks, &mut pending, ack_cap);
            }
            let (acks_now, ident, want) =
                next_batch(&mut pending, shared.membership.current(), want, ack_cap);
            // Worked out again as the places are taken: another slot's exchange may have
            // taken some since (the yield above, or another thread), and the concurrency
            // bounds them together.
            let permits = match want {
                0 => None,
                _ => room.take(|in_use| room_for_in_use(&shared, in_use, turnover)),
            };
            let asked = permits.as_ref().map_or(0, |p| p.num_permits());
            if asked > 0 || !acks_now.is_empty() {
                if asked > 0 {
                    finished_at_last_fetch = room.finished();
                }
                let shared = Arc::clone(&shared);
                calls.push(async move {
                    let result = call(&shared, &ident, &acks_now, asked).await;
                    Returned {
                        result,
                        acks: acks_now,
                        permits,
                        ident,
                        asked,
                    }
                });
                continue;
            }
            // Nothing to send (the room was gone after all): wait below rather than spin.
        }
        if closed && calls.is_empty() {
            // Every sender is gone (quiet, and no runner is left) and the last acks landed.
            break;
        }
        let returned = tokio::select! {
            biased;
            Some(returned) = calls.next(), if !calls.is_empty() => returned,
            ack = acks.recv(), if !closed => {
                match ack {
                    Some(ack) => pending.push(ack),
                    None => closed = true,
                }
                continue;
            }
            _ = shared.quiet.cancelled(), if !quiet => continue,
            _ = freed.changed(), if !quiet => continue,
            // Only when a fetch can go out at once (room, and a call free): otherwise a
            // wake-up stays stored until one can.
            _ = shared.wake.notified(),
                if idle.is_some() && want > 0 && calls.len() < CALLS_IN_FLIGHT && !quiet => {
                idle = None;
                continue;
            }
            _ = tokio::time::sleep_until(idle.unwrap_or_else(tokio::time::Instant::now)),
                if idle.is_some() && want > 0 && calls.len() < CALLS_IN_FLIGHT && !quiet => {
                idle = None;
                continue;
            }
        };
        let Returned {
            result,
            acks: sent,
            permits,
            ident,
            asked,
        } = returned;
        // The places this call took and found no job for go back now, and every exchange
        // hears of it: another slot's may have found the room taken by this call, and waits
        // for exactly this.
        let filled = match &result {
            Ok(Cycle {
                taken: Taken::Jobs(jobs),
                ..
            }) => jobs.len(),
            _ => 0,
        };
        let permits = split(permits, filled);
        if asked > filled {
            room.freed_by_ack();
        }
        match result {
            Ok(cycle) => {
                backoff = Duration::from_millis(50);
                report_rejected(&sent, &cycle.acked);
                match cycle.taken {
                    Taken::Jobs(jobs) => {
                        if asked > 0 {
                            idle = (jobs.len() < asked).then(|| {
                                let now = tokio::time::Instant::now();
                                now.checked_add(shared.config.idle_poll)
                                    .unwrap_or(now + MAX_IDLE_WAIT)
                            });
                        }
                        if !jobs.is_empty() {
                            let (shared, slots, acks, tracker) = (
                                Arc::clone(&shared),
                                Arc::clone(&slots),
                                sender.clone(),
                                running.clone(),
                            );
                            running.spawn(async move {
                                crate::dispatch::dispatch(
                                    &shared, &ident, jobs, permits, &slots, acks, &tracker,
                                )
                                .await;
                            });
                        }
                    }
                    Taken::LeaseLost => {
                        crate::heartbeat::lease_lost(&shared, &ident).await;
                    }
                }
            }
            Err(e) => {
                if matches!(e, queue_core::Error::WrongType { .. }) {
                    // This identity's own processing list holds another type (planted, or a
                    // name collision): nothing can be acked or taken under it again. Its
                    // jobs stop, and a fresh identity (a fresh list) carries on.
                    tracing::error!(error = %e, identity = %ident.name,
                        "this process's processing list is unusable; taking a new identity");
                    crate::heartbeat::reregister(&shared, &ident).await;
                }
                // Acks of an earlier identity too: the script's LREM finds whether its list
                // still holds each job (not reaped yet), so sending them again is safe, and
                // a job that succeeded is not run again.
                pending.extend(sent.into_iter().map(|mut a| {
                    a.resent = true;
                    a
                }));
                tracing::warn!(error = %e, acks = pending.len(), retry_in_ms = backoff.as_millis() as u64,
                    "fetch failed; pending acks are kept and sent again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Takes the acks of the next call out of `pending`, at most `cap`, and says whose they are
/// and how many jobs the call may take.
///
/// Acks of an earlier identity (the lease was renewed meanwhile) go in calls of their own,
/// which take no jobs. While acks are left over after this batch, the call only acks, so
/// the backlog (jobs finished but still in the processing list) shrinks instead of growing.
fn next_batch(
    pending: &mut Vec<Ack>,
    current: Arc<Identity>,
    want: usize,
    cap: usize,
) -> (Vec<Ack>, Arc<Identity>, usize) {
    let earlier = pending.iter().find(|a| a.ident != current);
    let own = earlier.is_none();
    let ident = earlier.map_or(current, |a| Arc::clone(&a.ident));
    let mut batch = Vec::with_capacity(pending.len().min(cap));
    let mut rest = Vec::with_capacity(pending.len().saturating_sub(cap));
    for a in pending.drain(..) {
        if batch.len() < cap && a.ident == ident {
            batch.push(a);
        } else {
            rest.push(a);
        }
    }
    *pending = rest;
    let want = if own && pending.is_empty() { want } else { 0 };
    (batch, ident, want)
}

/// Moves the acks already sent into `pending`, up to `cap`.
fn collect(acks: &mut mpsc::UnboundedReceiver<Ack>, pending: &mut Vec<Ack>, cap: usize) {
    while pending.len() < cap {
        match acks.try_recv() {
            Ok(ack) => pending.push(ack),
            Err(_) => break,
        }
    }
}

/// How many jobs to ask for: the free slots, plus jobs to wait for the next free slot, as
/// many as finished since the last fetch (`turnover`) for each call that may be out, up to
/// `prefetch`. Slots that do not turn over (long jobs) therefore get no jobs queued behind
/// them, while fast jobs find the next ones already here when the other call returns.
///
/// `in_use` is the process's, over all its queue slots: the concurrency bounds them
/// together.
fn room_for_in_use(shared: &Shared, in_use: usize, turnover: usize) -> usize {
    let config = &shared.config;
    room_for(
        config.concurrency,
        config.prefetch(),
        config.fetch_batch,
        in_use,
        turnover,
    )
}

/// [`room_for_in_use`] as arithmetic: `in_use` jobs are taken and not settled (running or waiting).
fn room_for(
    concurrency: usize,
    prefetch: usize,
    fetch_batch: usize,
    in_use: usize,
    turnover: usize,
) -> usize {
    (concurrency + (turnover * CALLS_IN_FLIGHT).min(prefetch))
        .saturating_sub(in_use)
        .min(fetch_batch)
}

/// One permit per job; the ones nobody needs are released here.
fn split(permits: Option<OwnedSemaphorePermit>, n: usize) -> Vec<OwnedSemaphorePermit> {
    let Some(mut all) = permits else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        if all.num_permits() == 1 {
            out.push(all);
            break;
        }
        match all.split(1) {
            Some(p) => out.push(p),
            None => break,
        }
    }
    out
}

fn report_rejected(acks: &[Ack], acked: &[bool]) {
    for (a, ok) in acks.iter().zip(acked) {
        if *ok {
            continue;
        }
        if a.resent {
            // The first try may have landed before its reply was lost.
            tracing::debug!(job_id = %a.jid, "ack sent again found the job gone: already acked or recovered");
        } else {
            tracing::warn!(job_id = %a.jid,
                "late result rejected: the job is no longer in this process's list (recovered by another worker, or lost with Redis's data)");
        }
    }
}

/// One `ack_fetch.lua` call: applies `acks`, takes up to `want` jobs, and registers them as
/// in flight before anyone can audit the list.
///
/// At-least-once: if the reply is lost (timeout, dropped connection) after Redis ran the
/// script, the jobs it took sit unregistered in the processing list and the audit hands them
/// back; the acks are sent again.
async fn call(
    shared: &Shared,
    ident: &Identity,
    acks: &[Ack],
    want: usize,
) -> queue_core::Result<Cycle> {
    let script_acks: Vec<_> = acks.iter().map(Ack::as_script_ack).collect();
    let queues = if want > 0 {
        // Paused queues are left out here, in Rust: ack_fetch.lua takes its queue keys in KEYS.
        shared.paused.skip(shared.config.queues.order())
    } else {
        Vec::new()
    };
    let request = AckFetch {
        identity: &ident.name,
        acks: &script_acks,
        want,
        queues: &queues,
        lease_ttl: shared.config.lease_ttl,
        now: queue_core::Timestamp::now(),
    };
    let _gate = shared.in_flight.gate.read().await;
    let sent = std::time::Instant::now();
    let AckFetched { acked, taken } = ack_fetch(&shared.client, &request).await?;
    if want > 0 && matches!(taken, Taken::Jobs(_)) {
        // The script renewed the lease (PEXPIRE) before taking jobs.
        ident.renewed_at(sent);
    }
    // Under the gate: the audit sees an acked entry either listed and held, or neither, and
    // a taken one listed and held.
    for a in acks {
        shared.in_flight.remove(&a.raw);
    }
    if let Taken::Jobs(jobs) = &taken {
        for job in jobs {
            shared.in_flight.add(job);
        }
    }
    Ok(Cycle { acked, taken })
}

#[cfg(test)]
mod tests {
    use super::{Ack, Identity, next_batch, room_for};
    use std::sync::Arc;

    fn ident(name: &str) -> Arc<Identity> {
        Arc::new(Identity::named(name.into()))
    }

    fn ack(ident: &Arc<Identity>, n: u8) -> Ack {
        Ack {
            ident: Arc::clone(ident),
            raw: vec![n],
            jid: n.to_string(),
            tracked: false,
            retried: false,
            result: Some(String::new()),
            resent: false,
            retention: std::time::Duration::from_secs(60),
        }
    }

    #[test]
    fn a_batch_holds_one_identity_and_fetches_only_when_nothing_is_left() {
        let (old, now) = (ident("old"), ident("now"));
        let mut pending = vec![ack(&now, 1), ack(&old, 2), ack(&now, 3), ack(&old, 4)];
        // An earlier identity's acks go first, alone, and take no jobs.
        let (batch, whose, want) = next_batch(&mut pending, Arc::clone(&now), 10, 200);
        assert_eq!(whose, old);
        assert_eq!(batch.iter().map(|a| a.raw[0]).collect::<Vec<_>>(), [2, 4]);
        assert_eq!(want, 0);
        // Then the current identity's, with the fetch.
        let (batch, whose, want) = next_batch(&mut pending, Arc::clone(&now), 10, 200);
        assert_eq!(whose, now);
        assert_eq!(batch.len(), 2);
        assert_eq!(want, 10);
        assert!(pending.is_empty());
        // Over the cap: the call only acks until the backlog is gone.
        let mut pending: Vec<Ack> = (0..5).map(|n| ack(&now, n)).collect();
        let (batch, _, want) = next_batch(&mut pending, Arc::clone(&now), 10, 3);
        assert_eq!((batch.len(), want, pending.len()), (3, 0, 2));
        let (batch, _, want) = next_batch(&mut pending, Arc::clone(&now), 10, 3);
        assert_eq!((batch.len(), want, pending.len()), (2, 10, 0));
    }

    #[test]
    fn room_is_free_slots_plus_what_turned_over() {
        // Idle worker: its free slots, nothing ahead.
        assert_eq!(room_for(10, 100, 100, 0, 0), 10);
        // Slots turning over fast: ahead by as many as finished since the last fetch, for
        // each of the two calls that may be out.
        assert_eq!(room_for(10, 100, 100, 10, 7), 14);
        assert_eq!(room_for(10, 100, 100, 4, 7), 20);
        // Bounded by the prefetch setting and by one fetch batch.
        assert_eq!(room_for(10, 5, 100, 10, 50), 5);
        assert_eq!(room_for(10, 0, 100, 10, 50), 0);
        assert_eq!(room_for(200, 200, 100, 0, 0), 100);
        // Every slot held by a long job, nothing finished: nothing queued behind them.
        assert_eq!(room_for(10, 100, 100, 10, 0), 0);
        // More in use than the room (jobs prefetched earlier): none.
        assert_eq!(room_for(10, 100, 100, 25, 3), 0);
        assert_eq!(room_for(10, 100, 100, 25, 10), 5);
    }
}
