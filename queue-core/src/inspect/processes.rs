//! Worker processes: Sidekiq's process registry (`Sidekiq::ProcessSet`) and a process's
//! in-flight list.

use serde_json::{Map, Value};

use super::queues::names;
use super::{Entry, Inspector, Listing, Malformed, Page, lenient_u64};
use crate::error::Result;
use crate::timestamp::Timestamp;

/// The `info` field of a process hash: JSON written at registration (`hostname`, `pid`,
/// `concurrency`, `queues`, `tag`, …).
#[derive(Debug, Clone, PartialEq)]
pub enum Info {
    /// The hash has no `info` field (Sidekiq's `ProcessSet` skips such a process).
    Absent,
    /// The parsed object.
    Json(Map<String, Value>),
    /// A value that is not a JSON object.
    Malformed(Malformed),
}

impl Info {
    fn parse(raw: Option<Vec<u8>>) -> Self {
        let Some(raw) = raw else {
            return Info::Absent;
        };
        match serde_json::from_slice::<Map<String, Value>>(&raw) {
            Ok(map) => Info::Json(map),
            Err(e) => Info::Malformed(Malformed {
                raw,
                reason: e.to_string(),
            }),
        }
    }
}

/// One registered process as its hash describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    /// `hostname:pid:nonce`: the member of `processes`, and the key of its hash and of its
    /// in-flight list ([`Inspector::in_flight`]).
    pub identity: String,
    /// The `info` JSON.
    pub info: Info,
    /// Jobs it is running (`busy`; missing or unreadable is 0, like Sidekiq's `to_i`).
    pub busy: u64,
    /// Its last heartbeat (`beat`, epoch seconds), if readable.
    pub beat: Option<Timestamp>,
    /// Whether it is quiet (`quiet` = `"true"`): it takes no new jobs.
    pub quiet: bool,
    /// Resident memory in KiB (`rss`; missing or unreadable is 0).
    pub rss_kib: u64,
}

/// Fields read from each process hash, in this order.
const FIELDS: [&str; 5] = ["info", "busy", "beat", "quiet", "rss"];

type Fields = (
    Option<Vec<u8>>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Inspector<'_> {
    /// Every process of Sidekiq's `processes` set whose hash still exists, sorted by
    /// identity, like `Sidekiq::ProcessSet#each`. A member whose hash expired (the process
    /// died without unregistering) is left out; unlike `ProcessSet.new`, nothing is pruned.
    ///
    /// Two round trips: `SMEMBERS processes`, then `HMGET` per process.
    pub async fn processes(&self) -> Result<Vec<ProcessInfo>> {
        if self.spread() {
            return self.spread_processes().await;
        }
        let keys = self.client.keys();
        let mut pipe = redis::pipe();
        pipe.cmd("SMEMBERS").arg(keys.processes());
        let (raw,): (Vec<Vec<u8>>,) = self.query(&pipe).await?;
        let identities = names(raw, "processes");
        if identities.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for identity in &identities {
            pipe.cmd("HMGET")
                .arg(keys.process(identity))
                .arg(&FIELDS[..]);
        }
        let replies: Vec<Fields> = self.query(&pipe).await?;
        Ok(identities
            .into_iter()
            .zip(replies)
            .filter_map(|(identity, (info, busy, beat, quiet, rss))| {
                if info.is_none()
                    && busy.is_none()
                    && beat.is_none()
                    && quiet.is_none()
                    && rss.is_none()
                {
                    return None;
                }
                Some(ProcessInfo {
                    identity,
                    info: Info::parse(info),
                    busy: lenient_u64(busy.as_deref()),
                    beat: beat
                        .and_then(|b| b.trim().parse::<f64>().ok())
                        .filter(|b| b.is_finite())
                        .map(Timestamp::from_secs_f64),
                    quiet: quiet.as_deref() == Some("true"),
                    rss_kib: lenient_u64(rss.as_deref()),
                })
            })
            .collect())
    }

    /// One page of the jobs process `identity` has fetched and not yet settled (its
    /// `processing:` list), most recently fetched first, with the list's length. One round
    /// trip, O(start + page size).
    pub async fn in_flight(&self, identity: &str, page: Page) -> Result<Listing<Entry>> {
        if self.spread()
            && let Some(slot) = self.slot_of_process(identity).await?
        {
            return Box::pin(Inspector::in_slot(&slot).in_flight(identity, page)).await;
        }
        self.list_page(&self.client.keys().processing(identity), page)
            .await
    }
}
