//! The dashboard over HTTP on a real socket against a real Redis: authentication, CSRF and
//! `Origin` checks, security headers, escaping, parameter validation and the actions.

mod dashboard_support;

use dashboard_support::{Dash, MOUNT, PASSWORD, failed_job, set_cookie, token_in};
use queue_core::inspect::JobSet;
use queue_core::testing::TestRedis;
use queue_core::{Inspector, JobState, NewJob};
use serde_json::json;

#[tokio::test]
async fn requests_without_the_password_get_401_and_no_data() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_auth").await;
    let dead = dash.client.keys().dead();
    dash.zadd(
        &dead,
        &failed_job("j1", "SecretClassName", "default", "boom"),
        0.0,
    )
    .await;

    let anonymous = dash.http.get(dash.url("/sets/dead")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let body = anonymous.text().await.unwrap();
    assert!(!body.contains("SecretClassName"));
    assert!(body.contains("Dashboard password"), "the login form");

    let wrong = dash
        .http
        .get(dash.url("/sets/dead"))
        .basic_auth("ops", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(!wrong.text().await.unwrap().contains("SecretClassName"));

    let right = dash.get("/sets/dead").await;
    assert_eq!(right.status(), 200);
    assert!(right.text().await.unwrap().contains("SecretClassName"));

    // Actions too.
    let post = dash
        .http
        .post(dash.url("/sets/dead/clear"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 401);
    assert_eq!(dash.zcard(&dead).await, 1);
}

#[tokio::test]
async fn the_login_form_gives_a_session_cookie() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_login").await;
    let page = dash.http.get(dash.url("")).send().await.unwrap();
    assert_eq!(page.status(), 401);
    let nonce = set_cookie(&page, "dq_csrf").unwrap();
    let token = token_in(&page.text().await.unwrap());
    let login = |password: &'static str| {
        dash.http
            .post(dash.url("/login"))
            .header("cookie", format!("dq_csrf={nonce}"))
            .header("origin", &dash.origin)
            .form(&[("csrf", token.as_str()), ("password", password)])
            .send()
    };
    let refused = login("nope").await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(set_cookie(&refused, "dq_session").is_none());

    let ok = login(PASSWORD).await.unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], MOUNT);
    let cookie_line = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie_line.contains("HttpOnly") && cookie_line.contains("SameSite=Strict"));
    assert!(cookie_line.contains(&format!("Path={MOUNT}")));
    let session = set_cookie(&ok, "dq_session").unwrap();
    let overview = dash
        .http
        .get(dash.url(""))
        .header("cookie", format!("dq_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), 200);
    assert!(overview.text().await.unwrap().contains("Overview"));

    // A forged session (right shape, wrong signature) is refused.
    let (expiry, _) = session.split_once('.').unwrap();
    let forged = dash
        .http
        .get(dash.url(""))
        .header("cookie", format!("dq_session={expiry}.{}", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
}

#[tokio::test]
async fn posts_need_a_csrf_token_and_a_same_origin() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_csrf").await;
    let dead = dash.client.keys().dead();
    dash.zadd(&dead, &failed_job("j1", "Job", "default", "boom"), 0.0)
        .await;
    let (cookie, token) = dash.csrf().await;

    let attempt = |token: Option<&str>, origin: Option<&str>, cookie: Option<&str>| {
        let mut req = dash
            .http
            .post(dash.url("/sets/dead/clear"))
            .basic_auth("ops", Some(PASSWORD));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(c) = cookie {
            req = req.header("cookie", format!("dq_csrf={c}"));
        }
        let form: Vec<(&str, &str)> = token.map(|t| vec![("csrf", t)]).unwrap_or_default();
        req.form(&form).send()
    };
    let same = dash.origin.as_str();
    for (label, t, o, c) in [
        ("no token", None, Some(same), Some(cookie.as_str())),
        (
            "wrong token",
            Some("0".repeat(64)),
            Some(same),
            Some(cookie.as_str()),
        ),
        (
            "foreign origin",
            Some(token.clone()),
            Some("http://evil.example"),
            Some(cookie.as_str()),
        ),
        (
            "no origin",
            Some(token.clone()),
            None,
            Some(cookie.as_str()),
        ),
        ("no cookie", Some(token.clone()), Some(same), None),
        (
            "another nonce",
            Some(token.clone()),
            Some(same),
            Some("00112233445566778899aabbccddeeff"),
        ),
    ] {
        let response = attempt(t.as_deref(), o, c).await.unwrap();
        assert_eq!(response.status(), 403, "{label}");
        assert_eq!(dash.zcard(&dead).await, 1, "{label} changed nothing");
    }
    let ok = attempt(Some(&token), Some(same), Some(&cookie))
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    assert_eq!(dash.zcard(&dead).await, 0);
}

#[tokio::test]
async fn action_paths_refuse_get() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_405").await;
    for path in [
        "/sets/dead/retry",
        "/sets/dead/delete",
        "/sets/retries/kill",
        "/sets/dead/retry-all",
        "/sets/dead/clear",
        "/queues/default/pause",
        "/queues/default/resume",
        "/jobs/abc/cancel",
        "/busy/quiet",
        "/busy/stop",
        "/logout",
    ] {
        assert_eq!(dash.get(path).await.status(), 405, "{path}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_headers").await;
    dash.client
        .push(NewJob::new("Job", vec![json!(1)]))
        .await
        .unwrap();
    let anonymous = dash.http.get(dash.url("")).send().await.unwrap();
    let mut responses = vec![("401", anonymous)];
    for path in [
        "",
        "/queues",
        "/queues/default",
        "/busy",
        "/sets/scheduled",
        "/sets/retries",
        "/sets/dead",
        "/search?q=Job&in=queue:default",
        "/jobs/nosuchjob",
        "/sets/morgue",
        "/nowhere",
        "/assets/dashboard.css",
    ] {
        responses.push((path, dash.get(path).await));
    }
    for (label, r) in responses {
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{label}");
        assert!(!csp.contains("unsafe-inline"), "{label}");
        assert!(csp.contains("frame-ancestors 'none'"), "{label}");
        assert_eq!(h["x-frame-options"], "DENY", "{label}");
        assert_eq!(h["referrer-policy"], "same-origin", "{label}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{label}");
    }
}

#[tokio::test]
async fn job_fields_are_escaped_on_every_page() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_xss").await;
    let keys = dash.client.keys();
    let script = "<script>window.pwned=1</script>";
    let img = r#""><img src=x onerror=alert(1)>"#;
    let mut job = failed_job("xss1", script, img, img);
    job["args"] = json!([script, img, "javascript:alert(1)"]);
    job["error_class"] = json!(script);
    job["error_backtrace"] = json!([img, script]);
    for set in [keys.dead(), keys.retry(), keys.schedule()] {
        dash.zadd(&set, &job, 60.0).await;
    }
    dash.redis(&["LPUSH", &keys.queue("default"), &job.to_string()])
        .await;
    dash.redis(&["SADD", &keys.queues(), "default"]).await;
    // Not JSON at all, with markup in it.
    dash.redis(&["ZADD", &keys.dead(), "1", &format!("not json {script}")])
        .await;
    // A status record with markup in every text field.
    dash.redis(&[
        "HSET",
        &keys.status("xss1"),
        "state",
        "dead",
        "class",
        script,
        "queue",
        img,
        "error",
        img,
        "result",
        &json!(script).to_string(),
        "message",
        script,
    ])
    .await;

    for path in [
        "",
        "/queues",
        "/queues/default",
        "/sets/dead",
        "/sets/retries",
        "/sets/scheduled",
        "/jobs/xss1",
        "/search?q=script&in=dead",
        "/search?q=script&in=queue:default",
    ] {
        let response = dash.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("<script"), "{path} has a raw <script");
        assert!(!body.contains("<img"), "{path} has a raw <img");
        assert!(!body.contains("onerror=alert(1)>"), "{path}");
        if !path.is_empty() && path != "/queues" {
            assert!(
                body.contains("&lt;script&gt;") || body.contains("&#60;script&#62;"),
                "{path} shows the payload escaped"
            );
        }
    }
}

#[tokio::test]
async fn bad_parameters_answer_400() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_400").await;
    for path in [
        "/sets/dead?page=0",
        "/sets/dead?page=-1",
        "/sets/dead?page=abc",
        "/sets/dead?page=99999999999999",
        "/sets/dead?size=101",
        "/sets/dead?size=0",
        "/queues/default?size=1000000",
        "/queues/bad%20name",
        "/queues/%3Cscript%3E",
        "/sets/morgue",
        "/jobs/bad%20id",
        "/busy?page=x",
        "/search?q=x&in=nowhere",
        "/search?q=x&in=queue:bad%20name",
        "/search?q=x&from=-5",
    ] {
        assert_eq!(dash.get(path).await.status(), 400, "{path}");
    }
    let long = format!("/search?q={}", "a".repeat(201));
    assert_eq!(dash.get(&long).await.status(), 400);
    let bad_form = dash
        .post("/sets/dead/retry", &[("score", "nan"), ("jid", "j1")])
        .await;
    assert_eq!(bad_form.status(), 400);
    let bad_raw = dash.post("/sets/dead/delete", &[("raw", "zz")]).await;
    assert_eq!(bad_raw.status(), 400);
}

#[tokio::test]
async fn links_follow_the_mount_point() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_links").await;
    let body = dash.get("").await.text().await.unwrap();
    assert!(body.contains(&format!(r#"href="{MOUNT}/queues""#)));
    assert!(body.contains(&format!(r#"href="{MOUNT}/assets/dashboard.css""#)));
    let css = dash.get("/assets/dashboard.css").await;
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

/// Reads the entry's score and the form the page renders for it.
async fn first_entry_form(dash: &Dash, set: &str) -> (String, String) {
    let body = dash
        .get(&format!("/sets/{set}"))
        .await
        .text()
        .await
        .unwrap();
    let marker = r#"name="score" value=""#;
    let start = body.find(marker).unwrap() + marker.len();
    let score = body[start..].split('"').next().unwrap().to_owned();
    let marker = r#"name="jid" value=""#;
    let start = body.find(marker).unwrap() + marker.len();
    let jid = body[start..].split('"').next().unwrap().to_owned();
    (score, jid)
}

#[tokio::test]
async fn each_action_does_what_it_says() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_actions").await;
    let keys = dash.client.keys().clone();
    let inspect = Inspector::new(&dash.client);

    // Retry now: a dead job goes back to its queue.
    dash.zadd(&keys.dead(), &failed_job("d1", "Job", "mail", "boom"), 0.0)
        .await;
    let (score, jid) = first_entry_form(&dash, "dead").await;
    assert_eq!(jid, "d1");
    let r = dash
        .post("/sets/dead/retry", &[("score", &score), ("jid", &jid)])
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("{MOUNT}/sets/dead?done=retried")
    );
    assert_eq!(dash.zcard(&keys.dead()).await, 0);
    assert_eq!(dash.llen(&keys.queue("mail")).await, 1);
    // The same form again: the entry is gone, nothing changes.
    let again = dash
        .post("/sets/dead/retry", &[("score", &score), ("jid", &jid)])
        .await;
    assert_eq!(
        again.headers()["location"],
        format!("{MOUNT}/sets/dead?done=gone")
    );
    assert_eq!(dash.llen(&keys.queue("mail")).await, 1);

    // Kill: a retry entry moves to dead.
    dash.zadd(
        &keys.retry(),
        &failed_job("r1", "Job", "mail", "boom"),
        60.0,
    )
    .await;
    let (score, jid) = first_entry_form(&dash, "retries").await;
    dash.post("/sets/retries/kill", &[("score", &score), ("jid", &jid)])
        .await;
    assert_eq!(dash.zcard(&keys.retry()).await, 0);
    assert_eq!(dash.zcard(&keys.dead()).await, 1);

    // Delete: gone from dead.
    let (score, jid) = first_entry_form(&dash, "dead").await;
    dash.post("/sets/dead/delete", &[("score", &score), ("jid", &jid)])
        .await;
    assert_eq!(dash.zcard(&keys.dead()).await, 0);

    // Retry all and clear.
    for i in 0..3 {
        dash.zadd(
            &keys.retry(),
            &failed_job(&format!("ra{i}"), "Job", "bulk", "x"),
            60.0,
        )
        .await;
        dash.zadd(
            &keys.dead(),
            &failed_job(&format!("c{i}"), "Job", "bulk", "x"),
            0.0,
        )
        .await;
    }
    dash.post("/sets/retries/retry-all", &[]).await;
    assert_eq!(dash.zcard(&keys.retry()).await, 0);
    assert_eq!(dash.llen(&keys.queue("bulk")).await, 3);
    dash.post("/sets/dead/clear", &[]).await;
    assert_eq!(dash.zcard(&keys.dead()).await, 0);

    // Pause and resume.
    let r = dash.post("/queues/bulk/pause", &[]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(inspect.paused().await.unwrap(), ["bulk"]);
    assert!(
        dash.get("/queues")
            .await
            .text()
            .await
            .unwrap()
            .contains("paused")
    );
    dash.post("/queues/bulk/resume", &[]).await;
    assert!(inspect.paused().await.unwrap().is_empty());

    // Cancel a queued job.
    let id = dash.client.push(NewJob::new("Job", vec![])).await.unwrap();
    let r = dash
        .post(&format!("/jobs/{}/cancel", id.as_str()), &[])
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        dash.client.status(&id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    let page = dash
        .get(&format!("/jobs/{}", id.as_str()))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("cancelled"));
}

#[tokio::test]
async fn malformed_entries_render_and_can_be_deleted() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_malformed").await;
    let dead = dash.client.keys().dead();
    dash.redis(&["ZADD", &dead, "100", "\u{1}garbage \"<b>"])
        .await;
    let body = dash.get("/sets/dead").await.text().await.unwrap();
    assert!(body.contains("malformed entry"));
    assert!(!body.contains("<b>"));
    let marker = r#"name="raw" value=""#;
    let start = body.find(marker).unwrap() + marker.len();
    let raw = body[start..].split('"').next().unwrap().to_owned();
    let r = dash.post("/sets/dead/delete", &[("raw", &raw)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(dash.zcard(&dead).await, 0);
    assert_eq!(
        Inspector::new(&dash.client)
            .set_size(JobSet::Dead)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn search_is_bounded_and_continues() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_search").await;
    let keys = dash.client.keys();
    // 6,000 entries: more than one request may read.
    let mut pipe = redis::pipe();
    for i in 0..6000 {
        // Pushed first, so last from the head: index 5,999.
        let class = if i == 0 { "NeedleJob" } else { "HayJob" };
        pipe.cmd("LPUSH")
            .arg(keys.queue("big"))
            .arg(
                json!({"jid": format!("j{i}"), "class": class, "args": [], "queue": "big"})
                    .to_string(),
            )
            .ignore();
    }
    pipe.cmd("SADD").arg(keys.queues()).arg("big").ignore();
    pipe.query_async::<()>(&mut dash.client.raw_connection())
        .await
        .unwrap();

    let first = dash
        .get("/search?q=NeedleJob&in=queue:big")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        first.contains("0 matches"),
        "the first request reads 5,000 entries only"
    );
    // Askama escapes `&` in the link as `&#38;`.
    let marker = "/search?q=NeedleJob&#38;in=queue%3Abig&#38;from=5000";
    assert!(first.contains(marker), "it offers to continue from 5,000");
    let second = dash
        .get("/search?q=NeedleJob&in=queue:big&from=5000")
        .await
        .text()
        .await
        .unwrap();
    assert!(second.contains("1 match"), "{second}");
    assert!(second.contains("/jobs/j0"));
}

#[tokio::test]
async fn quiet_and_stop_signal_a_worker_process() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_signals").await;
    let keys = dash.client.keys().clone();
    let identity = "web.1:42:abc";
    dash.redis(&["SADD", &keys.processes(), identity]).await;
    let info = json!({"hostname": "web.1", "pid": 42, "concurrency": 5, "queues": ["default"]});
    dash.redis(&[
        "HSET",
        &keys.process(identity),
        "info",
        &info.to_string(),
        "busy",
        "1",
        "beat",
        "1",
    ])
    .await;
    // A job it holds, shown with a cancel button.
    let job = json!({"jid": "held1", "class": "HeldJob", "args": [], "queue": "default"});
    dash.redis(&["LPUSH", &keys.processing(identity), &job.to_string()])
        .await;
    let page = dash.get("/busy").await.text().await.unwrap();
    assert!(page.contains("HeldJob") && page.contains("/jobs/held1/cancel"));
    assert!(page.contains(r#"name="identity" value="web.1:42:abc""#));

    let r = dash.post("/busy/quiet", &[("identity", identity)]).await;
    assert_eq!(r.status(), 303);
    let r = dash.post("/busy/stop", &[("identity", identity)]).await;
    assert_eq!(r.status(), 303);
    let signals: Vec<String> = redis::from_redis_value(
        dash.redis(&["LRANGE", &keys.signals(identity), "0", "-1"])
            .await,
    )
    .unwrap();
    assert_eq!(signals, ["TERM", "TSTP"]);
    let bad = dash.post("/busy/quiet", &[("identity", "")]).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn the_overview_draws_the_last_hour() {
    let redis = TestRedis::start();
    let dash = Dash::start(&redis, "dash_hour").await;
    let body = dash.get("").await.text().await.unwrap();
    assert!(body.contains("Last hour"));
    assert_eq!(
        body.matches("<svg").count(),
        2,
        "the hour and the days charts"
    );
}

#[tokio::test]
async fn the_access_hook_decides_and_insecure_open_is_explicit() {
    let redis = TestRedis::start();
    let hook = |parts: &axum::http::request::Parts| parts.headers.contains_key("x-admin");
    let dash = Dash::start_with(&redis, "dash_hook", queue_web::DashboardAuth::access(hook)).await;
    let refused = dash.http.get(dash.url("/queues")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let allowed = dash
        .http
        .get(dash.url("/queues"))
        .header("x-admin", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let body = allowed.text().await.unwrap();
    assert!(!body.contains("Log out"), "no session to end in hook mode");

    let open = Dash::start_with(
        &redis,
        "dash_open",
        queue_web::DashboardAuth::insecure_open(),
    )
    .await;
    assert_eq!(
        open.http
            .get(open.url("/queues"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
