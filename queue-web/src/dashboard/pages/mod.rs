//! The dashboard's pages and actions, one file each, and what they share.

pub(crate) mod actions;
pub(crate) mod busy;
pub(crate) mod job;
pub(crate) mod login;
pub(crate) mod overview;
pub(crate) mod queues;
pub(crate) mod search;
pub(crate) mod sets;

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Html;
use queue_core::inspect::Listing;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;

use super::base::{Base, base_of};
use super::csrf::CsrfToken;
use super::state::Dashboard;
use crate::WebError;

/// What the frame of every page needs: where links point, the CSRF token of its forms,
/// whether to offer "log out", and a line about the last action.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub(crate) base: Base,
    pub(crate) csrf: CsrfToken,
    pub(crate) logout: bool,
    pub(crate) notice: Option<&'static str>,
}

impl FromRequestParts<Arc<Dashboard>> for Layout {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, d: &Arc<Dashboard>) -> Result<Self, Infallible> {
        let notice = parts.uri.query().and_then(|q| {
            serde_urlencoded::from_str::<NoticeQuery>(q)
                .ok()
                .and_then(|n| n.done)
                .and_then(|d| notice_text(&d))
        });
        Ok(Layout {
            base: base_of(parts),
            csrf: parts
                .extensions
                .get::<CsrfToken>()
                .cloned()
                .unwrap_or_default(),
            logout: d.auth.has_login(),
            notice,
        })
    }
}

#[derive(Deserialize)]
struct NoticeQuery {
    done: Option<String>,
}

/// The line shown after an action redirects back (`?done=…`): only these fixed texts, so
/// the query cannot put words on the page.
fn notice_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "retried" => "Sent back to its queue.",
        "deleted" => "Deleted.",
        "killed" => "Moved to the dead set.",
        "gone" => "That entry was no longer there (it moved meanwhile).",
        "cancelled" => "Its record says cancelled: the entry was dropped.",
        "blocked" => "Left in place: its queue key holds another type.",
        "notajob" => "Left in place: it is not a job.",
        "retried-all" => "Sent every entry back to its queue.",
        "cleared" => "Cleared.",
        "paused" => "Paused.",
        "resumed" => "Resumed.",
        "cancel-sent" => "Cancelled.",
        "cancel-refused" => "Not cancelled: it has started or finished.",
        "quieted" => "Asked the process to stop taking jobs.",
        "stopped" => "Asked the process to shut down.",
        _ => return None,
    })
}

/// Renders `page` into an HTML response (a template error is a 500 that says nothing).
pub(crate) fn render(page: &impl Template) -> Result<Html<String>, WebError> {
    page.render().map(Html).map_err(|e| {
        tracing::error!(error = %e, "dashboard template failed");
        WebError::InvalidResponse("page could not be rendered")
    })
}

/// Links to the pages around a listing's page.
#[derive(Debug, Clone)]
pub(crate) struct Pager {
    /// 1-based number of this page.
    pub(crate) number: u64,
    pub(crate) last: u64,
    pub(crate) total: u64,
    pub(crate) prev: Option<String>,
    pub(crate) next: Option<String>,
}

impl Pager {
    /// The pager of `listing`, whose pages live at `path?page=N&size=M`.
    pub(crate) fn of<T>(listing: &Listing<T>, path: &str) -> Self {
        let page = listing.page;
        let size = u64::from(page.size());
        let number = u64::from(page.index()) + 1;
        let last = listing.total.div_ceil(size).max(1);
        let link = |n: u64| format!("{path}?page={n}&size={size}");
        Pager {
            number,
            last,
            total: listing.total,
            prev: (number > 1).then(|| link((number - 1).min(last))),
            next: listing.has_more().then(|| link(number + 1)),
        }
    }
}
