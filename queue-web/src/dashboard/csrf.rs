//! Cross-site request forgery: every state-changing request is a POST that carries a
//! token bound to this browser AND comes from this origin.
//!
//! The token is a signed double-submit: a random nonce lives in an HttpOnly, SameSite=Strict
//! cookie (`dq_csrf`), and each form carries `HMAC(router key, nonce)`. A foreign page can
//! neither read the cookie nor compute the HMAC, and a cookie planted from a sibling domain
//! comes without its HMAC. On top of that the `Origin` header must name the `Host` the
//! request was sent to (browsers send it on every POST), and a missing `Origin` is refused.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::base::base_of;
use super::cookies;
use super::signing::{SigningKey, hex};
use super::state::Dashboard;
use crate::WebError;

/// Largest form body accepted: a malformed entry's bytes travel hex-encoded in the form
/// that deletes it (see `pages/sets.rs`), up to 64 KiB of them.
pub const MAX_FORM_BYTES: usize = 160 * 1024;

/// The name of the form field that carries the token.
pub(crate) const FIELD: &str = "csrf";

/// How long the nonce cookie lives; a new one is made whenever it is missing.
const NONCE_MAX_AGE_SECS: u64 = 30 * 24 * 3600;

/// The token forms of this request must carry (a request extension).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CsrfToken(pub(crate) String);

impl std::fmt::Display for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn token_for(key: &SigningKey, nonce: &str) -> String {
    key.sign(&[b"csrf", nonce.as_bytes()])
}

/// A nonce as this module makes them: 32 lowercase hex digits.
fn is_nonce(v: &str) -> bool {
    v.len() == 32
        && v.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The browser's nonce as [`issue`] found or made it (a request extension).
#[derive(Debug, Clone)]
struct Nonce {
    value: String,
    /// Made for this request: the browser sent none, so no form it posts can be valid.
    fresh: bool,
}

/// Outer middleware of every route: hands the pages their token, and sets the nonce
/// cookie when the browser has none.
pub(crate) async fn issue(State(d): State<Arc<Dashboard>>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let existing = cookies::read(&parts.headers, cookies::CSRF)
        .filter(|v| is_nonce(v))
        .map(str::to_owned);
    let nonce = match existing {
        Some(value) => Nonce {
            value,
            fresh: false,
        },
        None => {
            let mut bytes = [0u8; 16];
            if getrandom::fill(&mut bytes).is_err() {
                return WebError::InvalidResponse("no randomness for a CSRF nonce").into_response();
            }
            Nonce {
                value: hex(&bytes),
                fresh: true,
            }
        }
    };
    parts
        .extensions
        .insert(CsrfToken(token_for(&d.key, &nonce.value)));
    parts.extensions.insert(nonce.clone());
    let base = base_of(&parts);
    let https = cookies::is_https(&parts.headers);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if nonce.fresh
        && let Some(cookie) = cookies::set(
            cookies::CSRF,
            &nonce.value,
            &base,
            https,
            NONCE_MAX_AGE_SECS,
        )
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Inner middleware of every route, behind authentication: a request other than GET/HEAD
/// must come from this origin and carry the token of the browser's nonce.
pub(crate) async fn verify(State(d): State<Arc<Dashboard>>, req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::HEAD {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    if !d.forms_enabled {
        return WebError::Forbidden("actions are disabled (no key)").into_response();
    }
    if !same_origin(&parts.headers) {
        tracing::info!(method = %parts.method, "dashboard request refused: foreign or missing Origin");
        return WebError::Forbidden("cross-origin request refused").into_response();
    }
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return WebError::BadRequest("form too large").into_response();
    };
    let sent = form_field(&bytes, FIELD);
    let valid = match (parts.extensions.get::<Nonce>(), sent) {
        (Some(n), Some(t)) => !n.fresh && d.key.verify(&[b"csrf", n.value.as_bytes()], &t),
        _ => false,
    };
    if !valid {
        tracing::info!(method = %parts.method, "dashboard request refused: bad CSRF token");
        return WebError::Forbidden("missing or invalid CSRF token; reload the page")
            .into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The first value of `name` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
    pairs
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// Whether `Origin` names the host the request was sent to (`Host`), ignoring the scheme
/// (TLS ends at the platform's router, so the app sees plain HTTP for an `https` origin).
fn same_origin(headers: &HeaderMap) -> bool {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static(host));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_static(o));
        }
        h
    }

    #[test]
    fn origin_must_name_the_host() {
        assert!(same_origin(&headers(
            Some("http://127.0.0.1:8080"),
            "127.0.0.1:8080"
        )));
        assert!(same_origin(&headers(
            Some("https://app.example"),
            "app.example"
        )));
        assert!(!same_origin(&headers(
            Some("https://evil.example"),
            "app.example"
        )));
        assert!(!same_origin(&headers(Some("null"), "app.example")));
        assert!(!same_origin(&headers(None, "app.example")));
        assert!(!same_origin(&headers(
            Some("http://app.example.evil"),
            "app.example"
        )));
    }

    #[test]
    fn tokens_belong_to_their_nonce() {
        let key = SigningKey::from_password(b"k");
        let t = token_for(&key, "00112233445566778899aabbccddeeff");
        assert!(key.verify(&[b"csrf", b"00112233445566778899aabbccddeeff"], &t));
        assert!(!key.verify(&[b"csrf", b"ffeeddccbbaa99887766554433221100"], &t));
        assert!(is_nonce("00112233445566778899aabbccddeeff"));
        assert!(!is_nonce("0011"));
        assert_eq!(
            form_field(b"a=1&csrf=x%2By", "csrf").as_deref(),
            Some("x+y")
        );
    }
}
