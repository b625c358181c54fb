//! The jobs this process is handling right now, by their exact bytes in the processing list.
//!
//! A processing-list entry that is not in this set belongs to nobody: its fetch reply was
//! lost (a timeout or a dropped connection after Redis ran the script), or settling it gave
//! up. The audit (run by the reaper loop) hands such entries back to their queues, so a
//! live worker never strands a job until its next restart. Fetch and reap register what
//! they took while holding `gate` for reading, and the audit reads the list holding it for
//! writing, so an entry taken a moment ago is never mistaken for an orphan.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Multiset of raw entries held in memory.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    held: Mutex<HashMap<Vec<u8>, usize>>,
    /// Read-held across "take into the processing list" and "register" (several calls may
    /// be out at once); write-held by the audit while it compares. See the module docs.
    pub(crate) gate: tokio::sync::RwLock<()>,
}

impl InFlight {
    pub(crate) fn add(&self, raw: &[u8]) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        *held.entry(raw.to_vec()).or_default() += 1;
    }

    pub(crate) fn remove(&self, raw: &[u8]) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(raw) {
            *n -= 1;
            if *n == 0 {
                held.remove(raw);
            }
        }
    }

    /// The entries of `listed` (a processing list's contents) that nobody holds.
    pub(crate) fn orphans(&self, listed: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        listed
            .into_iter()
            .filter(|raw| match held.get_mut(raw) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            })
            .collect()
    }
}

/// `ack_fetch.lua`'s mark: the status record was marked running.
pub(crate) const MARK_RUNNING: i64 = 1;
/// `ack_fetch.lua`'s mark: the status record says cancelled.
pub(crate) const MARK_CANCELLED: i64 = 0;
/// No mark: no record, not JSON, or a script that does not mark (`reap.lua`).
pub(crate) const MARK_UNKNOWN: i64 = 2;

/// What a script that moves jobs into a processing list (`ack_fetch.lua`, `reap.lua`) answered.
pub(crate) enum Taken {
    /// The jobs moved (possibly none) with their marks, now registered as in flight.
    Jobs(Vec<(Vec<u8>, i64)>),
    /// The caller's lease had expired: nothing was moved.
    LeaseLost,
}

impl InFlight {
    /// Reads a `{1, job, …}` / `{0}` reply and registers the jobs it names (with
    /// `ack_fetch.lua`'s marks, which follow each job, when `marked`). Call it with `gate` held,
    /// from the same critical section as the script call.
    pub(crate) fn register_taken(
        &self,
        script: &'static str,
        reply: Vec<redis::Value>,
        marked: bool,
    ) -> queue_core::Result<Taken> {
        let mut items = reply.into_iter();
        match items.next() {
            Some(redis::Value::Int(1)) => {
                let mut jobs = Vec::new();
                while let Some(item) = items.next() {
                    let redis::Value::BulkString(raw) = item else {
                        continue;
                    };
                    let mark = if marked {
                        match items.next() {
                            Some(redis::Value::Int(m)) => m,
                            _ => MARK_UNKNOWN,
                        }
                    } else {
                        MARK_UNKNOWN
                    };
                    self.add(&raw);
                    jobs.push((raw, mark));
                }
                Ok(Taken::Jobs(jobs))
            }
            Some(redis::Value::Int(0)) => Ok(Taken::LeaseLost),
            other => Err(queue_core::Error::UnexpectedScriptReply {
                script,
                reply: format!("{other:?}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphans_respect_multiplicity() {
        let f = InFlight::default();
        f.add(b"a");
        f.add(b"b");
        f.remove(b"b");
        let listed = vec![b"a".to_vec(), b"a".to_vec(), b"b".to_vec()];
        assert_eq!(f.orphans(listed), vec![b"a".to_vec(), b"b".to_vec()]);
    }
}
