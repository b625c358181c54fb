//! A headless Chromium driven over WebDriver by fantoccini, for the dashboard's browser
//! tests: chromedriver on a free port, a browser session, its console log, the check that
//! no XSS payload ran, and a deadline-bound poll.
//!
//! Shared by `queue-web/tests/dashboard_browser.rs` (`mod browser;`) and
//! `examples/tests/dashboard_e2e.rs` (`#[path = ...] mod browser;`), so both drive the
//! browser the same way. Needs Debian's `chromium` and `chromium-driver`, which
//! `script/ensure-chromium` installs.
#![allow(dead_code)]

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::time::Instant;

/// How long any one wait of a browser test may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(20);

/// chromedriver on a free port; killed on drop.
pub(crate) struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn start_driver() -> Driver {
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

pub(crate) async fn open_browser(driver: &Driver) -> Browser {
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

/// Logs in through the dashboard's form at `url` (any dashboard page) with `password`, and
/// waits for the overview.
pub(crate) async fn log_in(browser: &Browser, url: &str, password: &str) {
    browser.goto(url).await.unwrap();
    let field = browser
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Id("password"))
        .await
        .unwrap();
    field.send_keys(password).await.unwrap();
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
}

/// Opens `url` and waits for its heading.
pub(crate) async fn open(browser: &Browser, url: &str) {
    browser.goto(url).await.unwrap();
    browser
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css("main h1"))
        .await
        .unwrap();
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
pub(crate) async fn console_problems(browser: &Browser) -> Vec<String> {
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
pub(crate) async fn assert_no_payload_ran(browser: &Browser, page: &str) {
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

/// Polls `check` every 50 ms until it holds; fails the test after [`DEADLINE`].
pub(crate) async fn wait_until<F, Fut>(what: &str, mut check: F)
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
