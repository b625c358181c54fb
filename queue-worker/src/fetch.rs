//! The fetcher: takes jobs into this process's processing list and starts them.
//!
//! One task, no sleep-polling on the hot path: it fetches as many jobs as it has free
//! slots (one script call), and when the queues are empty it waits for a wake-up that our
//! enqueue scripts publish, or for `idle_poll` to catch jobs pushed by other clients.

use queue_core::{JobPayload, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use crate::ack::Ack;
use crate::in_flight::{MARK_CANCELLED, MARK_RUNNING, Taken};
use crate::membership::Identity;
use crate::runner::{self, Started};
use crate::settle::{self, Deferral};
use crate::shared::Shared;

/// How often the fetcher yields to let finishing jobs free their slots before it fetches.
const COALESCE_YIELDS: usize = 4;

/// Adds free slots to `permits`, up to `max` in all.
fn take_free(slots: &Arc<Semaphore>, permits: &mut Vec<OwnedSemaphorePermit>, max: usize) {
    while permits.len() < max {
        match Arc::clone(slots).try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
}

/// Longest pause after a failed fetch (Redis down): backs off from 50 ms up to this.
const MAX_FETCH_BACKOFF: Duration = Duration::from_secs(5);

/// Runs until the worker goes quiet.
pub(crate) async fn run(
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    acks: mpsc::UnboundedSender<Ack>,
    running: TaskTracker,
) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let first = tokio::select! {
            biased;
            _ = shared.quiet.cancelled() => break,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let mut permits = vec![first];
        // Slots free up one by one as jobs finish; yielding a few times lets the runners
        // that are finishing right now release theirs, so one fetch takes several jobs
        // instead of one (fewer round trips and less Redis CPU per job under load, and no
        // timer: an idle worker is not delayed).
        for _ in 0..COALESCE_YIELDS {
            take_free(&slots, &mut permits, shared.config.fetch_batch);
            if permits.len() * 2 >= shared.config.concurrency.min(shared.config.fetch_batch) {
                break;
            }
            tokio::task::yield_now().await;
        }
        take_free(&slots, &mut permits, shared.config.fetch_batch);
        let ident = shared.membership.current();
        match fetch(&shared, &ident, permits.len()).await {
            Ok(Taken::Jobs(jobs)) if jobs.is_empty() => {
                backoff = Duration::from_millis(50);
                drop(permits);
                tokio::select! {
                    biased;
                    _ = shared.quiet.cancelled() => break,
                    _ = shared.wake.notified() => {},
                    _ = tokio::time::sleep(shared.config.idle_poll) => {},
                }
            }
            Ok(Taken::Jobs(jobs)) => {
                backoff = Duration::from_millis(50);
                dispatch(&shared, &ident, jobs, permits, &acks, &running).await;
            }
            Ok(Taken::LeaseLost) => {
                drop(permits);
                crate::heartbeat::reregister(&shared, &ident).await;
            }
            Err(e) => {
                drop(permits);
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "fetch failed");
                tokio::select! {
                    _ = shared.quiet.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {},
                }
                backoff = (backoff * 2).min(MAX_FETCH_BACKOFF);
            }
        }
    }
}

/// Takes up to `n` jobs and registers them as in flight before anyone can audit the list.
///
/// At-least-once: if the reply is lost (timeout, dropped connection) after Redis moved the
/// jobs, they sit unregistered in the processing list and the audit hands them back.
async fn fetch(shared: &Shared, ident: &Identity, n: usize) -> queue_core::Result<Taken> {
    let mut inv = queue_core::scripts::FETCH.prepare_invoke();
    inv.key(&ident.lease).key(&ident.processing);
    for q in shared.config.queues.order() {
        inv.key(shared.keys.queue(q));
    }
    inv.arg(n)
        .arg(shared.config.lease_ttl.as_millis() as u64)
        .arg(shared.keys.status_prefix())
        .arg(format!("{:.6}", Timestamp::now().as_secs_f64()));
    let _gate = shared.in_flight.gate.lock().await;
    let mut conn = shared.client.connection();
    let reply: Vec<redis::Value> = shared.client.bounded(inv.invoke_async(&mut conn)).await?;
    shared.in_flight.register_taken("fetch.lua", reply, true)
}

/// Sorts fetched entries into bad input, unknown types and runnable jobs, marks the
/// runnable ones running in one call, and starts them.
async fn dispatch(
    shared: &Arc<Shared>,
    ident: &Arc<Identity>,
    taken: Vec<(Vec<u8>, i64)>,
    mut permits: Vec<OwnedSemaphorePermit>,
    acks: &mpsc::UnboundedSender<Ack>,
    running: &TaskTracker,
) {
    let mut runnable = Vec::with_capacity(taken.len());
    for (raw, mark) in taken {
        let job = match JobPayload::from_json(&raw) {
            Ok(job) => job,
            Err(e) => {
                let reason = format!("not valid job JSON: {e}");
                if let Err(e) = settle::bury_malformed(shared, ident, &raw, &reason).await {
                    tracing::error!(error = %e, "could not bury a malformed entry; the audit will retry");
                }
                shared.in_flight.remove(&raw);
                continue;
            }
        };
        match shared.registry.get(&job.class) {
            Some(reg) => runnable.push((raw, job, reg.clone(), mark)),
            None => {
                // During a deploy old and new code run side by side: a type this process does
                // not know is retried later: not dropped, not counted, and no retry used up.
                tracing::warn!(job_id = %job.jid, class = %job.class, "unknown job type; deferred to the retry set");
                if let Err(e) =
                    settle::defer(shared, ident, &raw, &job, Deferral::UnknownClass).await
                {
                    tracing::error!(error = %e, "could not defer an unknown job; the audit will retry");
                }
                shared.in_flight.remove(&raw);
            }
        }
    }
    let run_flags = match mark_started(shared, &runnable).await {
        Ok(flags) => flags,
        Err(e) => {
            // The jobs are safe in the processing list; run them anyway rather than strand
            // them until a restart: the status record is advisory.
            tracing::warn!(error = %e, "could not mark jobs running; running them anyway");
            vec![true; runnable.len()]
        }
    };
    for ((raw, job, reg, _), run) in runnable.into_iter().zip(run_flags) {
        let tracked = reg.track_status;
        if !run {
            tracing::info!(job_id = %job.jid, "job was cancelled before it started; skipping");
            // The acker removes it from the in-flight set once the ack has landed.
            let _ = acks.send(Ack {
                ident: Arc::clone(ident),
                raw,
                jid: job.jid.to_string(),
                tracked,
                retried: job.error_message.is_some(),
                result: None,
            });
            continue;
        }
        let Some(permit) = permits.pop() else {
            // Unreachable by construction (one permit per fetched job). Leave the job to the
            // audit, which hands it back to its queue.
            tracing::error!(job_id = %job.jid, "no free slot for a fetched job");
            shared.in_flight.remove(&raw);
            continue;
        };
        let started = Started {
            ident: Arc::clone(ident),
            raw,
            job,
            reg,
        };
        running.spawn(runner::run(
            Arc::clone(shared),
            started,
            permit,
            acks.clone(),
        ));
    }
}

/// Marks tracked jobs running; returns for each job whether to run it (false: cancelled).
async fn mark_started(
    shared: &Shared,
    jobs: &[(Vec<u8>, JobPayload, crate::registry::Registration, i64)],
) -> queue_core::Result<Vec<bool>> {
    let mut flags: Vec<bool> = jobs.iter().map(|j| j.3 != MARK_CANCELLED).collect();
    // `fetch.lua` already marked the jobs that have a record; only tracked jobs without one
    // (pushed by another client, or not JSON to Lua) need a record made here.
    let tracked: Vec<usize> = (0..jobs.len())
        .filter(|i| {
            jobs[*i].2.track_status && jobs[*i].3 != MARK_RUNNING && jobs[*i].3 != MARK_CANCELLED
        })
        .collect();
    if tracked.is_empty() {
        return Ok(flags);
    }
    let mut inv = queue_core::scripts::START.prepare_invoke();
    for &i in &tracked {
        inv.key(shared.keys.status(jobs[i].1.jid.as_str()));
    }
    inv.arg(format!("{:.6}", Timestamp::now().as_secs_f64()))
        .arg(shared.client.config().status_retention.active.as_secs());
    for &i in &tracked {
        let job = &jobs[i].1;
        inv.arg(runner::attempt_of(job))
            .arg(&job.queue)
            .arg(&job.class);
    }
    let mut conn = shared.client.connection();
    let reply: Vec<i64> = shared.client.bounded(inv.invoke_async(&mut conn)).await?;
    for (&i, flag) in tracked.iter().zip(reply) {
        flags[i] = flag == 1;
    }
    Ok(flags)
}
