//! `requeue.lua`: hand a job back from a processing list to the front of its queue.

use crate::client::Client;
use crate::error::Result;
use crate::scripts::{flag, lua};

lua!(REQUEUE, "requeue.lua");

/// One job to hand back.
#[derive(Debug, Clone, Copy)]
pub struct Requeue<'a> {
    /// The identity whose processing list holds the job.
    pub identity: &'a str,
    /// The job exactly as it sits in the processing list.
    pub raw: &'a [u8],
    /// The job to push (the raw entry, or a rewrite of it).
    pub pushed: &'a [u8],
    /// Its queue.
    pub queue: &'a str,
    /// Its id, for its status key.
    pub jid: &'a str,
    /// Whether it has a status record to update.
    pub tracked: bool,
}

/// What [`requeue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeued {
    /// At the front of its queue.
    Queued,
    /// Not in the processing list any more (another worker owns it): nothing was written.
    NotOwned,
    /// Its status record says cancelled (it never started): dropped instead.
    Cancelled,
}

/// Hands `job` back. It runs next: RPUSH puts it at the consuming end, as Sidekiq does.
/// [`Error::WrongType`](crate::Error::WrongType) when its queue key holds another type: nothing was written, the job is still held.
pub async fn requeue(client: &Client, job: &Requeue<'_>) -> Result<Requeued> {
    let keys = client.keys();
    let mut inv = REQUEUE.invocation();
    inv.key(keys.processing(job.identity))
        .key(keys.queue(job.queue))
        .key(keys.queues())
        .key(keys.status(job.jid))
        .arg(job.raw)
        .arg(job.pushed)
        .arg(job.queue)
        .arg(flag(job.tracked))
        .arg(client.config().status_retention.active.as_secs())
        .arg(keys.wake_channel())
        .arg(keys.status_channel());
    match REQUEUE.int(REQUEUE.call(client, inv).await?)? {
        1 => Ok(Requeued::Queued),
        0 => Ok(Requeued::NotOwned),
        2 => Ok(Requeued::Cancelled),
        other => Err(REQUEUE.unexpected(other)),
    }
}
