//! Queue metrics: a Prometheus text endpoint and the JSON endpoint worker autoscalers read.
//!
//! # Cost
//! A scrape is one [`Inspector::stats`] call (see [`queue_core::inspect`]): two pipelined
//! round trips whatever the number of jobs:
//! 1. `TIME`, `SMEMBERS queues`, `SMEMBERS processes`, `GET stat:processed`,
//!    `GET stat:failed`, `ZCARD retry`, `ZCARD schedule`, `ZCARD dead`;
//! 2. per queue `LLEN` and `LINDEX queue -1` (the oldest job: jobs are pushed on the left),
//!    per worker process `HGET <identity> busy`.
//!
//! Every command is O(1) in the number of queued jobs (`LINDEX -1` walks from the tail), so
//! a million waiting jobs cost what ten do. There is no scan of any list or set of jobs.
//! This module only encodes: the text through `prometheus-client` ([`to_prometheus`]),
//! the autoscaler JSON by hand.
//!
//! # Access
//! Neither endpoint is public unless the app says so, by a typed choice ([`MetricsAccess`]):
//! - [`MetricsAccess::Token`] ([`MetricsConfig::token`], or `METRICS_TOKEN` with
//!   [`MetricsConfig::from_env`]): the request must carry `Authorization: Bearer <token>`,
//!   compared in constant time; otherwise `401`. The token is read from that header only: a
//!   `?token=` in the URL would be written to the platform router's access logs, so it is
//!   ignored (and the request refused).
//! - [`MetricsAccess::Closed`], the default when no token is configured: every request gets
//!   `401`, and the router logs a warning when it is built.
//! - [`MetricsAccess::Open`]: anyone who reaches the listener; only for a listener that is
//!   not exposed.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use queue_core::inspect::LimiterInfo;
use queue_core::{Client, Inspector};
use serde::Deserialize;
use serde_json::json;
use std::fmt;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::WebError;
use crate::timeout::request_timeout_layer;

/// Process type whose dynos an autoscaler scales by default (the Procfile's `worker`).
pub const DEFAULT_PROCESS_NAME: &str = "worker";

/// The secret a metrics request must carry; `Debug` never shows it.
#[derive(Clone)]
pub struct MetricsToken(Arc<str>);

impl MetricsToken {
    /// The token, or `None` for an empty one (which would let every request through).
    ///
    /// ```
    /// use queue_web::metrics::MetricsToken;
    /// assert!(MetricsToken::new("").is_none());
    /// assert!(!format!("{:?}", MetricsToken::new("s3cret").unwrap()).contains("s3cret"));
    /// ```
    pub fn new(token: impl Into<String>) -> Option<Self> {
        let token: String = token.into();
        (!token.is_empty()).then(|| Self(Arc::from(token)))
    }
}

impl fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricsToken(<redacted>)")
    }
}

/// Who may read `/metrics` and `/autoscale`: a choice made in code, never by omission.
#[derive(Debug, Clone)]
pub enum MetricsAccess {
    /// Nobody: every request answers `401`. What an app gets when it configures no token.
    Closed,
    /// Requests that carry `Authorization: Bearer <token>`.
    Token(MetricsToken),
    /// Anyone who reaches the listener: only for a listener that is not exposed.
    Open,
}

/// Who may read the metrics and how the autoscaler endpoint names its process type.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    access: MetricsAccess,
    process_name: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsConfig {
    /// [`MetricsAccess::Closed`] and process name [`DEFAULT_PROCESS_NAME`].
    pub fn new() -> Self {
        Self {
            access: MetricsAccess::Closed,
            process_name: DEFAULT_PROCESS_NAME.to_owned(),
        }
    }

    /// The token from `METRICS_TOKEN`; unset or empty: [`MetricsAccess::Closed`].
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Like [`MetricsConfig::from_env`], reading each variable through `lookup`.
    ///
    /// ```
    /// use queue_web::{MetricsAccess, MetricsConfig};
    /// let config = MetricsConfig::from_vars(|_| None);
    /// assert!(matches!(config.access_rule(), MetricsAccess::Closed));
    /// ```
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Self {
        match lookup("METRICS_TOKEN") {
            Some(token) => Self::new().token(token),
            None => Self::new(),
        }
    }

    /// Requires `token` as `Authorization: Bearer`; an empty token closes the endpoints.
    pub fn token(self, token: impl Into<String>) -> Self {
        let access = match MetricsToken::new(token) {
            Some(token) => MetricsAccess::Token(token),
            None => MetricsAccess::Closed,
        };
        self.access(access)
    }

    /// Sets who may read the endpoints.
    pub fn access(mut self, access: MetricsAccess) -> Self {
        self.access = access;
        self
    }

    /// Who may read the endpoints.
    pub fn access_rule(&self) -> &MetricsAccess {
        &self.access
    }

    /// Names the process type in the autoscaler JSON (`"name"`).
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.process_name = name.into();
        self
    }

    /// Whether `headers` carry what [`MetricsAccess`] asks for.
    fn allows(&self, headers: &HeaderMap) -> bool {
        let expected = match &self.access {
            MetricsAccess::Open => return true,
            MetricsAccess::Closed => return false,
            MetricsAccess::Token(MetricsToken(token)) => token,
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        // `ct_eq` is constant-time for equal lengths; only the token's length can leak.
        bearer.is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
    }
}

/// The metrics' numbers, as [`Inspector::stats`] reads them in two round trips.
pub use queue_core::inspect::Stats;

/// Names of the metric families of [`to_prometheus`], in output order (prometheus-client
/// appends `_total` to a counter's name: `queue_jobs_processed_total`).
mod family {
    pub(super) const SIZE: &str = "queue_size";
    pub(super) const LATENCY: &str = "queue_latency_seconds";
    pub(super) const PROCESSED: &str = "queue_jobs_processed";
    pub(super) const FAILED: &str = "queue_jobs_failed";
    pub(super) const RETRY: &str = "queue_retry_jobs";
    pub(super) const SCHEDULED: &str = "queue_scheduled_jobs";
    pub(super) const DEAD: &str = "queue_dead_jobs";
    pub(super) const BUSY: &str = "queue_busy_workers";
    pub(super) const LIMITER_IN_USE: &str = "queue_limiter_in_use";
    pub(super) const LIMITER_LIMIT: &str = "queue_limiter_limit";
}

/// Encodes one scrape's limiters (`Inspector::limiters`), in name order.
#[derive(Debug)]
struct LimitersCollector(Vec<LimiterInfo>);

impl Collector for LimitersCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let families = [
            (
                family::LIMITER_IN_USE,
                "What a limiter has given out now: slots held (concurrent), admissions in the last interval (window), 1 while the next admission waits (bucket).",
                true,
            ),
            (
                family::LIMITER_LIMIT,
                "A limiter's limit, as last asked for.",
                false,
            ),
        ];
        for (name, help, in_use) in families {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for l in &self.0 {
                let labels = [("limiter", l.name.as_str()), ("kind", l.kind.as_str())];
                let value = if in_use { l.in_use } else { l.limit };
                ConstGauge::new(value).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// Encodes one scrape's [`Stats`] as constant metrics, queues in name order.
#[derive(Debug)]
struct StatsCollector(Stats);

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = &self.0;
        let mut m = encoder.encode_descriptor(
            family::SIZE,
            "Jobs waiting in the queue (LLEN).",
            None,
            MetricType::Gauge,
        )?;
        for q in &stats.queues {
            let labels = [("queue", q.name.as_str())];
            ConstGauge::new(q.size).encode(m.encode_family(&labels)?)?;
        }
        let mut m = encoder.encode_descriptor(
            family::LATENCY,
            "Seconds since the oldest waiting job of the queue was enqueued.",
            None,
            MetricType::Gauge,
        )?;
        for q in &stats.queues {
            let labels = [("queue", q.name.as_str())];
            ConstGauge::new(q.latency.as_secs_f64()).encode(m.encode_family(&labels)?)?;
        }
        let t = &stats.totals;
        let counters = [
            (
                family::PROCESSED,
                "Jobs processed, successes and failures (stat:processed).",
                t.processed,
            ),
            (
                family::FAILED,
                "Failed job executions (stat:failed).",
                t.failed,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                family::RETRY,
                "Jobs waiting for a retry (retry set).",
                t.retry,
            ),
            (
                family::SCHEDULED,
                "Jobs scheduled for later (schedule set).",
                t.scheduled,
            ),
            (family::DEAD, "Jobs out of retries (dead set).", t.dead),
            (
                family::BUSY,
                "Jobs running now, summed over worker processes.",
                stats.busy,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

/// The Prometheus text exposition (format 0.0.4) of `stats`, encoded by `prometheus-client`.
///
/// ```
/// use queue_core::inspect::{QueueInfo, Stats};
/// use queue_web::metrics::to_prometheus;
/// use std::time::Duration;
/// let stats = Stats {
///     queues: vec![QueueInfo { name: "default".into(), size: 3, latency: Duration::from_millis(1500) }],
///     ..Stats::default()
/// };
/// let text = to_prometheus(&stats);
/// assert!(text.contains("queue_size{queue=\"default\"} 3\n"));
/// assert!(text.contains("queue_latency_seconds{queue=\"default\"} 1.5\n"));
/// assert!(text.contains("# TYPE queue_jobs_processed_total counter\n"));
/// ```
pub fn to_prometheus(stats: &Stats) -> String {
    to_prometheus_with_limiters(stats, &[])
}

/// [`to_prometheus`] plus the limiters' families (`queue_limiter_in_use`,
/// `queue_limiter_limit`, labelled by `limiter` and `kind`).
pub fn to_prometheus_with_limiters(stats: &Stats, limiters: &[LimiterInfo]) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatsCollector(stats.clone())));
    if !limiters.is_empty() {
        registry.register_collector(Box::new(LimitersCollector(limiters.to_vec())));
    }
    let mut out = String::with_capacity(1024 + 128 * stats.queues.len());
    // Encoding into a String fails only if a collector fails, and ours only writes.
    if let Err(e) = prometheus_text::encode(&mut out, &registry) {
        tracing::error!(error = %e, "encoding metrics failed");
    }
    out
}

/// State of the metrics routes.
#[derive(Debug, Clone)]
struct MetricsState {
    client: Client,
    config: MetricsConfig,
}

/// `GET /metrics` (Prometheus text) and `GET /autoscale` (autoscaler JSON), readable as
/// [`MetricsConfig`]'s [`MetricsAccess`] says.
///
/// `/autoscale` answers `[{"name":"worker","value":<v>}]`, the shape third-party worker
/// autoscalers read from the web dyno, where `v` is, by `?metric=`:
/// - `latency` (default): the **largest** queue latency in seconds, since scaling on the
///   worst-off queue keeps every queue's wait bounded (Sidekiq's latency definition);
/// - `size`: the number of waiting jobs over all queues.
pub fn metrics_router<S>(client: Client, config: MetricsConfig) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    match &config.access {
        MetricsAccess::Closed => tracing::warn!(
            "metrics endpoints are closed (every request gets 401): set METRICS_TOKEN, or open them on a private listener"
        ),
        MetricsAccess::Open => {
            tracing::info!("metrics endpoints are open to anyone who reaches this listener")
        }
        MetricsAccess::Token(_) => {}
    }
    Router::new()
        .route("/metrics", get(prometheus))
        .route("/autoscale", get(autoscale))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(request_timeout_layer())
        .with_state(MetricsState { client, config })
}

/// Query parameters of the metrics routes (a `token` parameter is ignored: see [`MetricsAccess`]).
#[derive(Debug, Default, Deserialize)]
struct MetricsQuery {
    metric: Option<String>,
}

fn authorize(
    state: &MetricsState,
    headers: &HeaderMap,
    query: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<MetricsQuery, WebError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    if state.config.allows(headers) {
        Ok(query)
    } else {
        Err(WebError::Unauthorized)
    }
}

async fn prometheus(
    State(state): State<MetricsState>,
    headers: HeaderMap,
    query: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    authorize(&state, &headers, query)?;
    let inspect = Inspector::new(&state.client);
    let stats = inspect.stats().await?;
    let limiters = inspect.limiters().await?;
    Ok((
        [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
        to_prometheus_with_limiters(&stats, &limiters),
    )
        .into_response())
}

async fn autoscale(
    State(state): State<MetricsState>,
    headers: HeaderMap,
    query: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let query = authorize(&state, &headers, query)?;
    let stats = Inspector::new(&state.client).stats().await?;
    let value = match query.metric.as_deref() {
        None | Some("latency") => {
            json!((stats.max_latency().as_secs_f64() * 1000.0).round() / 1000.0)
        }
        Some("size") => json!(stats.enqueued),
        Some(_) => return Err(WebError::BadRequest("metric must be latency or size")),
    };
    Ok(Json(json!([{ "name": state.config.process_name, "value": value }])).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_the_header_only() {
        let config = MetricsConfig::new().token("s3cret");
        let mut headers = HeaderMap::new();
        assert!(!config.allows(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(config.allows(&headers));
        assert!(!MetricsConfig::new().allows(&headers));
        assert!(!MetricsConfig::new().token("").allows(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wrong"),
        );
        assert!(!config.allows(&headers));
        assert!(
            MetricsConfig::new()
                .access(MetricsAccess::Open)
                .allows(&HeaderMap::new())
        );
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn limiters_are_encoded_with_their_name_and_kind() {
        let limiters = vec![queue_core::inspect::LimiterInfo {
            name: "stripe".into(),
            kind: "window".into(),
            limit: 100,
            span_ms: 1000,
            in_use: 42,
        }];
        let text = to_prometheus_with_limiters(&Stats::default(), &limiters);
        assert!(
            text.contains("queue_limiter_in_use{limiter=\"stripe\",kind=\"window\"} 42\n"),
            "{text}"
        );
        assert!(text.contains("queue_limiter_limit{limiter=\"stripe\",kind=\"window\"} 100\n"));
    }

    #[test]
    fn labels_are_escaped_and_families_keep_their_names() {
        use queue_core::inspect::{QueueInfo, Totals};
        use std::time::Duration;
        let stats = Stats {
            queues: vec![QueueInfo {
                name: "a\"b\\c\nd".into(),
                size: 1,
                latency: Duration::ZERO,
            }],
            totals: Totals {
                processed: 7,
                ..Totals::default()
            },
            ..Stats::default()
        };
        let text = to_prometheus(&stats);
        assert!(
            text.contains("queue_size{queue=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("\n# HELP queue_jobs_processed_total Jobs processed"));
        assert!(text.contains("\nqueue_jobs_processed_total 7\n"), "{text}");
        for name in [
            "queue_size",
            "queue_latency_seconds",
            "queue_jobs_processed_total",
            "queue_jobs_failed_total",
            "queue_retry_jobs",
            "queue_scheduled_jobs",
            "queue_dead_jobs",
            "queue_busy_workers",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} in {text}"
            );
        }
        assert!(!text.contains("# EOF"), "0.0.4 text has no EOF marker");
    }
}
