//! The example web server on a real socket: slow or idle clients are dropped within the
//! bounds, and POSTs past the rate limit get `429`.

use examples::app;
use examples::rate_limit::PostRateLimit;
use examples::server::{self, ServeConfig};
use queue_core::Client;
use queue_core::testing::TestRedis;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Timeouts short enough for a test.
const CONFIG: ServeConfig = ServeConfig {
    header_read_timeout: Duration::from_millis(500),
    idle_timeout: Duration::from_secs(1),
};
/// Slack for scheduling on a loaded machine, on top of a timeout.
const SLACK: Duration = Duration::from_secs(2);

/// A running server; stops when dropped.
struct Server {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn start(redis: &TestRedis, name: &str, limit: Option<PostRateLimit>) -> Server {
    let client = Client::connect(redis.config(name)).await.unwrap();
    let router = app::router(client, queue_web::MetricsConfig::new(), limit);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        server::serve_with(listener, router, CONFIG, async move {
            stopped.cancelled().await
        })
        .await
        .unwrap()
    });
    Server { addr, stop }
}

/// Reads until the server closes the connection (EOF or reset); the time that took, or
/// `None` if it was still open at `deadline`.
async fn closed_within(stream: &mut TcpStream, deadline: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(deadline, read_all)
        .await
        .ok()
        .map(|()| start.elapsed())
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let redis = TestRedis::start();
    let server = start(&redis, "half_header", None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let took = closed_within(&mut stream, CONFIG.header_read_timeout + SLACK)
        .await
        .expect("the connection stayed open past the header-read timeout");
    assert!(
        took >= CONFIG.header_read_timeout / 2,
        "closed after {took:?}"
    );
}

#[tokio::test]
async fn a_client_that_sends_nothing_is_dropped() {
    let redis = TestRedis::start();
    let server = start(&redis, "silent", None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    closed_within(&mut stream, CONFIG.header_read_timeout + SLACK)
        .await
        .expect("a silent connection stayed open");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let redis = TestRedis::start();
    let server = start(&redis, "idle", None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, then the connection idles; it must not stay open for ever.
    let mut first = [0u8; 12];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    closed_within(&mut stream, CONFIG.idle_timeout + SLACK)
        .await
        .expect("an idle keep-alive connection stayed open");
}

#[tokio::test]
async fn posts_past_the_limit_get_429_and_other_routes_do_not_count() {
    let redis = TestRedis::start();
    let limit = PostRateLimit {
        burst: 3,
        // Nothing comes back during the test.
        refill_every: Duration::from_secs(3600),
        trust_forwarded: false,
    };
    let server = start(&redis, "rate_limit", Some(limit)).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let post = |path: &'static str| {
        let body = if path == "/reports" {
            r#"{"title":"Q3"}"#
        } else {
            ""
        };
        http.post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for _ in 0..2 {
        assert_eq!(post("/reports").await.unwrap().status(), 202);
    }
    assert_eq!(post("/flaky").await.unwrap().status(), 202);
    // GETs are not limited.
    for _ in 0..5 {
        let health = http.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(health.status(), 200);
    }
    let refused = post("/reports").await.unwrap();
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(post("/flaky").await.unwrap().status(), 429);
    // Nothing was enqueued by the refused requests: 3 jobs in all.
    let client = Client::connect(redis.config("rate_limit")).await.unwrap();
    let queued = queue_core::Inspector::new(&client).stats().await.unwrap();
    assert_eq!(queued.enqueued, 3);
}

#[tokio::test]
async fn a_forwarded_client_address_is_the_last_one_the_router_added() {
    let redis = TestRedis::start();
    let limit = PostRateLimit {
        burst: 1,
        refill_every: Duration::from_secs(3600),
        trust_forwarded: true,
    };
    let server = start(&redis, "forwarded", Some(limit)).await;
    let http = reqwest::Client::new();
    let base = format!("http://{}", server.addr);
    let post_as = |forwarded: &'static str| {
        http.post(format!("{base}/flaky"))
            .header("x-forwarded-for", forwarded)
            .send()
    };
    assert_eq!(post_as("1.1.1.1, 10.0.0.1").await.unwrap().status(), 202);
    // A client cannot get a fresh bucket by making up the first address.
    assert_eq!(post_as("2.2.2.2, 10.0.0.1").await.unwrap().status(), 429);
    assert_eq!(post_as("10.0.0.2").await.unwrap().status(), 202);
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_is_dropped() {
    let redis = TestRedis::start();
    let server = start(&redis, "slow_body", None).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"title\":",
        )
        .await
        .unwrap();
    // The headers are complete, so only the idle timeout can end this (the request
    // timeout would take 25 s).
    closed_within(&mut stream, CONFIG.idle_timeout + SLACK)
        .await
        .expect("a connection whose body stopped stayed open");
}
