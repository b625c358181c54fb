//! Who may use the dashboard: a password, the application's hook, or an explicit opening.
//!
//! There is no default: [`dashboard_router`](super::dashboard_router) takes a
//! [`DashboardAuth`], and each way to make one names its choice.
//!
//! - [`DashboardAuth::password`] / [`DashboardAuth::password_from_env`]: a login form sets
//!   a session cookie (12 hours, HttpOnly, SameSite=Strict, signed with a key derived from
//!   the password, so every web dyno accepts it and a new password ends every session);
//!   scripts may send `Authorization: Basic` with any user name instead. Both compare in
//!   constant time. A request without either gets `401` and the login form, no data.
//! - [`DashboardAuth::access`]: the application decides from the request head (for
//!   example from what its own authentication middleware put into the extensions). A
//!   refusal answers `403`.
//! - [`DashboardAuth::insecure_open`]: anyone who reaches the route may use it, for a
//!   listener that is not exposed.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

use super::base::{Base, base_of};
use super::cookies;
use super::csrf::CsrfToken;
use super::pages::login::{LoginPage, login_page};
use super::signing::SigningKey;
use super::state::Dashboard;
use crate::WebError;

/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Decides from a request's head whether it may use the dashboard.
///
/// Closures `Fn(&Parts) -> bool` implement it:
///
/// ```
/// use axum::http::request::Parts;
/// use queue_web::DashboardAuth;
///
/// #[derive(Clone)]
/// struct Admin; // inserted into the extensions by the app's own auth middleware
///
/// let auth = DashboardAuth::access(|parts: &Parts| parts.extensions.get::<Admin>().is_some());
/// # let _ = auth;
/// ```
pub trait DashboardAccess: Send + Sync + 'static {
    /// Whether the request described by `parts` may see and act; `false` answers `403`.
    fn allows(&self, parts: &Parts) -> bool;
}

impl<F> DashboardAccess for F
where
    F: Fn(&Parts) -> bool + Send + Sync + 'static,
{
    fn allows(&self, parts: &Parts) -> bool {
        self(parts)
    }
}

/// The dashboard's authentication choice (see the module docs).
pub struct DashboardAuth {
    pub(crate) mode: Mode,
}

pub(crate) enum Mode {
    Password(Vec<u8>),
    Hook(Arc<dyn DashboardAccess>),
    Open,
}

impl fmt::Debug for DashboardAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password never reaches a log.
        let mode = match self.mode {
            Mode::Password(_) => "password",
            Mode::Hook(_) => "access hook",
            Mode::Open => "insecure open",
        };
        f.debug_struct("DashboardAuth")
            .field("mode", &mode)
            .finish()
    }
}

impl DashboardAuth {
    /// Requires `password` (at least one character).
    ///
    /// ```
    /// use queue_web::DashboardAuth;
    /// assert!(DashboardAuth::password("correct horse").is_ok());
    /// assert!(DashboardAuth::password("").is_err());
    /// ```
    pub fn password(password: impl Into<String>) -> Result<Self, WebError> {
        let password = password.into();
        if password.is_empty() {
            return Err(WebError::MissingCredential(
                "the dashboard password is empty".into(),
            ));
        }
        Ok(Self {
            mode: Mode::Password(password.into_bytes()),
        })
    }

    /// Requires the password held in environment variable `var`; an error when it is unset
    /// or empty, so a missing setting never opens the dashboard.
    pub fn password_from_env(var: &str) -> Result<Self, WebError> {
        match std::env::var(var) {
            Ok(p) if !p.is_empty() => Self::password(p),
            _ => Err(WebError::MissingCredential(format!(
                "{var} is unset or empty"
            ))),
        }
    }

    /// Lets `hook` decide from each request's head.
    pub fn access(hook: impl DashboardAccess) -> Self {
        Self {
            mode: Mode::Hook(Arc::new(hook)),
        }
    }

    /// No authentication at all: only for a listener nobody else can reach.
    pub fn insecure_open() -> Self {
        Self { mode: Mode::Open }
    }

    /// Whether the dashboard shows a "log out" button.
    pub(crate) fn has_login(&self) -> bool {
        matches!(self.mode, Mode::Password(_))
    }
}

/// Middleware in front of every page and action.
pub(crate) async fn require(State(d): State<Arc<Dashboard>>, req: Request, next: Next) -> Response {
    match &d.auth.mode {
        Mode::Open => next.run(req).await,
        Mode::Hook(hook) => {
            let (parts, body) = req.into_parts();
            if hook.allows(&parts) {
                next.run(Request::from_parts(parts, body)).await
            } else {
                WebError::Forbidden("not allowed").into_response()
            }
        }
        Mode::Password(password) => {
            let (parts, body) = req.into_parts();
            if basic_ok(&parts.headers, password) || session_ok(&d.key, &parts.headers) {
                next.run(Request::from_parts(parts, body)).await
            } else {
                unauthorized(&parts, None)
            }
        }
    }
}

/// The login form with `401`.
fn unauthorized(parts: &Parts, error: Option<&'static str>) -> Response {
    let base = base_of(parts);
    let csrf = parts
        .extensions
        .get::<CsrfToken>()
        .cloned()
        .unwrap_or_default();
    let page = LoginPage {
        base: base.clone(),
        csrf,
        error,
    };
    (StatusCode::UNAUTHORIZED, login_page(&page)).into_response()
}

/// The form of `POST /login`.
#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    password: String,
}

/// `POST /login`: checks the password (CSRF and `Origin` were checked in front), sets the
/// session cookie and goes to the overview.
pub(crate) async fn login(
    State(d): State<Arc<Dashboard>>,
    base: Base,
    parts: Parts,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let Mode::Password(password) = &d.auth.mode else {
        return Redirect::to(&base.home()).into_response();
    };
    if !same_password(form.password.as_bytes(), password) {
        tracing::info!("dashboard login refused: wrong password");
        return unauthorized(&parts, Some("Wrong password."));
    }
    let expires = unix_now() + SESSION_LIFETIME.as_secs();
    let value = format!("{expires}.{}", session_tag(&d.key, expires));
    let mut response = Redirect::to(&base.home()).into_response();
    let https = cookies::is_https(&parts.headers);
    if let Some(cookie) = cookies::set(
        cookies::SESSION,
        &value,
        &base,
        https,
        SESSION_LIFETIME.as_secs(),
    ) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /logout`: deletes the session cookie.
pub(crate) async fn logout(base: Base, headers: HeaderMap) -> Response {
    let mut response = Redirect::to(&base.home()).into_response();
    if let Some(cookie) = cookies::set(cookies::SESSION, "", &base, cookies::is_https(&headers), 0)
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn session_tag(key: &SigningKey, expires: u64) -> String {
    key.sign(&[b"session", expires.to_string().as_bytes()])
}

/// Whether the request carries an unexpired session cookie signed with `key`.
fn session_ok(key: &SigningKey, headers: &HeaderMap) -> bool {
    let Some((expires, tag)) =
        cookies::read(headers, cookies::SESSION).and_then(|v| v.split_once('.'))
    else {
        return false;
    };
    match expires.parse::<u64>() {
        Ok(at) => at > unix_now() && key.verify(&[b"session", expires.as_bytes()], tag),
        Err(_) => false,
    }
}

/// Whether `Authorization: Basic` carries `password` (any user name).
fn basic_ok(headers: &HeaderMap, password: &[u8]) -> bool {
    let Some(encoded) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    match decoded.iter().position(|b| *b == b':') {
        Some(colon) => same_password(&decoded[colon + 1..], password),
        None => false,
    }
}

/// Whether `given` is `password`, in time that depends on neither: the digests compared have
/// one length, so not even the password's length shows in the timing (`ct_eq` on slices of
/// different lengths returns at once).
fn same_password(given: &[u8], password: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(given)
        .as_slice()
        .ct_eq(Sha256::digest(password).as_slice())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn basic_auth_checks_the_password_only() {
        let mut h = HeaderMap::new();
        let enc = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {enc}")).unwrap(),
        );
        assert!(basic_ok(&h, b"s3cret"));
        assert!(!basic_ok(&h, b"s3cre"));
        assert!(!basic_ok(&HeaderMap::new(), b"s3cret"));
    }

    #[test]
    fn sessions_expire_and_are_signed() {
        let key = SigningKey::from_password(b"pw");
        let cookie = |v: String| {
            let mut h = HeaderMap::new();
            h.insert(
                header::COOKIE,
                HeaderValue::from_str(&format!("dq_session={v}")).unwrap(),
            );
            h
        };
        let later = unix_now() + 60;
        assert!(session_ok(
            &key,
            &cookie(format!("{later}.{}", session_tag(&key, later)))
        ));
        let past = unix_now() - 1;
        assert!(!session_ok(
            &key,
            &cookie(format!("{past}.{}", session_tag(&key, past)))
        ));
        let other = SigningKey::from_password(b"other");
        assert!(!session_ok(
            &key,
            &cookie(format!("{later}.{}", session_tag(&other, later)))
        ));
    }

    #[test]
    fn debug_hides_the_password() {
        let auth = DashboardAuth::password("hunter2").unwrap();
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
