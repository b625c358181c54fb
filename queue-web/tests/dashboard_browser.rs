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

/// Every page a browser opens.
const PAGES: [&str; 8] = [
    "",
    "/queues",
    "/queues/default",
    "/busy",
    "/sets/scheduled",
    "/sets/retries",
    "/sets/dead",
    "/search?q=Job&in=dead",
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

    // Every page: no CSP violation, no console error, no payload ran.
    for page in PAGES {
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
    }
    if let Ok(dir) = std::env::var("DASHBOARD_SCREENSHOT_DIR") {
        for (page, file) in [("", "dashboard.png"), ("/sets/dead", "dashboard-dead.png")] {
            browser.goto(&dash.url(page)).await.unwrap();
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
    for page in PAGES {
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
    }
}
