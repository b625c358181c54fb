//! The dashboard in a real headless Chromium (Debian's `chromium` + `chromium-driver`,
//! which `script/ensure-chromium` installs), driven over WebDriver by fantoccini: log in,
//! open every page without a CSP violation or console error, retry a dead job, pause a
//! queue, XSS payloads that do not run, and no horizontal overflow at 375 px.
//!
//! One browser for the whole binary: the scenarios run one after another in one test, so
//! Chromium starts once.

mod dashboard_support;

use dashboard_support::{Dash, MOUNT, PASSWORD, failed_job};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use queue_core::Inspector;
use queue_core::testing::TestRedis;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// How long any one wait in this test may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// Every page a browser opens, with the name of its screenshot.
const PAGES: [(&str, &str); 10] = [
    ("", "dashboard.png"),
    ("/queues", "dashboard-queues.png"),
    ("/queues/default", "dashboard-queue.png"),
    ("/busy", "dashboard-busy.png"),
    ("/sets/scheduled", "dashboard-scheduled.png"),
    ("/sets/retries", "dashboard-retries.png"),
    ("/sets/dead", "dashboard-dead.png"),
    ("/jobs/dead0", "dashboard-job.png"),
    ("/jobs/xss1", "dashboard-job-xss.png"),
    ("/search?q=Job&in=dead", "dashboard-search.png"),
];

/// chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian's chromium-driver; script/ensure-chromium installs it)");
    let url = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + DEADLINE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < until, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Driver { child, url }
}

async fn open_browser(driver: &Driver) -> Browser {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                        "--window-size=1280,900", "--hide-scrollbars"]}),
    );
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    ClientBuilder::native()
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap()
}

/// chromedriver's console log (`POST /session/{id}/se/log`), drained by each read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// Console messages of level WARNING or SEVERE since the last read (CSP violations and
/// script errors are SEVERE).
async fn console_problems(browser: &Browser) -> Vec<String> {
    let log = browser.issue_cmd(BrowserLog).await.unwrap();
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
        .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
        // The browser asks for a favicon the dashboard does not have.
        .filter(|m| !m.contains("favicon.ico"))
        .collect()
}

/// Whether a payload ran: it would set `window.pwned` or open an alert.
async fn assert_no_payload_ran(browser: &Browser, page: &str) {
    let pwned = browser
        .execute("return typeof window.pwned === 'undefined';", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, Value::Bool(true), "a payload ran on {page}");
    assert!(
        browser.get_alert_text().await.is_err(),
        "an alert is open on {page}"
    );
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_secs() -> f64 {
    queue_core::Timestamp::now().as_secs_f64()
}

async fn seed(dash: &Dash) {
    let keys = dash.client.keys();
    let set_pwned = "<script>window.pwned=1</script>";
    let img = r#""><img src=x onerror="window.pwned=1;alert(1)">"#;
    let mut xss = failed_job("xss1", set_pwned, img, img);
    xss["args"] = json!([set_pwned, img, "javascript:window.pwned=1"]);
    xss["error_class"] = json!(img);
    xss["error_backtrace"] = json!([set_pwned, img]);
    for set in [keys.dead(), keys.retry(), keys.schedule()] {
        dash.zadd(&set, &xss, 3600.0).await;
    }
    for (i, class) in ["ReportJob", "MailerJob", "ImportJob"].iter().enumerate() {
        let job = failed_job(
            &format!("dead{i}"),
            class,
            "default",
            "connection refused (os error 111)",
        );
        dash.zadd(&keys.dead(), &job, -60.0 * i as f64).await;
        let retry = failed_job(
            &format!("retry{i}"),
            class,
            "mailers",
            "SMTP timeout after 30s",
        );
        dash.zadd(&keys.retry(), &retry, 120.0 * (i + 1) as f64)
            .await;
    }
    for i in 0..12 {
        let job = json!({"jid": format!("q{i}"), "class": "ReportJob", "args": [{"account_id": i}],
                         "queue": "default", "enqueued_at": queue_core::Timestamp::now().as_secs_f64() - 5.0});
        dash.redis(&["LPUSH", &keys.queue("default"), &job.to_string()])
            .await;
    }
    dash.redis(&["LPUSH", &keys.queue("default"), &xss.to_string()])
        .await;
    dash.redis(&["SADD", &keys.queues(), "default", "mailers"])
        .await;
    dash.redis(&["SET", &keys.stat_processed(), "18234"]).await;
    dash.redis(&["SET", &keys.stat_failed(), "97"]).await;
    // The payloads in every text field of a status record too.
    dash.redis(&[
        "HSET",
        &keys.status("xss1"),
        "state",
        "dead",
        "class",
        set_pwned,
        "queue",
        img,
        "error",
        img,
        "result",
        &json!(set_pwned).to_string(),
        "message",
        img,
        "owner",
        set_pwned,
    ])
    .await;
    // A status record with progress, for the job page.
    dash.redis(&[
        "HSET",
        &keys.status("dead0"),
        "state",
        "dead",
        "class",
        "ReportJob",
        "queue",
        "default",
        "attempt",
        "5",
        "progress",
        "40",
        "message",
        "page 12 of 30",
        "error",
        "connection refused (os error 111)",
        "created_at",
        &(now_secs() - 900.0).to_string(),
        "started_at",
        &(now_secs() - 600.0).to_string(),
        "finished_at",
        &(now_secs() - 60.0).to_string(),
    ])
    .await;
    // A worker process holding two jobs, for the busy page.
    let identity = "web.2:4242:9f1c";
    let info = json!({"hostname": "web.2", "pid": 4242, "concurrency": 10, "queues": ["default", "mailers"]});
    dash.redis(&["SADD", &keys.processes(), identity]).await;
    dash.redis(&[
        "HSET",
        &keys.process(identity),
        "info",
        &info.to_string(),
        "busy",
        "2",
        "beat",
        &now_secs().to_string(),
        "rss",
        "184320",
    ])
    .await;
    for (jid, class) in [("run1", "ImportJob"), ("run2", "ReportJob")] {
        let job = json!({"jid": jid, "class": class, "args": [7], "queue": "default"});
        dash.redis(&["LPUSH", &keys.processing(identity), &job.to_string()])
            .await;
        dash.redis(&[
            "HSET",
            &keys.status(jid),
            "state",
            "running",
            "started_at",
            &(now_secs() - 42.0).to_string(),
        ])
        .await;
    }
    // The last hour's per-minute counters, for the hour chart.
    let minute = now_secs() as u64 / 60;
    for back in 0..60u64 {
        let processed = 20 + (back * 37) % 45;
        let failed = (back * 3) % 5;
        dash.redis(&[
            "HSET",
            &keys.stat_minute(minute - back),
            "processed",
            &processed.to_string(),
            "failed",
            &failed.to_string(),
        ])
        .await;
    }
    // Three weeks of daily counters, for the history chart.
    let now = queue_core::Timestamp::now().as_secs_f64();
    for back in 0..21u32 {
        let day = queue_core::timestamp::utc_day(now - f64::from(back) * 86_400.0);
        let processed = 900 + (back * 137) % 700;
        let failed = (back * 7) % 40;
        dash.redis(&["SET", &keys.stat_processed_on(&day), &processed.to_string()])
            .await;
        dash.redis(&["SET", &keys.stat_failed_on(&day), &failed.to_string()])
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_browser").await;
    seed(&dash).await;
    let driver = start_driver().await;
    let browser = open_browser(&driver).await;
    let result = scenarios(&dash, &browser).await;
    browser.close().await.unwrap();
    result
}

async fn scenarios(dash: &Dash, browser: &Browser) {
    // Log in through the form.
    browser.goto(&dash.url("")).await.unwrap();
    let password = browser
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Id("password"))
        .await
        .unwrap();
    password.send_keys(PASSWORD).await.unwrap();
    browser
        .find(Locator::Css("main.login button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::XPath("//h1[text()='Overview']"))
        .await
        .unwrap();
    assert_eq!(browser.current_url().await.unwrap().path(), MOUNT);
    let _ = console_problems(browser).await;

    // Every page: no CSP violation, no console error, no payload ran. With
    // DASHBOARD_SCREENSHOT_DIR set, each page is saved there as PNG (docs/ holds them).
    let shots = std::env::var("DASHBOARD_SCREENSHOT_DIR").ok();
    for (page, file) in PAGES {
        browser.goto(&dash.url(page)).await.unwrap();
        browser
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css("main h1"))
            .await
            .unwrap();
        let problems = console_problems(browser).await;
        assert!(problems.is_empty(), "{page}: {problems:?}");
        assert_no_payload_ran(browser, page).await;
        if let Some(dir) = &shots {
            let png = browser.screenshot().await.unwrap();
            std::fs::write(format!("{dir}/{file}"), png).unwrap();
        }
    }

    // Retry now on a dead job: it leaves the dead page and is back in its queue.
    let keys = dash.client.keys();
    let queued_before = dash.llen(&keys.queue("default")).await;
    browser.goto(&dash.url("/sets/dead")).await.unwrap();
    browser
        .find(Locator::Css(
            r#"form:has(input[name=jid][value="dead1"]) button[name=retry]"#,
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until("the retried job to leave the dead page", || async {
        let source = browser.source().await.unwrap();
        source.contains("Sent back to its queue.") && !source.contains(r#"value="dead1""#)
    })
    .await;
    assert_eq!(dash.llen(&keys.queue("default")).await, queued_before + 1);

    // Pause a queue with its button.
    browser.goto(&dash.url("/queues")).await.unwrap();
    browser
        .find(Locator::Css(&format!(
            r#"form[action="{MOUNT}/queues/default/pause"] button"#
        )))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until("the queue to show paused", || async {
        browser.source().await.unwrap().contains("Paused.")
    })
    .await;
    assert_eq!(
        Inspector::new(&dash.client).paused().await.unwrap(),
        ["default"]
    );
    assert!(console_problems(browser).await.is_empty());

    // A phone-sized window: nothing is wider than the viewport.
    browser.set_window_size(375, 812).await.unwrap();
    for (page, file) in PAGES {
        browser.goto(&dash.url(page)).await.unwrap();
        browser
            .wait()
            .at_most(DEADLINE)
            .for_element(Locator::Css("main h1"))
            .await
            .unwrap();
        let fits = browser
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, Value::Bool(true), "{page} overflows at 375 px");
        if let Some(dir) = shots.as_ref().filter(|_| page == "/sets/dead") {
            let png = browser.screenshot().await.unwrap();
            std::fs::write(format!("{dir}/{}", file.replace(".png", "-phone.png")), png).unwrap();
        }
    }
}
