//! `kill.lua`: an operator moves a member of the schedule or retry set to the dead set.

use std::time::Duration;

use crate::client::{Client, secs_str};
use crate::error::Result;
use crate::inspect::JobSet;
use crate::payload::JobPayload;
use crate::scripts::{Acted, lua};
use crate::timestamp::Timestamp;

lua!(KILL, "kill.lua");

/// Most jobs kept in the dead set: Sidekiq's `dead_max_jobs` default, [`kill`]'s cap, and
/// the worker's default.
pub const DEAD_MAX_JOBS: u64 = 10_000;
/// Oldest death kept in the dead set: Sidekiq's `dead_timeout_in_seconds`, [`kill`]'s cap,
/// and the worker's default.
pub const DEAD_MAX_AGE: Duration = Duration::from_secs(180 * 24 * 3600);

/// Moves `member` (an exact member of `set`) to the dead set, scored `now` (Redis's clock),
/// and trims the dead set as a failure does. A member of the dead set is already there
/// ([`Acted::Gone`] is not right for it, so it is reported [`Acted::Done`] without a call);
/// one that is not job JSON is left alone ([`Acted::NotAJob`]).
pub async fn kill(client: &Client, set: JobSet, member: &[u8], now: Timestamp) -> Result<Acted> {
    if set == JobSet::Dead {
        return Ok(Acted::Done);
    }
    let Ok(job) = JobPayload::from_json(member) else {
        return Ok(Acted::NotAJob);
    };
    let keys = client.keys();
    let mut inv = KILL.invocation();
    inv.key(set.key(keys))
        .key(keys.dead())
        .key(keys.status(job.jid.as_str()));
    inv.arg(member)
        .arg(secs_str(now))
        .arg(DEAD_MAX_JOBS)
        .arg(DEAD_MAX_AGE.as_secs())
        .arg(client.config().status_retention.finished.as_secs())
        .arg(keys.status_channel());
    let reply: redis::Value = KILL.call(client, inv).await?;
    match KILL.int(reply)? {
        1 => Ok(Acted::Done),
        0 => Ok(Acted::Gone),
        2 => Ok(Acted::Cancelled),
        other => Err(KILL.unexpected(other)),
    }
}
