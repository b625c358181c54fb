//! Queue metrics: a Prometheus text endpoint and the JSON endpoint worker autoscalers read.
//!
//! # Cost
//! A [`Snapshot`] takes two pipelined round trips whatever the number of jobs:
//! 1. `SMEMBERS queues`, `SMEMBERS processes`, `GET stat:processed`, `GET stat:failed`,
//!    `ZCARD retry`, `ZCARD schedule`, `ZCARD dead`;
//! 2. per queue `LLEN` and `LINDEX queue -1` (the oldest job: jobs are pushed on the left),
//!    per worker process `HGET <identity> busy`.
//!
//! Every command is O(1) in the number of queued jobs (`LINDEX -1` walks from the tail), so
//! a million waiting jobs cost what ten do. There is no scan of any list or set of jobs.
//!
//! # Access
//! Neither endpoint is public when a token is configured ([`MetricsConfig::token`], or
//! `METRICS_TOKEN` with [`MetricsConfig::from_env`]): the request must carry it as
//! `Authorization: Bearer <token>` or `?token=<token>` (the latter for autoscalers that can
//! only be given a URL), compared in constant time; otherwise `401`. Without a token both
//! endpoints are open, so mount them on a private listener then.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use queue_core::{Client, Timestamp};
use serde::Deserialize;
use serde_json::json;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::WebError;
use crate::timeout::request_timeout_layer;

/// Process type whose dynos an autoscaler scales by default (the Procfile's `worker`).
pub const DEFAULT_PROCESS_NAME: &str = "worker";

/// Content type of the Prometheus text exposition format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Who may read the metrics and how the autoscaler endpoint names its process type.
#[derive(Clone)]
pub struct MetricsConfig {
    token: Option<Arc<str>>,
    process_name: String,
}

impl fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("process_name", &self.process_name)
            .finish()
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl MetricsConfig {
    /// No token (open endpoints) and process name [`DEFAULT_PROCESS_NAME`].
    pub fn new() -> Self {
        Self {
            token: None,
            process_name: DEFAULT_PROCESS_NAME.to_owned(),
        }
    }

    /// The token from `METRICS_TOKEN` (unset or empty: none).
    pub fn from_env() -> Self {
        match std::env::var("METRICS_TOKEN") {
            Ok(token) => Self::new().token(token),
            Err(_) => Self::new(),
        }
    }

    /// Requires `token` on every metrics request; an empty token means none.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        let token: String = token.into();
        self.token = (!token.is_empty()).then(|| Arc::from(token));
        self
    }

    /// Names the process type in the autoscaler JSON (`"name"`).
    pub fn process_name(mut self, name: impl Into<String>) -> Self {
        self.process_name = name.into();
        self
    }

    /// Whether `headers` or `query_token` carry the configured token (always, without one).
    fn allows(&self, headers: &HeaderMap, query_token: Option<&str>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        // `ct_eq` is constant-time for equal lengths; only the token's length can leak.
        [bearer, query_token]
            .into_iter()
            .flatten()
            .any(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
    }
}

/// Size and latency of one queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStats {
    /// Queue name.
    pub name: String,
    /// Jobs waiting (`LLEN`).
    pub size: u64,
    /// Seconds since the oldest waiting job was enqueued (0 when empty), Sidekiq's definition.
    pub latency: f64,
}

/// The queue's numbers at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Every queue of the `queues` set, sorted by name.
    pub queues: Vec<QueueStats>,
    /// Lifetime count of processed jobs (`stat:processed`).
    pub processed: u64,
    /// Lifetime count of failed executions (`stat:failed`).
    pub failed: u64,
    /// Jobs waiting for a retry (`ZCARD retry`).
    pub retry: u64,
    /// Jobs scheduled for later (`ZCARD schedule`).
    pub scheduled: u64,
    /// Jobs out of retries (`ZCARD dead`).
    pub dead: u64,
    /// Jobs running now: the sum of `busy` over the registered worker processes.
    pub busy: u64,
}

/// The two timestamps latency is computed from; everything else in the job is skipped.
#[derive(Deserialize)]
struct EnqueueTimes {
    enqueued_at: Option<Timestamp>,
    created_at: Option<Timestamp>,
}

/// Seconds since the job in `raw` entered its queue: `enqueued_at`, else `created_at`.
fn latency_of(raw: &[u8], now: Timestamp) -> f64 {
    match serde_json::from_slice::<EnqueueTimes>(raw) {
        Ok(t) => match t.enqueued_at.or(t.created_at) {
            // A dyno whose clock runs behind the enqueuer's would give a negative age.
            Some(at) => (now.as_secs_f64() - at.as_secs_f64()).max(0.0),
            None => 0.0,
        },
        Err(e) => {
            tracing::debug!(error = %e, "oldest job has no readable timestamps; latency 0");
            0.0
        }
    }
}

/// An integer reply, or 0 for nil or anything unparseable (a foreign process hash, say).
fn int_or_zero(v: &redis::Value) -> u64 {
    redis::from_redis_value_ref::<Option<u64>>(v)
        .ok()
        .flatten()
        .unwrap_or(0)
}

impl Snapshot {
    /// Reads the numbers in two pipelined round trips (see the module docs for the commands).
    pub async fn read(client: &Client) -> Result<Self, WebError> {
        let keys = client.keys();
        let mut conn = client.connection();
        let mut pipe = redis::pipe();
        pipe.cmd("SMEMBERS").arg(keys.queues());
        pipe.cmd("SMEMBERS").arg(keys.processes());
        pipe.cmd("GET").arg(keys.stat_processed());
        pipe.cmd("GET").arg(keys.stat_failed());
        pipe.cmd("ZCARD").arg(keys.retry());
        pipe.cmd("ZCARD").arg(keys.schedule());
        pipe.cmd("ZCARD").arg(keys.dead());
        type First = (
            Vec<String>,
            Vec<String>,
            Option<u64>,
            Option<u64>,
            u64,
            u64,
            u64,
        );
        let (mut queues, processes, processed, failed, retry, scheduled, dead): First =
            client.bounded(pipe.query_async(&mut conn)).await?;
        queues.sort_unstable();

        let mut snapshot = Snapshot {
            queues: Vec::with_capacity(queues.len()),
            processed: processed.unwrap_or(0),
            failed: failed.unwrap_or(0),
            retry,
            scheduled,
            dead,
            busy: 0,
        };
        if queues.is_empty() && processes.is_empty() {
            return Ok(snapshot);
        }
        let mut pipe = redis::pipe();
        for q in &queues {
            pipe.cmd("LLEN").arg(keys.queue(q));
            pipe.cmd("LINDEX").arg(keys.queue(q)).arg(-1);
        }
        for identity in &processes {
            pipe.cmd("HGET").arg(keys.process(identity)).arg("busy");
        }
        let replies: Vec<redis::Value> = client.bounded(pipe.query_async(&mut conn)).await?;
        let now = Timestamp::now();
        let (per_queue, per_process) = replies.split_at(replies.len().min(2 * queues.len()));
        for (name, pair) in queues.into_iter().zip(per_queue.chunks(2)) {
            let latency = match pair.get(1) {
                Some(redis::Value::BulkString(raw)) => latency_of(raw, now),
                _ => 0.0,
            };
            snapshot.queues.push(QueueStats {
                name,
                size: pair.first().map_or(0, int_or_zero),
                latency,
            });
        }
        // A process whose hash expired (it died without cleaning up) counts as 0 busy.
        snapshot.busy = per_process.iter().map(int_or_zero).sum();
        Ok(snapshot)
    }

    /// The largest queue latency, in seconds (0 without queues).
    pub fn max_latency(&self) -> f64 {
        self.queues.iter().map(|q| q.latency).fold(0.0, f64::max)
    }

    /// Jobs waiting over all queues.
    pub fn total_size(&self) -> u64 {
        self.queues.iter().map(|q| q.size).sum()
    }

    /// The Prometheus text exposition of this snapshot.
    ///
    /// ```
    /// use queue_web::metrics::{QueueStats, Snapshot};
    /// let s = Snapshot {
    ///     queues: vec![QueueStats { name: "default".into(), size: 3, latency: 1.5 }],
    ///     ..Snapshot::default()
    /// };
    /// let text = s.to_prometheus();
    /// assert!(text.contains("queue_size{queue=\"default\"} 3\n"));
    /// assert!(text.contains("queue_latency_seconds{queue=\"default\"} 1.5\n"));
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut out = String::with_capacity(1024 + 128 * self.queues.len());
        family(
            &mut out,
            "queue_size",
            "gauge",
            "Jobs waiting in the queue (LLEN).",
        );
        for q in &self.queues {
            let name = escape_label(&q.name);
            let _ = writeln!(out, "queue_size{{queue=\"{name}\"}} {}", q.size);
        }
        family(
            &mut out,
            "queue_latency_seconds",
            "gauge",
            "Seconds since the oldest waiting job of the queue was enqueued.",
        );
        for q in &self.queues {
            let name = escape_label(&q.name);
            let _ = writeln!(
                out,
                "queue_latency_seconds{{queue=\"{name}\"}} {}",
                q.latency
            );
        }
        let singles: [(&str, &str, &str, u64); 6] = [
            (
                "queue_jobs_processed_total",
                "counter",
                "Jobs processed, successes and failures (stat:processed).",
                self.processed,
            ),
            (
                "queue_jobs_failed_total",
                "counter",
                "Failed job executions (stat:failed).",
                self.failed,
            ),
            (
                "queue_retry_jobs",
                "gauge",
                "Jobs waiting for a retry (retry set).",
                self.retry,
            ),
            (
                "queue_scheduled_jobs",
                "gauge",
                "Jobs scheduled for later (schedule set).",
                self.scheduled,
            ),
            (
                "queue_dead_jobs",
                "gauge",
                "Jobs out of retries (dead set).",
                self.dead,
            ),
            (
                "queue_busy_workers",
                "gauge",
                "Jobs running now, summed over worker processes.",
                self.busy,
            ),
        ];
        for (name, kind, help, value) in singles {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing into a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Escapes a label value as the text format requires (`\`, `"` and newlines).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// State of the metrics routes.
#[derive(Debug, Clone)]
struct MetricsState {
    client: Client,
    config: MetricsConfig,
}

/// `GET /metrics` (Prometheus text) and `GET /autoscale` (autoscaler JSON), token-protected
/// when a token is configured.
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
    if config.token.is_none() {
        tracing::info!("metrics endpoints have no token: mount them on a private listener");
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

/// Query parameters of the metrics routes.
#[derive(Debug, Default, Deserialize)]
struct MetricsQuery {
    token: Option<String>,
    metric: Option<String>,
}

fn authorize(
    state: &MetricsState,
    headers: &HeaderMap,
    query: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<MetricsQuery, WebError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    if state.config.allows(headers, query.token.as_deref()) {
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
    let snapshot = Snapshot::read(&state.client).await?;
    Ok((
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        snapshot.to_prometheus(),
    )
        .into_response())
}

async fn autoscale(
    State(state): State<MetricsState>,
    headers: HeaderMap,
    query: Result<Query<MetricsQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let query = authorize(&state, &headers, query)?;
    let snapshot = Snapshot::read(&state.client).await?;
    let value = match query.metric.as_deref() {
        None | Some("latency") => json!((snapshot.max_latency() * 1000.0).round() / 1000.0),
        Some("size") => json!(snapshot.total_size()),
        Some(_) => return Err(WebError::BadRequest("metric must be latency or size")),
    };
    Ok(Json(json!([{ "name": state.config.process_name, "value": value }])).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_reads_both_sidekiq_units_and_prefers_enqueued_at() {
        let now = Timestamp::from_secs_f64(1_760_000_010.0);
        let secs = br#"{"class":"X","args":[],"jid":"a","created_at":1760000000.0,"enqueued_at":1760000005.0}"#;
        assert_eq!(latency_of(secs, now), 5.0);
        let millis = br#"{"class":"X","args":[],"jid":"a","created_at":1760000000000}"#;
        assert_eq!(latency_of(millis, now), 10.0);
        assert_eq!(latency_of(b"not json", now), 0.0);
        let future = br#"{"enqueued_at":1760000020.0}"#;
        assert_eq!(latency_of(future, now), 0.0);
    }

    #[test]
    fn token_from_header_or_query() {
        let config = MetricsConfig::new().token("s3cret");
        let mut headers = HeaderMap::new();
        assert!(!config.allows(&headers, None));
        assert!(config.allows(&headers, Some("s3cret")));
        assert!(!config.allows(&headers, Some("s3cre")));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(config.allows(&headers, None));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer wrong"),
        );
        assert!(!config.allows(&headers, None));
        assert!(
            MetricsConfig::new()
                .token("")
                .allows(&HeaderMap::new(), None)
        );
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
