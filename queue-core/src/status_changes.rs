//! What a long poll waits on: the status records it watches announce their changes.
//!
//! A long poll reads the record through [`scripts::watch`](crate::scripts::watch), which marks
//! it watched (`watched_until`) in the same call. Until that time has passed, every script
//! that changes the record publishes `<rev> <status key>` on
//! [`Keys::status_channel`](crate::Keys::status_channel); records nobody watches publish
//! nothing, so the worker's hot path pays one more field in a read it makes anyway. A web
//! process subscribes once ([`Client::status_changes`]) and wakes its own waiters.
//!
//! Pub/sub delivers at most once: a change made while the subscription is down is not
//! redelivered, so a subscriber reads the watched records once after every (re)connect
//! ([`Inspector::status_revs`](crate::Inspector::status_revs)).

use futures_util::{Stream, StreamExt};

use crate::client::Client;
use crate::error::Result;
use crate::job_id::JobId;
use crate::keys::Keys;

/// One announced change: job `job`'s status record is now at `rev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// The job whose record changed.
    pub job: JobId,
    /// The record's `rev` after the change.
    pub rev: u64,
}

impl StatusChange {
    /// Reads a message of the status channel (`<rev> <status key>`); `None` if it is not one
    /// of ours.
    ///
    /// ```
    /// use queue_core::keys::Keys;
    /// use queue_core::status_changes::StatusChange;
    /// let keys = Keys::new("{app}:");
    /// let id = queue_core::JobId::new();
    /// let message = format!("7 {}", keys.status(id.as_str()));
    /// let change = StatusChange::parse(&keys, message.as_bytes()).unwrap();
    /// assert_eq!((change.job, change.rev), (id, 7));
    /// assert_eq!(StatusChange::parse(&keys, b"7 queue:default"), None);
    /// ```
    pub fn parse(keys: &Keys, message: &[u8]) -> Option<Self> {
        let message = std::str::from_utf8(message).ok()?;
        let (rev, key) = message.split_once(' ')?;
        let job = JobId::parse(keys.job_of_status(key)?).ok()?;
        Some(Self {
            job,
            rev: rev.parse().ok()?,
        })
    }
}

impl Client {
    /// A new pub/sub connection subscribed to the status channel, once this returns: yields
    /// each announced change of a watched record. The stream ends when the connection drops;
    /// changes made until the next subscription are not redelivered.
    pub async fn status_changes(&self) -> Result<impl Stream<Item = StatusChange> + Send + use<>> {
        let messages = self.subscription(self.keys().status_channel()).await?;
        let keys = self.keys().clone();
        Ok(messages.filter_map(move |msg| {
            std::future::ready(StatusChange::parse(&keys, msg.get_payload_bytes()))
        }))
    }
}
