//! Long polling at scale, through real sockets and a real Redis: 10,000 waiters on one web
//! process cost Redis at most 50 commands/s while they wait, a change still wakes its waiter
//! at once, the per-process cap answers 503 with `Retry-After`, and a waiter whose
//! subscriber connection was killed still sees the change.
//!
//! Each side of a connection is a file descriptor, and the hard limit here (`ulimit -Hn`) can
//! be as low as 20,000: so the 10,000 waiters' client sockets live in a child process (this
//! test binary re-run as [`waiter_client_process`]), and only the server's are in this one.

mod common;

use common::until_waiting;
use queue_core::testing::TestRedis;
use queue_core::{Client, JobId, NewJob};
use queue_web::{CapabilityUrl, StatusState};
use serde_json::Value;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Concurrent waiters on the one web process.
const WAITERS: usize = 10_000;
/// The target of issue 11: Redis commands per second the waiting may cost.
const MAX_COMMANDS_PER_SEC: f64 = 50.0;
/// How long the command rate is measured over (a measurement window, not synchronisation).
const MEASURE_FOR: Duration = Duration::from_secs(3);
/// How soon a change must answer its waiter, with slack for a loaded 2-core machine that
/// also holds 10,000 open connections.
const ANSWER_WITHIN: Duration = Duration::from_millis(1000);
/// The environment variables that turn [`waiter_client_process`] on: the app's address,
/// and the file with one job id per line to wait on.
const CLIENT_ADDR_ENV: &str = "LONG_POLL_SCALE_ADDR";
const CLIENT_IDS_ENV: &str = "LONG_POLL_SCALE_IDS";

/// Serves the status router alone on a loopback port; returns its base URL. The listener's
/// accept queue is as deep as the kernel allows (`somaxconn`), so that 10,000 clients
/// connecting at once are not dropped and retried by the kernel while the server is busy.
async fn serve_status(state: StatusState) -> String {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(4096).unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().nest("/jobs", queue_web::status_router(state));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// Enqueues `n` tracked jobs that nothing runs.
async fn jobs(client: &Client, n: usize) -> Vec<JobId> {
    let batch = (0..n)
        .map(|_| NewJob::new("BuildReport", Vec::new()))
        .collect();
    client.push_bulk(batch).await.unwrap()
}

/// Commands Redis has run so far (`INFO commandstats`), without the `INFO`s themselves.
async fn commands(client: &Client) -> u64 {
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut client.raw_connection())
        .await
        .unwrap();
    stats
        .lines()
        .filter(|l| !l.starts_with("cmdstat_info:"))
        .filter_map(|l| l.split_once(":calls="))
        .map(|(_, rest)| rest.split(',').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Pub/sub connections open on the server.
async fn pubsub_clients(client: &Client) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut client.raw_connection())
        .await
        .unwrap();
    list.lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_waiters_cost_at_most_50_commands_per_second() {
    // INFO commandstats counts the whole server's calls.
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("ten_thousand_waiters"))
        .await
        .unwrap();
    let ids = jobs(&client, WAITERS).await;
    let state = StatusState::new(client.clone(), CapabilityUrl);
    let base = serve_status(state.clone()).await;

    // One waiter here, timed; the others in the child process. All must be waiting before
    // the first of them reaches its 20 s wait, with the 3 s measurement still ahead: a ramp
    // that does not make it (a busy machine, connects retried by the kernel) is set up again
    // once, after its long polls ended; the measurement and its bounds stay as they are.
    let (probe, others) = ids.split_first().unwrap();
    let list = tempfile_with(others);
    let mut attempt = 0;
    let (mut child, waiter) = loop {
        attempt += 1;
        let child = spawn_waiters(&base, &list);
        let http = reqwest::Client::new();
        let url = format!("{base}/jobs/{probe}?wait=20");
        let waiter = tokio::spawn(async move {
            let body: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            (body, Instant::now())
        });
        if all_waiting(&state, WAITERS, RAMP_WITHIN).await {
            break (child, waiter);
        }
        assert!(
            attempt < 2,
            "{} of {WAITERS} long polls waiting after {RAMP_WITHIN:?}, twice",
            state.long_poll_waiters()
        );
        eprintln!(
            "ramp {attempt}: {} of {WAITERS} long polls waiting after {RAMP_WITHIN:?}; setting up again",
            state.long_poll_waiters()
        );
        drop(child);
        waiter.abort();
        until_waiting(&state, 0, Duration::from_secs(60)).await;
    };

    let before = commands(&client).await;
    let started = Instant::now();
    tokio::time::sleep(MEASURE_FOR).await;
    let sent = commands(&client).await - before;
    let rate = sent as f64 / started.elapsed().as_secs_f64();
    eprintln!("{WAITERS} waiters: {sent} Redis commands in {MEASURE_FOR:?} ({rate:.1}/s)");
    assert!(rate <= MAX_COMMANDS_PER_SEC, "{rate:.1} commands/s");
    assert_eq!(state.long_poll_waiters(), WAITERS, "nobody answered early");

    let changed_at = Instant::now();
    assert!(client.cancel(probe).await.unwrap());
    let (body, answered_at) = waiter.await.unwrap();
    let after = answered_at - changed_at;
    eprintln!("the change was answered {after:?} after it was made");
    assert_eq!(body["state"], "cancelled");
    assert!(after < ANSWER_WITHIN, "{after:?}");
    child.kill().await.unwrap();
}

/// How long the 10,000 long polls may take to be all waiting: their wait is 20 s, and the 3 s
/// measurement and the change after it must fit before it ends.
const RAMP_WITHIN: Duration = Duration::from_secs(15);

/// Whether `want` long polls of `state` wait within `within` (polled every 10 ms).
async fn all_waiting(state: &StatusState, want: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if state.long_poll_waiters() == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// This test binary re-run as [`waiter_client_process`] against `base`, waiting on the ids
/// in `list` (killed on drop).
fn spawn_waiters(base: &str, list: &tempfile::NamedTempFile) -> tokio::process::Child {
    tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "waiter_client_process",
            "--ignored",
            "--nocapture",
        ])
        .env(CLIENT_ADDR_ENV, base.trim_start_matches("http://"))
        .env(CLIENT_IDS_ENV, list.path())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// A file holding `ids`, one per line, deleted on drop.
fn tempfile_with(ids: &[JobId]) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
    std::io::Write::write_all(&mut file, text.as_bytes()).unwrap();
    file
}

/// The client half of [`ten_thousand_waiters_cost_at_most_50_commands_per_second`], run by it
/// as a child process: one connection and one `?wait=20` request per job id, held until
/// answered (the parent kills this process when it is done).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the client half of ten_thousand_waiters_cost_at_most_50_commands_per_second"]
async fn waiter_client_process() {
    let (Ok(addr), Ok(list)) = (
        std::env::var(CLIENT_ADDR_ENV),
        std::env::var(CLIENT_IDS_ENV),
    ) else {
        return;
    };
    let ids = std::fs::read_to_string(list).unwrap();
    // Connect a few hundred at a time, so the listener's accept backlog never overflows.
    let connecting = Arc::new(tokio::sync::Semaphore::new(200));
    let mut waiters = tokio::task::JoinSet::new();
    for id in ids.lines().map(str::to_owned) {
        let (addr, connecting) = (addr.clone(), connecting.clone());
        waiters.spawn(async move {
            let permit = connecting.acquire_owned().await.unwrap();
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let request = format!(
                "GET /jobs/{id}?wait=20 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            drop(permit);
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer).await;
        });
    }
    while waiters.join_next().await.is_some() {}
}

#[tokio::test]
async fn beyond_the_cap_a_long_poll_answers_503_with_retry_after() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("waiter_cap")).await.unwrap();
    let ids = jobs(&client, 1).await;
    let id = &ids[0];
    let state = StatusState::new(client.clone(), CapabilityUrl).max_waiters(2);
    let base = serve_status(state.clone()).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/jobs/{id}?wait=20");

    let mut held = Vec::new();
    for _ in 0..2 {
        let (http, url) = (http.clone(), url.clone());
        held.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().status()
        }));
    }
    until_waiting(&state, 2, Duration::from_secs(10)).await;

    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too many waiting requests");
    // A plain read (no wait) is not a waiter and still answers.
    let plain = http.get(format!("{base}/jobs/{id}")).send().await.unwrap();
    assert_eq!(plain.status(), 200);

    // The held waiters are answered by the change, and free their places.
    assert!(client.cancel(id).await.unwrap());
    for waiter in held {
        assert_eq!(waiter.await.unwrap(), 200);
    }
    until_waiting(&state, 0, Duration::from_secs(10)).await;
    let again = http
        .get(format!("{base}/jobs/{id}?wait=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn a_waiter_sees_the_change_after_its_subscriber_connection_is_killed() {
    // Kills the server's pub/sub connections (CLIENT KILL).
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("subscriber_killed"))
        .await
        .unwrap();
    let ids = jobs(&client, 1).await;
    let id = ids[0].clone();
    let state = StatusState::new(client.clone(), CapabilityUrl);
    let base = serve_status(state.clone()).await;
    let url = format!("{base}/jobs/{id}?wait=20");
    let waiter = tokio::spawn(async move {
        let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        body
    });
    until_waiting(&state, 1, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while pubsub_clients(&client).await == 0 {
        assert!(Instant::now() < deadline, "no subscriber connection");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The change lands while the subscriber is (most likely) still reconnecting. It is made
    // by another process (as a worker's would be) and the kill comes from a connection of
    // its own: the subscription rides on the web's shared connection (RESP3), which a
    // command sent just after the kill would find broken, and `CLIENT KILL` skips its caller.
    let changer = Client::connect(redis.config("subscriber_killed"))
        .await
        .unwrap();
    assert_eq!(redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    let changed_at = Instant::now();
    assert!(changer.cancel(&id).await.unwrap());
    let body = waiter.await.unwrap();
    let after = changed_at.elapsed();
    eprintln!("answered {after:?} after the change");
    assert_eq!(body["state"], "cancelled");
    assert!(after < Duration::from_secs(5), "{after:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pubsub_clients(&client).await != 1 {
        assert!(Instant::now() < deadline, "the subscriber never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
