//! Where the dashboard is mounted: the path prefix every link and cookie is built from.

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::request::Parts;
use std::convert::Infallible;

/// The prefix the app nested the dashboard under (`""` at the root, `/dashboard`, …),
/// read per request from the original URI minus the path the dashboard's router saw, so
/// links work under any mount point without configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Base(String);

impl Base {
    /// The base of a request whose full path is `original` and whose path inside the
    /// dashboard is `inner`.
    pub(crate) fn from_paths(original: &str, inner: &str) -> Self {
        let prefix = if inner == "/" && !original.ends_with('/') {
            // `nest("/dashboard", …)` routes `/dashboard` itself to the inner `/`.
            original
        } else {
            original.strip_suffix(inner).unwrap_or("")
        };
        let prefix = prefix.trim_end_matches('/');
        // A prefix is only ever a plain path; anything else (a `;`, a quote, a space from a
        // path parameter of the mount) must not reach a link or a cookie attribute.
        let plain = prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~%".contains(&b));
        Base(if plain {
            prefix.to_owned()
        } else {
            String::new()
        })
    }

    /// The absolute path of dashboard path `path` (which starts with `/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// The overview's path: the mount point itself.
    pub(crate) fn home(&self) -> String {
        if self.0.is_empty() {
            "/".to_owned()
        } else {
            self.0.clone()
        }
    }

    /// The `Path` attribute of the dashboard's cookies.
    pub(crate) fn cookie_path(&self) -> String {
        self.home()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Base {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(base_of(parts))
    }
}

/// The [`Base`] of a request.
pub(crate) fn base_of(parts: &Parts) -> Base {
    let inner = parts.uri.path();
    let original = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(inner, |o| o.0.path());
    Base::from_paths(original, inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_is_the_mount_prefix() {
        assert_eq!(Base::from_paths("/dashboard", "/").home(), "/dashboard");
        assert_eq!(Base::from_paths("/dashboard/", "/").home(), "/dashboard");
        assert_eq!(
            Base::from_paths("/ops/dashboard/queues/a", "/queues/a").url("/busy"),
            "/ops/dashboard/busy"
        );
        assert_eq!(Base::from_paths("/queues", "/queues").home(), "/");
        assert_eq!(Base::from_paths("/a;b/queues", "/queues").home(), "/");
    }
}
