//! `start.lua`: the jobs a worker just took are marked running, or reported cancelled; tracked
//! jobs taken without a record (pushed by another client) get one.

use crate::client::{Client, secs_str};
use crate::error::Result;
use crate::scripts::{flag, lua};
use crate::timestamp::Timestamp;

lua!(START, "start.lua");

/// A job about to run.
#[derive(Debug, Clone, Copy)]
pub struct StartJob<'a> {
    /// Its id.
    pub jid: &'a str,
    /// Its attempt number (1 on the first run).
    pub attempt: u32,
    /// Its queue.
    pub queue: &'a str,
    /// Its class.
    pub class: &'a str,
    /// Whether its type keeps a status record: one is created when missing.
    pub tracked: bool,
}

/// Per job, what [`start`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Its record now says `running`: run it.
    Running,
    /// Its record says `cancelled`: skip it and ack it.
    Cancelled,
    /// No record (an untracked job, or a key of another type where the record belongs,
    /// left alone): run it.
    NoRecord,
}

/// Marks `jobs` running at `now`; one answer per job, in order.
pub async fn start(client: &Client, jobs: &[StartJob<'_>], now: Timestamp) -> Result<Vec<Started>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let keys = client.keys();
    let mut inv = START.invocation();
    for job in jobs {
        inv.key(keys.status(job.jid));
    }
    inv.arg(secs_str(now))
        .arg(client.config().status_retention.active.as_secs())
        .arg(keys.status_channel());
    for job in jobs {
        inv.arg(job.attempt)
            .arg(job.queue)
            .arg(job.class)
            .arg(flag(job.tracked));
    }
    let reply: Vec<i64> = START.call(client, inv).await?;
    if reply.len() != jobs.len() {
        return Err(START.unexpected(reply));
    }
    reply
        .into_iter()
        .map(|mark| match mark {
            1 => Ok(Started::Running),
            0 => Ok(Started::Cancelled),
            2 => Ok(Started::NoRecord),
            other => Err(START.unexpected(other)),
        })
        .collect()
}
