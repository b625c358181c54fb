//! The rate limit of the POST routes: a `tower` layer from the `tower_governor` crate.
//!
//! Every POST enqueues a job and leaves its status record in Redis for up to 30 days, so an
//! anonymous client that POSTs in a loop fills a small Redis plan. The limit is per client:
//! a bucket of [`PostRateLimit::burst`] requests that refills one request every
//! [`PostRateLimit::refill_every`] (the GCRA of the `governor` crate, which needs no timer
//! task and answers in constant time). A request over the limit gets `429 Too Many
//! Requests` with `Retry-After`, and enqueues nothing. Other routes are not limited.
//!
//! Why `tower_governor`: it is the maintained `tower` layer over `governor` (the rate
//! limiter most Rust services use), it answers `429` with `Retry-After` itself, and its key
//! is pluggable. `tower`'s own `RateLimitLayer` is one global limit that makes requests
//! wait (back-pressure) instead of refusing them, and it has no notion of a client.
//!
//! Who a client is ([`ClientIp`]): the peer address of the connection, except behind the
//! platform's router (`DYNO` set), where every connection comes from the router and the
//! client's address is the **last** entry of `X-Forwarded-For`, the one the router appended;
//! earlier entries are whatever the client sent, so they are not trusted.
//!
//! Environment ([`PostRateLimit::from_env`]): `POST_RATE_BURST` (default
//! [`DEFAULT_BURST`], `0` turns the limit off) and `POST_RATE_REFILL_MS` (default
//! [`DEFAULT_REFILL`]).

use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

/// Default number of POSTs a client may send at once.
pub const DEFAULT_BURST: u32 = 30;
/// Default time for one more POST to become available to a client.
pub const DEFAULT_REFILL: Duration = Duration::from_secs(2);
/// How often forgotten clients are dropped from the limiter's memory.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// How many POSTs a client may send: `burst` at once, then one per `refill_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostRateLimit {
    /// Requests a client may send at once; at least 1.
    pub burst: u32,
    /// Time for one more request to become available.
    pub refill_every: Duration,
    /// Whether the client is the last `X-Forwarded-For` entry (behind the platform's router).
    pub trust_forwarded: bool,
}

impl PostRateLimit {
    /// From `POST_RATE_BURST`, `POST_RATE_REFILL_MS` and `DYNO`; `None` when the limit is off.
    pub fn from_env() -> Result<Option<Self>, String> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Like [`PostRateLimit::from_env`], reading each variable through `lookup`.
    ///
    /// ```
    /// use examples::rate_limit::PostRateLimit;
    /// let limit = PostRateLimit::from_vars(|k| (k == "DYNO").then(|| "web.1".into())).unwrap();
    /// assert!(limit.unwrap().trust_forwarded);
    /// assert_eq!(PostRateLimit::from_vars(|k| (k == "POST_RATE_BURST").then(|| "0".into())), Ok(None));
    /// ```
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let var = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let burst = match var("POST_RATE_BURST") {
            None => DEFAULT_BURST,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("POST_RATE_BURST must be a whole number, not {v:?}"))?,
        };
        if burst == 0 {
            return Ok(None);
        }
        let refill_every = match var("POST_RATE_REFILL_MS") {
            None => DEFAULT_REFILL,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if ms > 0 => Duration::from_millis(ms),
                _ => {
                    return Err(format!(
                        "POST_RATE_REFILL_MS must be a number of milliseconds above 0, not {v:?}"
                    ));
                }
            },
        };
        Ok(Some(Self {
            burst,
            refill_every,
            trust_forwarded: var("DYNO").is_some(),
        }))
    }

    /// `router` with this limit on every route it has so far (the POST routes).
    pub(crate) fn apply<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let config = GovernorConfigBuilder::default()
            .key_extractor(ClientIp {
                trust_forwarded: self.trust_forwarded,
            })
            .period(self.refill_every.max(Duration::from_millis(1)))
            .burst_size(self.burst.max(1))
            .finish();
        // `finish` refuses only a zero period or burst, which the clamps above rule out.
        let Some(config) = config else {
            tracing::error!(
                ?self,
                "rate limit refused by tower_governor; POSTs are not limited"
            );
            return router;
        };
        // The limiter keeps one entry per client it has seen: forget the ones whose bucket
        // is full again, so that requests from many addresses do not grow the process.
        let forget = Arc::downgrade(config.limiter());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut tick = tokio::time::interval(FORGET_EVERY);
                loop {
                    tick.tick().await;
                    let Some(limiter) = forget.upgrade() else {
                        break;
                    };
                    limiter.retain_recent();
                }
            });
        }
        router.layer(GovernorLayer::new(config).error_handler(too_many_requests))
    }
}

/// `429 {"error":"too many requests"}` with `Retry-After`, in the app's JSON error shape.
fn too_many_requests(error: GovernorError) -> Response {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, wait_time.max(1).to_string())],
            Json(json!({ "error": "too many requests" })),
        )
            .into_response(),
        other => {
            tracing::error!(error = %other, "rate limit could not tell who the client is");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({ "error": "internal error" })),
            )
                .into_response()
        }
    }
}

/// The rate limit's notion of a client: see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp {
    trust_forwarded: bool,
}

impl KeyExtractor for ClientIp {
    type Key = IpAddr;

    fn extract<T>(&self, request: &Request<T>) -> Result<IpAddr, GovernorError> {
        if self.trust_forwarded {
            let last = request
                .headers()
                .get_all("x-forwarded-for")
                .iter()
                .next_back()
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|ip| ip.trim().parse().ok());
            if let Some(ip) = last {
                return Ok(ip);
            }
        }
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip())
            .ok_or(GovernorError::UnableToExtractKey)
    }
}
