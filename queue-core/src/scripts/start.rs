//! `start.lua`: status records for tracked jobs taken without one (pushed by another client),
//! created as `running`; cancelled ones are reported.

use crate::client::{Client, secs_str};
use crate::error::Result;
use crate::scripts::lua;
use crate::timestamp::Timestamp;

lua!(START, "start.lua");

/// A tracked job about to run.
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
}

/// Per job, what [`start`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// Marked running: run it.
    Run,
    /// Its record says cancelled: skip it and ack it.
    Cancelled,
}

/// Marks `jobs` running; one answer per job, in order.
pub async fn start(client: &Client, jobs: &[StartJob<'_>]) -> Result<Vec<Started>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let keys = client.keys();
    let mut inv = START.invocation();
    for job in jobs {
        inv.key(keys.status(job.jid));
    }
    inv.arg(secs_str(Timestamp::now()))
        .arg(client.config().status_retention.active.as_secs());
    for job in jobs {
        inv.arg(job.attempt).arg(job.queue).arg(job.class);
    }
    let reply: Vec<i64> = START.call(client, inv).await?;
    if reply.len() != jobs.len() {
        return Err(START.unexpected(reply));
    }
    reply
        .into_iter()
        .map(|flag| match flag {
            1 => Ok(Started::Run),
            0 => Ok(Started::Cancelled),
            other => Err(START.unexpected(other)),
        })
        .collect()
}
