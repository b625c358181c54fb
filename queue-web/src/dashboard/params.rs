//! Every value a request names, checked into a typed value before anything reads Redis;
//! anything else answers `400`.

use queue_core::inspect::{JobSet, Page};
use queue_core::{JobId, validate_queue_name};
use serde::Deserialize;

use crate::WebError;

/// Entries per page when the request does not say.
pub const DEFAULT_PAGE_SIZE: u32 = 25;
/// Most entries one page shows.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Highest page number accepted (1-based); a million-entry set at the smallest page size
/// fits well below it.
pub const MAX_PAGE: u32 = 10_000_000;

/// `?page=N&size=M` as sent (both optional).
#[derive(Debug, Deserialize, Default)]
pub(crate) struct PageQuery {
    page: Option<String>,
    size: Option<String>,
}

impl PageQuery {
    /// The page asked for (1-based in URLs, 0-based in [`Page`]).
    pub(crate) fn page(&self) -> Result<Page, WebError> {
        let number = match self.page.as_deref() {
            None | Some("") => 1,
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or(WebError::BadRequest("page must be a number from 1"))?,
        };
        let size = match self.size.as_deref() {
            None | Some("") => DEFAULT_PAGE_SIZE,
            Some(s) => s
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or(WebError::BadRequest("size must be a number from 1 to 100"))?,
        };
        Ok(Page::new(number - 1, size))
    }
}

/// A queue name from a URL.
pub(crate) fn queue_name(name: &str) -> Result<String, WebError> {
    validate_queue_name(name)
        .map(|()| name.to_owned())
        .map_err(|_| WebError::BadRequest("not a queue name"))
}

/// A job id from a URL or form.
pub(crate) fn job_id(id: &str) -> Result<JobId, WebError> {
    JobId::parse(id).map_err(|_| WebError::BadRequest("not a job id"))
}

/// The set a URL segment names: `scheduled`, `retries` or `dead`.
pub(crate) fn job_set(segment: &str) -> Result<JobSet, WebError> {
    match segment {
        "scheduled" => Ok(JobSet::Schedule),
        "retries" => Ok(JobSet::Retry),
        "dead" => Ok(JobSet::Dead),
        _ => Err(WebError::BadRequest(
            "the set is scheduled, retries or dead",
        )),
    }
}

/// The URL segment of `set` (the inverse of [`job_set`]).
pub(crate) fn set_segment(set: JobSet) -> &'static str {
    match set {
        JobSet::Schedule => "scheduled",
        JobSet::Retry => "retries",
        JobSet::Dead => "dead",
    }
}

/// The heading of `set`'s page.
pub(crate) fn set_title(set: JobSet) -> &'static str {
    match set {
        JobSet::Schedule => "Scheduled",
        JobSet::Retry => "Retries",
        JobSet::Dead => "Dead",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(page: Option<&str>, size: Option<&str>) -> PageQuery {
        PageQuery {
            page: page.map(Into::into),
            size: size.map(Into::into),
        }
    }

    #[test]
    fn pages_are_checked() {
        assert_eq!(
            q(None, None).page().unwrap(),
            Page::new(0, DEFAULT_PAGE_SIZE)
        );
        assert_eq!(q(Some("3"), Some("10")).page().unwrap(), Page::new(2, 10));
        for (p, s) in [
            (Some("0"), None),
            (Some("-1"), None),
            (Some("x"), None),
            (Some("99999999999"), None),
            (None, Some("101")),
            (None, Some("0")),
        ] {
            assert!(q(p, s).page().is_err(), "{p:?} {s:?}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(queue_name("default").is_ok());
        assert!(queue_name("<script>").is_err());
        assert!(job_id("abc").is_ok());
        assert!(job_id("a b").is_err());
        assert_eq!(job_set("dead").unwrap(), JobSet::Dead);
        assert!(job_set("morgue").is_err());
    }
}
