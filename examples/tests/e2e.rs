//! End to end: the real `web`, `worker` and `client` binaries as processes, over HTTP,
//! against a private Redis per test.
//!
//! Every wait polls with a deadline (no sleep stands in for synchronisation). When a test
//! fails, each process's log is printed (and the Redis log, by `TestRedis`).

mod support;

use queue_core::testing::TestRedis;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::process::ExitStatus;
use std::time::{Duration, Instant};
use support::{POLL, Proc, free_port};

/// `REPORT_SECONDS` of every worker here: a default report is 3 pages of 1 s.
const REPORT_SECONDS: &str = "3";
/// Longest any single wait of these tests may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// Redis, one web process and some workers. Fields drop in order: processes first (their
/// logs are printed while the temp dir still exists), then Redis, then the temp dir.
struct Stack {
    web: Proc,
    workers: Vec<Proc>,
    redis: TestRedis,
    http: reqwest::Client,
    base: String,
    dir: tempfile::TempDir,
}

impl Stack {
    /// Starts Redis, `web` (with `METRICS_TOKEN=test-token`, the POST rate limit out of the
    /// way) and one `worker` with the extra
    /// `worker_env`, and waits until the web process is healthy.
    async fn start(worker_env: &[(&str, &str)]) -> Self {
        let redis = TestRedis::start();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let web = Proc::spawn(
            "web",
            env!("CARGO_BIN_EXE_web"),
            &[],
            dir.path(),
            &[
                ("REDIS_URL", redis.url()),
                ("PORT", port.to_string()),
                ("METRICS_TOKEN", "test-token".to_owned()),
                // The tests POST far faster than a person would (the limit has its own test).
                ("POST_RATE_BURST", "10000".to_owned()),
            ],
        );
        let mut stack = Self {
            web,
            workers: Vec::new(),
            redis,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        stack.start_worker(worker_env);
        stack.wait_healthy().await;
        stack
    }

    /// Starts one more worker process.
    fn start_worker(&mut self, extra: &[(&str, &str)]) -> &mut Proc {
        let mut env = vec![
            ("REDIS_URL", self.redis.url()),
            ("REPORT_SECONDS", REPORT_SECONDS.to_owned()),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        let name = format!("worker-{}", self.workers.len() + 1);
        let worker = Proc::spawn(
            &name,
            env!("CARGO_BIN_EXE_worker"),
            &[],
            self.dir.path(),
            &env,
        );
        self.workers.push(worker);
        self.workers.last_mut().unwrap()
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.web.exited() {
                panic!("web exited during start-up: {status}");
            }
            let url = format!("{}/health", self.base);
            if let Ok(r) = self.http.get(url).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            assert!(Instant::now() < deadline, "web not healthy in time");
            tokio::time::sleep(POLL).await;
        }
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Posts and checks the `202`: returns the `Location` (a path below `/jobs/`).
    async fn enqueue(&self, path: &str, body: Value) -> String {
        let response = self.post(path, body).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/jobs/"), "{location}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status_url"], location.as_str());
        assert_eq!(format!("/jobs/{}", body["id"].as_str().unwrap()), location);
        location
    }

    /// One status answer; `wait` long-polls for that many seconds.
    async fn status(&self, location: &str, wait: Option<u32>) -> Value {
        let mut url = format!("{}{location}", self.base);
        if let Some(w) = wait {
            url.push_str(&format!("?wait={w}"));
        }
        let response = self.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Long-polls `location` until `done` holds; returns every answer seen, the last one
    /// satisfying `done`.
    async fn follow(&self, location: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        let mut seen = vec![self.status(location, None).await];
        while !done(seen.last().unwrap()) {
            assert!(
                Instant::now() < deadline,
                "{location} did not get there in time; answers: {seen:#?}"
            );
            // Short waits, so the deadline above is checked at least every 5 s.
            seen.push(self.status(location, Some(5)).await);
        }
        seen
    }

    /// Connections open on the test's Redis, not counting the one asking.
    fn redis_connections(&self) -> usize {
        let list = self.redis.raw_command(&["CLIENT", "LIST"]);
        list.lines().filter(|l| l.contains("addr=")).count() - 1
    }

    /// Polls until `n` connections are open (the processes connect after they start).
    async fn wait_connections(&self, n: usize) {
        let deadline = Instant::now() + DEADLINE;
        while self.redis_connections() != n {
            assert!(
                Instant::now() < deadline,
                "expected {n} Redis connections, have {}:\n{}",
                self.redis_connections(),
                self.redis.raw_command(&["CLIENT", "LIST"])
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs the `client` binary with `args` to its end (at most [`DEADLINE`]).
    async fn run_client(&self, name: &str, args: &[&str]) -> (ExitStatus, String, String) {
        let mut client = Proc::spawn(
            name,
            env!("CARGO_BIN_EXE_client"),
            args,
            self.dir.path(),
            &[("APP_URL", self.base.clone())],
        );
        let status = client.wait_exit(DEADLINE).await;
        let (out, err) = client.output();
        (status, out, err)
    }
}

fn is_terminal(v: &Value) -> bool {
    matches!(
        v["state"].as_str(),
        Some("succeeded" | "dead" | "cancelled")
    )
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_answer_202_show_rising_progress_and_succeed() {
    // 50 reports at once, so that they all run together and finish in one report's time.
    let stack = Stack::start(&[("WORKER_CONCURRENCY", "50")]).await;
    // One each: the web's shared connection, and the worker's, which also carries the wake
    // channel's messages (RESP3 pushes; the test server is Redis 7).
    stack.wait_connections(2).await;

    let mut times = Vec::new();
    let mut locations = Vec::new();
    for i in 0..50 {
        let started = Instant::now();
        let location = stack
            .enqueue("/reports", json!({ "title": format!("report {i}") }))
            .await;
        times.push(started.elapsed());
        locations.push(location);
    }
    let (min, max) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    eprintln!(
        "POST /reports: median {:?} over {} requests (min {min:?}, max {max:?}; debug build, loopback)",
        median(times.clone()),
        times.len()
    );

    let seen = stack.follow(&locations[0], is_terminal).await;
    let last = seen.last().unwrap();
    assert_eq!(last["state"], "succeeded", "{seen:#?}");
    assert_eq!(last["attempt"], 1);
    let running: Vec<u64> = seen
        .iter()
        .filter(|s| s["state"] == "running")
        .map(|s| s["progress"]["percent"].as_u64().unwrap())
        .collect();
    assert!(
        running.windows(2).all(|w| w[0] <= w[1]),
        "progress went down: {running:?}"
    );
    assert!(
        running.iter().any(|p| (1..100).contains(p)),
        "no progress between 0 and 100 seen: {seen:#?}"
    );
    assert!(
        seen.iter().any(|s| s["progress"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("crunching page"))),
        "{seen:#?}"
    );
    let result = &last["result"];
    assert_eq!(result["summary"]["title"], "report 0");
    assert_eq!(result["summary"]["pages"], 3);
    assert!(
        result["text"]
            .as_str()
            .unwrap()
            .starts_with("Report \"report 0\"")
    );

    for location in &locations[1..] {
        let seen = stack.follow(location, is_terminal).await;
        assert_eq!(seen.last().unwrap()["state"], "succeeded", "{seen:#?}");
    }
    // Concurrency 50 and 50 long polls later, still one connection per process: the long
    // poll's subscription rides on the web's shared connection too.
    assert_eq!(stack.redis_connections(), 2);

    // A bad body is refused with nothing enqueued; metrics need the token.
    let bad = stack.post("/reports", json!({ "title": "" })).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let bad = stack.post("/reports", json!({ "nope": 1 })).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let metrics = format!("{}/metrics", stack.base);
    let denied = stack.http.get(&metrics).send().await.unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let allowed = stack
        .http
        .get(&metrics)
        .bearer_auth("test-token")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_job_fails_once_and_succeeds_on_attempt_2() {
    let stack = Stack::start(&[]).await;
    let location = stack.enqueue("/flaky", json!({ "label": "e2e" })).await;
    let seen = stack.follow(&location, is_terminal).await;
    let last = seen.last().unwrap();
    assert_eq!(last["state"], "succeeded", "{seen:#?}");
    assert_eq!(last["attempt"], 2, "{seen:#?}");
    assert_eq!(last["result"]["attempt"], 2);
    assert_eq!(last["result"]["label"], "e2e");
    // The retry waits 1 s in the retry set, far longer than a long poll takes to notice.
    let retrying = seen
        .iter()
        .find(|s| s["state"] == "retrying")
        .unwrap_or_else(|| panic!("never saw retrying: {seen:#?}"));
    assert!(
        retrying["error"]
            .as_str()
            .unwrap()
            .contains("simulated transient failure"),
        "{retrying:#?}"
    );
    let (log, _) = stack.workers[0].output();
    assert!(log.contains("job failed"), "{log}");

    // A POST without a body works too.
    let response = stack
        .http
        .post(format!("{}/flaky", stack.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_a_running_report_back_and_another_worker_finishes_it() {
    // SHUTDOWN_TIMEOUT=1: the report (6 pages, 6 s) is still running when it runs out.
    let mut stack = Stack::start(&[("SHUTDOWN_TIMEOUT", "1")]).await;
    let location = stack
        .enqueue("/reports", json!({ "title": "handed back", "pages": 6 }))
        .await;
    let seen = stack.follow(&location, |s| s["state"] == "running").await;
    assert_eq!(seen.last().unwrap()["attempt"], 1);

    let worker = &mut stack.workers[0];
    worker.signal("TERM");
    let status = worker.wait_exit(Duration::from_secs(15)).await;
    assert!(status.success(), "worker exited with {status}");
    let (log, _) = worker.output();
    assert!(log.contains("handed back"), "{log}");

    // Nobody works now: the job waits at the front of its queue.
    let now = stack.status(&location, None).await;
    assert_eq!(now["state"], "queued", "{now:#?}");

    stack.start_worker(&[]);
    let seen = stack.follow(&location, is_terminal).await;
    let last = seen.last().unwrap();
    assert_eq!(last["state"], "succeeded", "{seen:#?}");
    assert_eq!(last["result"]["summary"]["title"], "handed back");
    assert_eq!(last["result"]["summary"]["pages"], 6);
    assert!(
        seen.iter().any(|s| s["state"] == "running"),
        "the second worker's run was not seen: {seen:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_binary_follows_jobs_to_their_end() {
    let stack = Stack::start(&[]).await;

    let (status, out, err) = stack.run_client("client-report", &["E2E", "title"]).await;
    assert!(status.success(), "client exited {status}\n{out}\n{err}");
    assert!(out.contains("202 Accepted"), "{out}");
    assert!(out.contains("succeeded on attempt 1"), "{out}");
    assert!(out.contains("Report \"E2E title\""), "{out}");
    assert!(out.contains("pages crunched: 3"), "{out}");
    // Not a terminal here, so progress comes as one line per change.
    assert!(err.contains("running: crunching page"), "{err}");

    let (status, out, err) = stack.run_client("client-flaky", &["--flaky"]).await;
    assert!(status.success(), "client exited {status}\n{out}\n{err}");
    assert!(out.contains("succeeded on attempt 2"), "{out}");

    // A request the web process refuses ends the client with a non-zero status.
    let (status, _, err) = stack
        .run_client("client-refused", &["--pages", "0", "Q3"])
        .await;
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("400"), "{err}");

    // A job that ends badly (here: cancelled before any worker took it) exits 1.
    let client = queue_core::Client::connect(queue_core::ClientConfig::new(stack.redis.url()))
        .await
        .unwrap();
    let parked = queue_core::EnqueueOptions::new().queue("parked");
    let id = client
        .enqueue_with(&examples::FlakyJob { label: "x".into() }, parked)
        .await
        .unwrap();
    assert!(client.cancel(&id).await.unwrap());
    let path = format!("/jobs/{id}");
    let (status, _, err) = stack
        .run_client("client-cancelled", &["--follow", &path])
        .await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("job failed: cancelled"), "{err}");
}
