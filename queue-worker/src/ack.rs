//! Acks: what a runner reports when its job succeeded, and how a batch of them is written
//! into an `ack_fetch.lua` call.
//!
//! At-least-once: until the ack lands, the job stays in the processing list, so a crash
//! before then means it runs again, never that it is lost.

use std::sync::Arc;
use std::time::Duration;

use crate::membership::Identity;

/// Most acks sent in one script call.
pub(crate) const ACK_BATCH: usize = 200;

/// One job to finish.
#[derive(Debug)]
pub(crate) struct Ack {
    pub(crate) ident: Arc<Identity>,
    pub(crate) raw: Vec<u8>,
    pub(crate) jid: String,
    pub(crate) tracked: bool,
    /// Whether an earlier attempt failed (its error is cleared from the status record).
    pub(crate) retried: bool,
    /// Result JSON, `""` for none, or `None` when the job was cancelled and did not run.
    pub(crate) result: Option<String>,
    /// Sent before in a call whose reply was lost: it may have landed then.
    pub(crate) resent: bool,
    /// How long its finished record is kept.
    pub(crate) retention: Duration,
}

impl Ack {
    /// How long a succeeded job of type `reg` keeps its record: its type's own retention,
    /// else the client's.
    pub(crate) fn retention_of(
        reg: &crate::registry::Registration,
        client: &queue_core::Client,
    ) -> Duration {
        reg.status_retention
            .unwrap_or(client.config().status_retention.finished)
    }

    /// This ack as `ack_fetch.lua` takes it.
    pub(crate) fn as_script_ack(&self) -> queue_core::scripts::Ack<'_> {
        use queue_core::scripts::AckTracking;
        queue_core::scripts::Ack {
            raw: &self.raw,
            jid: &self.jid,
            tracking: match (self.tracked, self.retried) {
                (false, _) => AckTracking::Untracked,
                (true, false) => AckTracking::Tracked,
                (true, true) => AckTracking::TrackedAfterRetry,
            },
            result: self.result.as_deref(),
            retention: self.retention,
        }
    }
}
