//! Acks: what a runner reports when its job succeeded, and how a batch of them is written
//! into `ack_fetch.lua`'s arguments.
//!
//! At-least-once: until the ack lands, the job stays in the processing list, so a crash
//! before then means it runs again, never that it is lost.

use std::sync::Arc;

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
}

impl Ack {
    /// The script's three entries for this job: raw job, tracking flag, result.
    pub(crate) fn push_args(&self, inv: &mut redis::ScriptInvocation<'_>) {
        inv.arg(&self.raw)
            .arg(match (self.tracked, self.retried) {
                (false, _) => "0",
                (true, false) => "1",
                (true, true) => "2",
            })
            .arg(self.result.as_deref().unwrap_or("-"));
    }
}
