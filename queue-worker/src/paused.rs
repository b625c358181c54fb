//! Paused queues: which of this worker's queues it must not take jobs from.
//!
//! The set lives in Redis (`P paused`, written by `Inspector::pause`/`resume`), so a pause
//! outlives every worker. This process keeps a copy, read at start (before the first fetch),
//! again whenever `pause.lua` publishes its notice on the wake channel (so every worker
//! stops taking from a paused queue within a round trip of the pause), after every
//! (re)subscription, and every [`PAUSED_REFRESH`] in case a notice was lost or another tool
//! changed the set without one. The fetch reads only the copy: while nothing is paused that
//! costs one atomic load, and no Redis command.

use std::collections::HashSet;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the copy is read again without a notice.
pub(crate) const PAUSED_REFRESH: Duration = Duration::from_secs(5);

/// This process's copy of the paused set.
#[derive(Debug, Default)]
pub(crate) struct Paused {
    /// Whether any queue is paused: the fetch's fast path reads only this.
    any: AtomicBool,
    names: RwLock<HashSet<String>>,
}

impl Paused {
    /// Replaces the copy with `names`, as read from Redis; true when that changed it.
    pub(crate) fn set(&self, names: Vec<String>) -> bool {
        let names: HashSet<String> = names.into_iter().collect();
        let any = !names.is_empty();
        // A poisoned lock only means a writer panicked mid-assignment of a whole set; the
        // value is still a set, so carry on with it.
        let mut held = self.names.write().unwrap_or_else(|e| e.into_inner());
        let changed = *held != names;
        *held = names;
        self.any.store(any, Ordering::Release);
        changed
    }

    /// The paused queues, sorted (for logs).
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .names
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// `order` without the paused queues.
    pub(crate) fn skip<'a>(&self, mut order: Vec<&'a str>) -> Vec<&'a str> {
        if !self.any.load(Ordering::Acquire) {
            return order;
        }
        let names = self.names.read().unwrap_or_else(|e| e.into_inner());
        order.retain(|q| !names.contains(*q));
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_queues_are_skipped_and_resumed_ones_come_back() {
        let p = Paused::default();
        assert_eq!(p.skip(vec!["a", "b"]), vec!["a", "b"]);
        assert!(p.set(vec!["a".to_owned()]));
        assert!(!p.set(vec!["a".to_owned()]));
        assert_eq!(p.skip(vec!["a", "b"]), vec!["b"]);
        assert!(p.set(Vec::new()));
        assert_eq!(p.skip(vec!["a", "b"]), vec!["a", "b"]);
    }
}
