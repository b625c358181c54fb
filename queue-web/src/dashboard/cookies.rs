//! Reading and writing the dashboard's two cookies (session and CSRF nonce).

use axum::http::{HeaderMap, HeaderValue, header};

use super::base::Base;

/// The session cookie of password mode.
pub(crate) const SESSION: &str = "dq_session";
/// The CSRF nonce cookie.
pub(crate) const CSRF: &str = "dq_csrf";

/// The value of cookie `name` in the request's `Cookie` headers (the first one).
pub(crate) fn read<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// A `Set-Cookie` for `name=value`: HttpOnly, SameSite=Strict, scoped to the dashboard's
/// path, `Secure` when the request came over HTTPS (directly or through the platform's
/// router), kept `max_age_secs` (0 deletes it).
pub(crate) fn set(
    name: &str,
    value: &str,
    base: &Base,
    secure: bool,
    max_age_secs: u64,
) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}",
        base.cookie_path()
    ))
    .ok()
}

/// Whether the request reached the app over HTTPS (`X-Forwarded-Proto: https`, as the
/// platform's router sets it).
pub(crate) fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; dq_csrf=xyz"));
        assert_eq!(read(&h, "dq_csrf"), Some("xyz"));
        assert_eq!(read(&h, "dq"), None);
    }
}
