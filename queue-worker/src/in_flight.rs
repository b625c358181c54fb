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
