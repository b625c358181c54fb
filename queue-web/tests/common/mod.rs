//! Shared test support: a sample app on a real listener, backed by a private Redis.
#![allow(dead_code)]

use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};
use queue_core::testing::TestRedis;
use queue_core::{Client, EnqueueOptions, JobId, JobStatus, NewJob};
use queue_web::{Accepted, MetricsConfig, StatusState, WebError};
use serde_json::{Value, json};
use std::time::Duration;

/// The metrics token of the sample app.
pub(crate) const TOKEN: &str = "t0ken-for-tests";

/// Header naming the caller in the sample app (a stand-in for real authentication).
pub(crate) const USER_HEADER: &str = "x-user";

/// A running sample app.
pub(crate) struct App {
    pub(crate) base: String,
    pub(crate) client: Client,
    pub(crate) http: reqwest::Client,
    /// The status router's state (its long-poll gauge tells when a request waits).
    pub(crate) status: StatusState,
}

impl App {
    /// Starts the sample app against `redis`, with key prefix `{test_name}:`.
    pub(crate) async fn start(redis: &TestRedis, test_name: &str) -> App {
        let client = Client::connect(redis.config(test_name)).await.unwrap();
        Self::with_client(client).await
    }

    /// Starts the sample app on `client` (a cluster's, say).
    pub(crate) async fn with_client(client: Client) -> App {
        let status = StatusState::new(client.clone(), owner_or_capability);
        let base = serve(sample_router(client.clone(), status.clone())).await;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(40))
            .build()
            .unwrap();
        App {
            base,
            client,
            http,
            status,
        }
    }

    /// GET `path` (relative to the app).
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// GET `path` with the metrics token in `Authorization: Bearer`.
    pub(crate) async fn get_with_token(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
    }

    /// GET `path` as user `user`.
    pub(crate) async fn get_as(&self, path: &str, user: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(USER_HEADER, user)
            .send()
            .await
            .unwrap()
    }

    /// Enqueues through the sample handler as `user`; returns the 202's body.
    pub(crate) async fn create_report(
        &self,
        user: Option<&str>,
        secret: &str,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/reports", self.base))
            .json(&json!({ "secret": secret }));
        if let Some(u) = user {
            req = req.header(USER_HEADER, u);
        }
        req.send().await.unwrap()
    }

    /// Writes status fields of job `id` as a worker would (and bumps `rev`), atomically.
    pub(crate) async fn write_status(&self, id: &JobId, fields: &[(&str, &str)]) {
        write_status(&self.client, id, fields).await;
    }

    /// The status record of `id` as stored.
    pub(crate) async fn record(&self, id: &JobId) -> JobStatus {
        self.client.status(id).await.unwrap().unwrap()
    }
}

/// Writes status fields of job `id` and increments `rev` in one MULTI, as the worker's
/// scripts do: a record without `rev` (as enqueued) is at 1, so the first change makes it 2.
/// It announces nothing: a long poll already waiting does not see it (change the record
/// through the scripts for that, see `tests/long_poll.rs`).
pub(crate) async fn write_status(client: &Client, id: &JobId, fields: &[(&str, &str)]) {
    let key = client.keys().status(id.as_str());
    let mut pipe = redis::pipe();
    pipe.atomic();
    pipe.cmd("HSETNX")
        .arg(&key)
        .arg(queue_core::status::field::REV)
        .arg(1)
        .ignore();
    for (f, v) in fields {
        pipe.cmd("HSET").arg(&key).arg(*f).arg(*v).ignore();
    }
    pipe.cmd("HINCRBY")
        .arg(&key)
        .arg(queue_core::status::field::REV)
        .arg(1)
        .ignore();
    let mut conn = client.raw_connection();
    pipe.query_async::<()>(&mut conn).await.unwrap();
}

/// Waits (with a deadline) until `want` long polls of `state` wait: a change after that is
/// one they must see.
pub(crate) async fn until_waiting(state: &StatusState, want: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let now = state.long_poll_waiters();
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{now} of {want} long polls waiting"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Serves `router` on a fresh loopback port; returns `http://127.0.0.1:PORT`.
pub(crate) async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// The sample app's access rule: jobs enqueued with an owner are visible to that user only,
/// others by capability URL.
pub(crate) fn owner_or_capability(parts: &Parts, job: &JobStatus) -> bool {
    match &job.owner {
        None => true,
        Some(owner) => parts
            .headers
            .get(USER_HEADER)
            .is_some_and(|u| u.as_bytes() == owner.as_bytes()),
    }
}

/// The sample app: a handler that enqueues and answers 202, the status router (`status`, with
/// an owner check), health and metrics.
pub(crate) fn sample_router(client: Client, status: StatusState) -> Router {
    Router::new()
        .route("/reports", post(create_report))
        .nest("/jobs", queue_web::status_router(status))
        .merge(queue_web::health_router(client.clone()))
        .merge(queue_web::metrics_router(
            client.clone(),
            MetricsConfig::new().token(TOKEN),
        ))
        .with_state(client)
}

/// The sample handler: enqueue a `BuildReport` with the request's secret, answer 202.
async fn create_report(
    State(client): State<Client>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Accepted, WebError> {
    let mut options = EnqueueOptions::new();
    if let Some(user) = headers.get(USER_HEADER).and_then(|u| u.to_str().ok()) {
        options = options.owner(user);
    }
    let mut job = NewJob::new("BuildReport", vec![body["secret"].clone()]);
    job.options = options;
    let id = client.push(job).await?;
    Ok(Accepted::under("/jobs", id).retry_after(Duration::from_secs(2)))
}

/// The job id at the end of a 202's `Location`.
pub(crate) fn id_from_location(response: &reqwest::Response) -> JobId {
    let location = response.headers()["location"].to_str().unwrap();
    JobId::parse(location.rsplit('/').next().unwrap()).unwrap()
}
