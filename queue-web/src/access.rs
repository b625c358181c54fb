//! Who may read a job's status: the capability-URL model and the application's hook.
//!
//! # Capability URLs
//! A job id made by this queue is a UUID v4 (122 random bits from the operating system's
//! CSPRNG), so its status URL cannot be guessed or enumerated: knowing the URL is the
//! permission to read it, like a shared-document link. That is enough for many apps
//! ([`CapabilityUrl`]). The status record never holds the job's arguments, and the status
//! route never reads the job payload, so a leaked URL shows a state, progress, a result and an
//! error message, nothing the caller sent.
//!
//! # The hook
//! When the URL alone is not enough (ids from foreign clients are shorter; URLs end up in
//! logs and browser history; results can be private), the application passes an [`Access`]
//! hook to [`StatusState::new`](crate::StatusState::new). It sees the request's head (so it
//! can read what an authentication middleware put into the extensions, or a header) and the
//! status record (whose `owner` was recorded at enqueue with
//! [`EnqueueOptions::owner`](queue_core::EnqueueOptions::owner)), and answers yes or no.
//!
//! A "no" is answered exactly like an unknown or malformed id: `404` with the same body, so a
//! caller cannot learn whether an id exists. (A malformed id is refused before Redis is
//! asked, so it answers a little faster; that tells the caller nothing it did not know,
//! since the id syntax is public.)

use axum::http::request::Parts;
use queue_core::JobStatus;
use std::fmt;

/// Decides whether the request described by `parts` may read the status of a job.
///
/// Closures `Fn(&Parts, &JobStatus) -> bool` implement it:
///
/// ```
/// use axum::http::request::Parts;
/// use queue_core::JobStatus;
/// use queue_web::Access;
///
/// #[derive(Clone)]
/// struct User { id: String } // put into the extensions by the app's auth middleware
///
/// let hook = |parts: &Parts, job: &JobStatus| {
///     let user = parts.extensions.get::<User>();
///     matches!((user, &job.owner), (Some(u), Some(owner)) if &u.id == owner)
/// };
/// fn takes_access(_: impl Access) {}
/// takes_access(hook);
/// ```
pub trait Access: Send + Sync + 'static {
    /// Whether the request may see `job`. Return `false` to answer 404.
    fn allows(&self, parts: &Parts, job: &JobStatus) -> bool;
}

impl<F> Access for F
where
    F: Fn(&Parts, &JobStatus) -> bool + Send + Sync + 'static,
{
    fn allows(&self, parts: &Parts, job: &JobStatus) -> bool {
        self(parts, job)
    }
}

/// Anyone who knows a job's status URL may read it (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CapabilityUrl;

impl Access for CapabilityUrl {
    fn allows(&self, _parts: &Parts, _job: &JobStatus) -> bool {
        true
    }
}

/// Allows a request when the owner it names equals the job's recorded owner.
///
/// The function extracts the caller's identity from the request (typically from an
/// extension set by authentication middleware). A job recorded without an owner, or a
/// request without an identity, is refused: this policy fails closed.
///
/// ```
/// use axum::http::request::Parts;
/// use queue_web::access::OwnerIs;
///
/// #[derive(Clone)]
/// struct UserId(String);
///
/// let policy = OwnerIs::new(|parts: &Parts| parts.extensions.get::<UserId>().map(|u| u.0.clone()));
/// # let _ = policy;
/// ```
pub struct OwnerIs<F> {
    caller: F,
}

impl<F> OwnerIs<F>
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    /// A policy that compares `caller(request)` with the job's owner.
    pub fn new(caller: F) -> Self {
        Self { caller }
    }
}

impl<F> fmt::Debug for OwnerIs<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerIs").finish_non_exhaustive()
    }
}

impl<F> Access for OwnerIs<F>
where
    F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
{
    fn allows(&self, parts: &Parts, job: &JobStatus) -> bool {
        match (&job.owner, (self.caller)(parts)) {
            (Some(owner), Some(caller)) => *owner == caller,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use queue_core::JobState;
    use std::collections::HashMap;

    fn job(owner: Option<&str>) -> JobStatus {
        let mut h = HashMap::from([("state".to_owned(), "queued".to_owned())]);
        if let Some(o) = owner {
            h.insert("owner".to_owned(), o.to_owned());
        }
        let job = JobStatus::from_hash(h).unwrap();
        assert_eq!(job.state, JobState::Queued);
        job
    }

    fn parts(user: Option<&str>) -> Parts {
        let mut req = Request::new(());
        if let Some(u) = user {
            req.extensions_mut().insert(u.to_owned());
        }
        req.into_parts().0
    }

    #[test]
    fn owner_is_fails_closed() {
        let policy = OwnerIs::new(|p: &Parts| p.extensions.get::<String>().cloned());
        assert!(policy.allows(&parts(Some("u1")), &job(Some("u1"))));
        assert!(!policy.allows(&parts(Some("u2")), &job(Some("u1"))));
        assert!(!policy.allows(&parts(None), &job(Some("u1"))));
        assert!(!policy.allows(&parts(Some("u1")), &job(None)));
    }
}
