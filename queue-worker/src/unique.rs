//! Giving a unique job's key back at the moment its lifetime names (`queue_core::unique`).
//!
//! The key and its lifetime travel in the job's JSON (`unique_key`, `unique_until`), so any
//! worker can release it. A release deletes the key only while it still names this job
//! (`unique_release.lua`), so releasing twice, or after the TTL let another job take the key,
//! changes nothing. A release that fails is logged: the key then lasts until its TTL, which
//! delays the next equal enqueue but never runs a job twice.

use queue_core::JobPayload;
use queue_core::scripts;
use queue_core::unique::{UNIQUE_KEY_FIELD, UNIQUE_UNTIL_FIELD, UniqueUntil};

use crate::shared::Shared;

/// A point in a job's life at which its key may be given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Moment {
    /// A worker is about to run it.
    Started,
    /// It succeeded.
    Succeeded,
    /// It went to the dead set.
    Died,
}

/// A unique job's key, lifetime and id: what a release needs, kept apart from the job so
/// that the job itself can be moved into a settling call.
#[derive(Debug)]
pub(crate) struct Held {
    key: String,
    until: UniqueUntil,
    jid: String,
}

/// The job's uniqueness key and lifetime, when it is a unique job.
pub(crate) fn held(job: &JobPayload) -> Option<Held> {
    let key = job.extra.get(UNIQUE_KEY_FIELD)?.as_str()?;
    let until = job
        .extra
        .get(UNIQUE_UNTIL_FIELD)
        .and_then(|v| v.as_str())
        .and_then(UniqueUntil::parse)
        // An unreadable lifetime: the default one, released on success.
        .unwrap_or(UniqueUntil::Succeeded);
    Some(Held {
        key: key.to_owned(),
        until,
        jid: job.jid.as_str().to_owned(),
    })
}

/// Whether a key of lifetime `until` is given back at `moment`. Death releases every kind,
/// as a cancel does (`Client::cancel`): a dead job will not run, so it must not block others.
fn releases(until: UniqueUntil, moment: Moment) -> bool {
    matches!(
        (until, moment),
        (_, Moment::Died)
            | (UniqueUntil::Started, Moment::Started)
            | (UniqueUntil::Succeeded, Moment::Succeeded)
    )
}

impl Held {
    /// Releases the key if its lifetime ends at `moment`.
    pub(crate) async fn release_at(&self, shared: &Shared, moment: Moment) {
        if !releases(self.until, moment) {
            return;
        }
        if let Err(e) = scripts::unique_release(&shared.client, &self.key, &self.jid).await {
            tracing::warn!(job_id = %self.jid, error = %e,
                "could not release the unique key; it lasts until its TTL");
        }
    }
}

/// Releases `job`'s key if its lifetime ends at `moment`; nothing for other jobs.
pub(crate) async fn release_at(shared: &Shared, job: &JobPayload, moment: Moment) {
    if let Some(held) = held(job) {
        held.release_at(shared, moment).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lifetime_ends_at_its_moment_and_death_ends_all() {
        use UniqueUntil as U;
        assert!(releases(U::Started, Moment::Started));
        assert!(!releases(U::Started, Moment::Succeeded));
        assert!(!releases(U::Succeeded, Moment::Started));
        assert!(releases(U::Succeeded, Moment::Succeeded));
        assert!(!releases(U::Expired, Moment::Started));
        assert!(!releases(U::Expired, Moment::Succeeded));
        for until in [U::Started, U::Succeeded, U::Expired] {
            assert!(releases(until, Moment::Died));
        }
    }
}
