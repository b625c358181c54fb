//! `delete.lua`: an operator removes members of the schedule, retry or dead set, with their
//! status records.

use crate::client::Client;
use crate::error::Result;
use crate::inspect::JobSet;
use crate::payload::JobPayload;
use crate::scripts::{Acted, flag, lua};

lua!(DELETE, "delete.lua");

/// Removes each of `members` (exact members of `set`) and the status record that describes
/// it (one whose state is the set's, or cancelled). One code per member, in order:
/// [`Acted::Done`] or [`Acted::Gone`]. Entries that are not job JSON are deleted too (their
/// record too when an id can be read from them).
pub async fn delete(client: &Client, set: JobSet, members: &[&[u8]]) -> Result<Vec<Acted>> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let keys = client.keys();
    let set_key = set.key(keys);
    let mut inv = DELETE.invocation();
    inv.key(&set_key);
    inv.arg(keys.status_channel()).arg(match set {
        JobSet::Schedule => "scheduled",
        JobSet::Retry => "retrying",
        JobSet::Dead => "dead",
    });
    for member in members {
        let jid = match JobPayload::from_json(member) {
            Ok(job) => Some(job.jid),
            Err(_) => JobPayload::recover_jid(member),
        };
        match &jid {
            Some(jid) => inv.key(keys.status(jid.as_str())),
            None => inv.key(&set_key),
        };
        inv.arg(*member).arg(flag(jid.is_some()));
    }
    let reply: redis::Value = DELETE.call(client, inv).await?;
    DELETE
        .codes(reply, members.len())?
        .into_iter()
        .map(|code| match code {
            1 => Ok(Acted::Done),
            0 => Ok(Acted::Gone),
            other => Err(DELETE.unexpected(other)),
        })
        .collect()
}
