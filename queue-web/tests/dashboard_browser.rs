//! The dashboard in a real headless Chromium (Debian's `chromium` + `chromium-driver`,
//! which `script/ensure-chromium` installs), driven over WebDriver by fantoccini: log in,
//! open every page without a CSP violation or console error, retry a dead job, pause a
//! queue, XSS payloads that do not run, and no horizontal overflow at 375 px.
//!
//! One browser for the whole binary: the scenarios run one after another in one test, so
//! Chromium starts once.

mod browser;
mod dashboard_support;

use browser::{
    DEADLINE, assert_no_payload_ran, console_problems, log_in, open_browser, start_driver,
    wait_until,
};
use dashboard_support::{Dash, MOUNT, PASSWORD, failed_job};
use fantoccini::{Client as Browser, Locator};
use queue_core::Inspector;
use queue_core::testing::TestRedis;
use serde_json::{Value, json};

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
    log_in(browser, &dash.url(""), PASSWORD).await;
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
