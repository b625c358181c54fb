//! Shared by the dashboard tests: a dashboard nested under `/ops/dashboard` on a real
//! socket, Redis seeding helpers, and an HTTP client that speaks its login and forms.
#![allow(dead_code)]

use axum::Router;
use queue_core::testing::TestRedis;
use queue_core::{Client, Timestamp};
use queue_web::{DashboardAuth, dashboard_router};
use serde_json::{Value, json};
use std::time::Duration;

/// The dashboard password of the tests.
pub(crate) const PASSWORD: &str = "correct horse battery";
/// Where the tests mount the dashboard (a nested prefix, so links must follow it).
pub(crate) const MOUNT: &str = "/ops/dashboard";

pub(crate) struct Dash {
    /// `http://127.0.0.1:PORT`
    pub(crate) origin: String,
    pub(crate) client: Client,
    /// No redirects followed, no cookies kept: each test says what it sends.
    pub(crate) http: reqwest::Client,
}

impl Dash {
    pub(crate) async fn start(redis: &TestRedis, test_name: &str) -> Dash {
        Self::start_with(redis, test_name, DashboardAuth::password(PASSWORD).unwrap()).await
    }

    pub(crate) async fn start_with(
        redis: &TestRedis,
        test_name: &str,
        auth: DashboardAuth,
    ) -> Dash {
        let client = Client::connect(redis.config(test_name)).await.unwrap();
        Self::start_on(client, auth).await
    }

    /// A dashboard reading through `client` (a cluster's, say).
    pub(crate) async fn start_on(client: Client, auth: DashboardAuth) -> Dash {
        let app = Router::new().nest(MOUNT, dashboard_router(client.clone(), auth));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Dash {
            origin: format!("http://{addr}"),
            client,
            http,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{MOUNT}{path}", self.origin)
    }

    /// GET with the right password (HTTP Basic).
    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .basic_auth("ops", Some(PASSWORD))
            .send()
            .await
            .unwrap()
    }

    /// A CSRF cookie and the token that goes with it, as a browser gets them from a page.
    pub(crate) async fn csrf(&self) -> (String, String) {
        let response = self.get("/queues").await;
        assert_eq!(response.status(), 200);
        let cookie = set_cookie(&response, "dq_csrf").unwrap();
        let body = response.text().await.unwrap();
        (cookie, token_in(&body))
    }

    /// POST `form` to `path` with the right password, the CSRF cookie and token, and a
    /// same-origin `Origin`.
    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let (cookie, token) = self.csrf().await;
        let mut fields: Vec<(&str, &str)> = vec![("csrf", &token)];
        fields.extend_from_slice(form);
        self.http
            .post(self.url(path))
            .basic_auth("ops", Some(PASSWORD))
            .header("cookie", format!("dq_csrf={cookie}"))
            .header("origin", &self.origin)
            .form(&fields)
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn redis(&self, args: &[&str]) -> redis::Value {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query_async(&mut self.client.raw_connection())
            .await
            .unwrap()
    }

    /// Adds `job` to the sorted set at `key` with score now + `offset_secs`.
    pub(crate) async fn zadd(&self, key: &str, job: &Value, offset_secs: f64) {
        let score = Timestamp::now().as_secs_f64() + offset_secs;
        self.redis(&["ZADD", key, &score.to_string(), &job.to_string()])
            .await;
    }

    pub(crate) async fn zcard(&self, key: &str) -> i64 {
        redis::from_redis_value(self.redis(&["ZCARD", key]).await).unwrap()
    }

    pub(crate) async fn llen(&self, key: &str) -> i64 {
        redis::from_redis_value(self.redis(&["LLEN", key]).await).unwrap()
    }
}

/// A failed job as the worker stores it in `retry`/`dead`.
pub(crate) fn failed_job(jid: &str, class: &str, queue: &str, error: &str) -> Value {
    let now = Timestamp::now().as_secs_f64();
    json!({
        "jid": jid, "class": class, "args": [1, "two"], "queue": queue,
        "retry": true, "retry_count": 3, "created_at": now - 60.0, "enqueued_at": now - 50.0,
        "failed_at": now - 10.0, "error_class": "RuntimeError", "error_message": error,
        "error_backtrace": ["app/jobs/x.rb:1:in `perform'", "lib/worker.rb:9"],
    })
}

/// The value of cookie `name` set by `response`.
pub(crate) fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (k, val) = first.split_once('=')?;
            (k == name).then(|| val.to_owned())
        })
}

/// The CSRF token of the first form in `body`.
pub(crate) fn token_in(body: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = body.find(marker).expect("a form with a CSRF token") + marker.len();
    body[start..start + 64].to_owned()
}
