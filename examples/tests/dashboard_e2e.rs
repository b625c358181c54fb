//! The dashboard of the real example app in headless Chromium: a private Redis, the `web`
//! binary (serving `/dashboard` with `DASHBOARD_PASSWORD`) and the `worker` binary as
//! processes, and the browser harness of `queue-web/tests/browser`.
//!
//! One test, so Chromium starts once; its scenarios run one after another: no credentials
//! get `401`; log in; pause a queue and see it fill while the worker takes nothing; resume
//! and see it drain; retry a dead job and see it succeed; cancel a running report; XSS
//! payloads in every job field run nowhere; forged POSTs change nothing.
//!
//! Every wait polls a condition with a deadline. When the test fails, each process's log
//! is printed (and the Redis log, by `TestRedis`).

#[path = "../../queue-web/tests/browser/mod.rs"]
mod browser;
mod support;

use browser::{
    DEADLINE, assert_no_payload_ran, console_problems, log_in, open, open_browser, start_driver,
    wait_until,
};
use examples::FlakyJob;
use fantoccini::{Client as Browser, Locator};
use queue_core::testing::TestRedis;
use queue_core::{
    Client, ClientConfig, EnqueueOptions, Inspector, JobId, JobState, NewJob, Retry, Timestamp,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;
use support::{Proc, free_port};

/// The dashboard password the web process gets.
const PASSWORD: &str = "browser e2e password";
/// Jobs enqueued while `default` is paused.
const FILL: usize = 12;
/// The worker's heartbeat: fast, so "two beats later" comes quickly.
const HEARTBEAT_MS: &str = "200";
/// The worker's idle poll (`WorkerConfig::idle_poll`): a worker that missed its wake-up
/// still looks at its queues this often.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Sets `window.pwned` if it ever runs as script.
const SCRIPT: &str = "<script>window.pwned=1</script>";
/// Breaks out of an attribute and sets `window.pwned` if it ever becomes an element.
const IMG: &str = r#""><img src=x onerror="window.pwned=1">"#;
/// Sets `window.pwned` if it ever becomes a link and is followed.
const JS_URL: &str = "javascript:window.pwned=1";

/// Redis, `web` and `worker`. Fields drop in order: processes first (their logs are printed
/// while the temp dir still exists), then Redis, then the temp dir.
struct App {
    /// Held for its drop: the process is killed and its log printed on failure.
    _web: Proc,
    worker: Proc,
    redis: TestRedis,
    /// Reads and seeds the same Redis, with the app's (default) key prefix.
    client: Client,
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT`
    origin: String,
    _dir: tempfile::TempDir,
}

impl App {
    async fn start() -> Self {
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
                ("DASHBOARD_PASSWORD", PASSWORD.to_owned()),
                ("POST_RATE_BURST", "10000".to_owned()),
            ],
        );
        let worker = Proc::spawn(
            "worker",
            env!("CARGO_BIN_EXE_worker"),
            &[],
            dir.path(),
            &[
                ("REDIS_URL", redis.url()),
                ("REPORT_SECONDS", "1".to_owned()),
                ("WORKER_CONCURRENCY", FILL.to_string()),
                ("WORKER_HEARTBEAT_MS", HEARTBEAT_MS.to_owned()),
            ],
        );
        let client = Client::connect(ClientConfig::new(redis.url()))
            .await
            .unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(DEADLINE)
            .build()
            .unwrap();
        let app = Self {
            _web: web,
            worker,
            redis,
            client,
            http,
            origin: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let health = format!("{}/health", app.origin);
        wait_until("web to answer /health", || async {
            matches!(app.http.get(&health).send().await, Ok(r) if r.status() == StatusCode::OK)
        })
        .await;
        app
    }

    fn dash(&self, path: &str) -> String {
        format!("{}/dashboard{path}", self.origin)
    }

    fn inspect(&self) -> Inspector<'_> {
        Inspector::new(&self.client)
    }

    /// `POST /reports` through the app, as a user would; the new job's id.
    async fn post_report(&self, title: &str, pages: u32) -> JobId {
        let response = self
            .http
            .post(format!("{}/reports", self.origin))
            .json(&json!({"title": title, "pages": pages}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.unwrap();
        JobId::parse(body["id"].as_str().unwrap()).unwrap()
    }

    async fn state(&self, id: &JobId) -> Option<JobState> {
        self.client.status(id).await.unwrap().map(|s| s.state)
    }

    async fn wait_state(&self, id: &JobId, want: JobState) {
        wait_until(&format!("job {id} to be {want:?}"), || async {
            self.state(id).await == Some(want)
        })
        .await;
    }

    /// The worker process's latest heartbeat (it is the only process).
    async fn beat(&self) -> Option<f64> {
        let processes = self.inspect().processes().await.unwrap();
        processes.first()?.beat.map(|b| b.as_secs_f64())
    }

    /// An integer reply (RESP `:N`).
    fn int(&self, command: &[&str]) -> u64 {
        let reply = self.redis.raw_command(command);
        reply.trim().trim_start_matches(':').parse().unwrap()
    }

    fn llen(&self, key: &str) -> u64 {
        self.int(&["LLEN", key])
    }

    fn zcard(&self, key: &str) -> u64 {
        self.int(&["ZCARD", key])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_apps_dashboard_works_in_a_real_browser() {
    let started = std::time::Instant::now();
    let app = App::start().await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    scenarios(&app, &browser).await;
    browser.close().await.unwrap();
    eprintln!("dashboard browser e2e took {:?}", started.elapsed());
}

async fn scenarios(app: &App, browser: &Browser) {
    // A FlakyJob with retries off fails its first attempt straight into the dead set.
    let no_retry = EnqueueOptions::new().retry(Retry::Disabled);
    let dead = app
        .client
        .enqueue_with(
            &FlakyJob {
                label: "raised from the dead".into(),
            },
            no_retry,
        )
        .await
        .unwrap();
    app.wait_state(&dead, JobState::Dead).await;

    no_credentials_get_401_and_no_data(app, &dead).await;
    log_in(browser, &app.dash(""), PASSWORD).await;
    assert_eq!(browser.current_url().await.unwrap().path(), "/dashboard");
    let _ = console_problems(browser).await;

    pause_fill_resume_drain(app, browser).await;
    retry_the_dead_job(app, browser, &dead).await;
    cancel_a_running_report(app, browser).await;
    xss_payloads_run_nowhere(app, browser).await;
    forged_posts_change_nothing(app, browser).await;
}

async fn no_credentials_get_401_and_no_data(app: &App, dead: &JobId) {
    for path in ["", "/queues", "/sets/dead", &format!("/jobs/{dead}")] {
        for password in [None, Some("wrong password")] {
            let mut request = app.http.get(app.dash(path));
            if let Some(p) = password {
                request = request.basic_auth("ops", Some(p));
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
            let body = response.text().await.unwrap();
            for data in [dead.as_str(), "FlakyJob", "raised from the dead", "default"] {
                assert!(
                    !body.contains(data),
                    "{path} without credentials shows {data}"
                );
            }
        }
    }
    // The same request with the password does show the data.
    let response = app
        .http
        .get(app.dash("/sets/dead"))
        .basic_auth("ops", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains(dead.as_str()));
}

/// The size the queues page shows for `queue`, read from a fresh load of the page.
async fn size_on_page(app: &App, browser: &Browser, queue: &str) -> Option<u64> {
    open(browser, &app.dash("/queues")).await;
    let cell = browser
        .find(Locator::XPath(&format!(
            "//tr[td/a[text()='{queue}']]/td[2]"
        )))
        .await
        .ok()?;
    cell.text().await.ok()?.trim().parse().ok()
}

/// Clicks the button of the form posting to `action` (a path below the dashboard).
async fn click_form(browser: &Browser, action: &str) {
    let selector = format!(r#"form[action="/dashboard{action}"] button"#);
    browser
        .find(Locator::Css(&selector))
        .await
        .unwrap_or_else(|e| panic!("no form posting to {action}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn pause_fill_resume_drain(app: &App, browser: &Browser) {
    let queue = app.client.keys().queue("default");
    open(browser, &app.dash("/queues")).await;
    click_form(browser, "/queues/default/pause").await;
    wait_until("the pause to be recorded", || async {
        app.inspect().paused().await.unwrap() == ["default"]
    })
    .await;
    // The worker logs when its copy of the paused set changes: from then on it skips the
    // queue, so the jobs below are enqueued after it knows.
    wait_until("the worker to notice the pause", || async {
        app.worker.output().0.contains("paused queues changed")
    })
    .await;

    let mut ids = Vec::new();
    for i in 0..FILL {
        ids.push(app.post_report(&format!("fill {i}"), 1).await);
    }
    let enqueued = app.inspect().redis_now().await.unwrap().as_secs_f64();
    wait_until("the queues page to show the queue full", || async {
        size_on_page(app, browser, "default").await == Some(FILL as u64)
    })
    .await;
    // A worker that took no job is indistinguishable from a slow one, so wait until it
    // has had every chance: a heartbeat later than its idle poll after the last enqueue
    // (the wake-up of the enqueue itself comes far sooner), then one more beat.
    let chance = enqueued + IDLE_POLL.as_secs_f64();
    wait_until("a heartbeat an idle poll after the enqueues", || async {
        app.beat().await.is_some_and(|b| b > chance)
    })
    .await;
    let seen = app.beat().await.unwrap();
    wait_until("one more heartbeat", || async {
        app.beat().await.is_some_and(|b| b > seen)
    })
    .await;
    assert_eq!(
        app.llen(&queue),
        FILL as u64,
        "the worker took from a paused queue"
    );
    let states = app.inspect().states(&ids).await.unwrap();
    assert!(
        states.iter().all(|s| *s == Some(JobState::Queued)),
        "{states:?}"
    );
    assert_eq!(
        size_on_page(app, browser, "default").await,
        Some(FILL as u64)
    );

    click_form(browser, "/queues/default/resume").await;
    wait_until("the resume to be recorded", || async {
        app.inspect().paused().await.unwrap().is_empty()
    })
    .await;
    wait_until("the queues page to show the queue drained", || async {
        size_on_page(app, browser, "default").await == Some(0)
    })
    .await;
    for id in &ids {
        app.wait_state(id, JobState::Succeeded).await;
    }
}

async fn retry_the_dead_job(app: &App, browser: &Browser, dead: &JobId) {
    let dead_set = app.client.keys().dead();
    assert_eq!(app.zcard(&dead_set), 1);
    open(browser, &app.dash("/sets/dead")).await;
    browser
        .find(Locator::Css(&format!(
            r#"form:has(input[name=jid][value="{dead}"]) button[name=retry]"#
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until("the retried job to leave the dead page", || async {
        let source = browser.source().await.unwrap();
        source.contains("Sent back to its queue.") && !source.contains(dead.as_str())
    })
    .await;
    assert_eq!(app.zcard(&dead_set), 0);
    // FlakyJob succeeds from its second attempt: the retry ran it.
    app.wait_state(dead, JobState::Succeeded).await;
    let status = app.client.status(dead).await.unwrap().unwrap();
    assert_eq!(status.attempt, 2, "{status:?}");
    assert_eq!(status.result.unwrap()["label"], "raised from the dead");
    open(browser, &app.dash(&format!("/jobs/{dead}"))).await;
    browser
        .find(Locator::Css("span.state-succeeded"))
        .await
        .unwrap();
}

async fn cancel_a_running_report(app: &App, browser: &Browser) {
    // Long enough to still be running whatever the machine's load; the title is a payload
    // too, for the busy and job pages.
    let id = app.post_report(SCRIPT, 300).await;
    app.wait_state(&id, JobState::Running).await;
    let action = format!("/jobs/{id}/cancel");
    // The busy page lists the job once the worker's in-flight record has it.
    wait_until("the busy page to offer the job's cancel button", || async {
        open(browser, &app.dash("/busy")).await;
        let selector = format!(r#"form[action="/dashboard{action}"] button"#);
        browser.find(Locator::Css(&selector)).await.is_ok()
    })
    .await;
    assert_no_payload_ran(browser, "/busy").await;
    click_form(browser, &action).await;
    app.wait_state(&id, JobState::Cancelled).await;
    open(browser, &app.dash(&format!("/jobs/{id}"))).await;
    browser
        .find(Locator::Css("span.state-cancelled"))
        .await
        .unwrap();
    assert_no_payload_ran(browser, "the cancelled job").await;
}

/// A job as the worker stores a failed one, with a payload in every field it shows.
fn poisoned_entry(jid: &str, queue: &str) -> Value {
    let now = Timestamp::now().as_secs_f64();
    json!({
        "jid": jid, "class": SCRIPT, "args": [SCRIPT, IMG, JS_URL, {"href": JS_URL}],
        "queue": queue, "retry": true, "retry_count": 3, "created_at": now - 60.0,
        "enqueued_at": now - 50.0, "failed_at": now - 10.0, "error_class": IMG,
        "error_message": format!("{SCRIPT} {IMG} {JS_URL}"), "error_backtrace": [SCRIPT, IMG, JS_URL],
    })
}

async fn xss_payloads_run_nowhere(app: &App, browser: &Browser) {
    let keys = app.client.keys();
    // Through the client: a class, args and owner that are payloads, in a valid queue.
    let mut job = NewJob::new(SCRIPT, vec![json!(SCRIPT), json!(IMG), json!(JS_URL)]);
    job.queue = "xss".into();
    job.options = EnqueueOptions::new().owner(IMG);
    let tracked = app.client.push(job).await.unwrap();
    // Straight into Redis, as another Sidekiq client could write them: a queue whose name is
    // a payload (the client refuses such names), and entries in every set. Scores an hour
    // ahead, so the scheduler leaves the scheduled and retry entries where they are.
    let ahead = (Timestamp::now().as_secs_f64() + 3600.0).to_string();
    let evil_queue = keys.queue(IMG);
    let entry = poisoned_entry("xssentry", IMG).to_string();
    app.redis.raw_command(&["LPUSH", &evil_queue, &entry]);
    app.redis.raw_command(&["SADD", &keys.queues(), IMG]);
    for set in [keys.dead(), keys.retry(), keys.schedule()] {
        app.redis.raw_command(&["ZADD", &set, &ahead, &entry]);
    }
    app.redis.raw_command(&[
        "HSET",
        &keys.status("xssentry"),
        "state",
        "dead",
        "class",
        SCRIPT,
        "queue",
        IMG,
        "error",
        IMG,
        "message",
        SCRIPT,
        "result",
        &json!({"url": JS_URL}).to_string(),
    ]);

    let search = format!(
        "/search?q={}&in=dead",
        url::form_urlencoded::byte_serialize(SCRIPT.as_bytes()).collect::<String>()
    );
    let pages = [
        String::new(),
        "/queues".into(),
        "/queues/xss".into(),
        "/busy".into(),
        "/sets/scheduled".into(),
        "/sets/retries".into(),
        "/sets/dead".into(),
        format!("/jobs/{tracked}"),
        "/jobs/xssentry".into(),
        search,
        "/search?q=xss&in=queue:xss".into(),
    ];
    for page in &pages {
        open(browser, &app.dash(page)).await;
        assert_no_payload_ran(browser, page).await;
        // An injected element the CSP blocked would still log a violation.
        let problems = console_problems(browser).await;
        assert!(problems.is_empty(), "{page}: {problems:?}");
        // No payload became an element, a handler or a followable `javascript:` link.
        let injected = browser
            .find_all(Locator::Css(
                r#"script, img, [onerror], a[href^="javascript:" i]"#,
            ))
            .await
            .unwrap();
        assert!(injected.is_empty(), "{page} has an injected element");
    }
    // The payloads did reach the pages, as text.
    for page in ["/sets/dead", "/queues/xss", "/queues"] {
        open(browser, &app.dash(page)).await;
        let text = browser
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let shown = if page == "/queues" { IMG } else { SCRIPT };
        assert!(text.contains(shown), "{page} does not show {shown}: {text}");
    }
}

/// The CSRF token of the first form in `html`.
fn token_in(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..].chars().take_while(|c| *c != '"').collect()
}

async fn forged_posts_change_nothing(app: &App, browser: &Browser) {
    // A real token and its cookie, as the logged-in browser holds them.
    open(browser, &app.dash("/queues")).await;
    let token = token_in(&browser.source().await.unwrap());
    let nonce = browser
        .get_named_cookie("dq_csrf")
        .await
        .unwrap()
        .value()
        .to_owned();
    let wrong_token = "0".repeat(token.len());
    let dead_set = app.client.keys().dead();
    let dead_before = app.zcard(&dead_set);
    assert!(dead_before > 0);
    let post = |path: &str, origin: Option<&str>, cookie: bool, token: Option<&str>| {
        let mut form = vec![("jid", "xssentry".to_owned())];
        if let Some(t) = token {
            form.push(("csrf", t.to_owned()));
        }
        let mut request = app
            .http
            .post(app.dash(path))
            .basic_auth("ops", Some(PASSWORD))
            .form(&form);
        if let Some(o) = origin {
            request = request.header("origin", o);
        }
        if cookie {
            request = request.header("cookie", format!("dq_csrf={nonce}"));
        }
        request.send()
    };
    let same = Some(app.origin.as_str());
    let foreign = Some("http://evil.example");
    let forgeries = [
        ("no token", same, false, None),
        (
            "a token without its cookie",
            same,
            false,
            Some(token.as_str()),
        ),
        ("a wrong token", same, true, Some(wrong_token.as_str())),
        ("a foreign Origin", foreign, true, Some(token.as_str())),
        ("no Origin", None, true, Some(token.as_str())),
    ];
    for (what, origin, cookie, token) in forgeries {
        for path in ["/queues/default/pause", "/sets/dead/clear"] {
            let response = post(path, origin, cookie, token).await.unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what} on {path}");
        }
        assert!(app.inspect().paused().await.unwrap().is_empty(), "{what}");
        assert_eq!(app.zcard(&dead_set), dead_before, "{what}");
    }
    // The same POST with everything right does act, so the refusals above were the checks.
    let response = post("/queues/default/pause", same, true, Some(&token))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.inspect().paused().await.unwrap(), ["default"]);
}
