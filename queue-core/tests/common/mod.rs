//! Helpers shared by the integration tests: job types, raw Redis access, deadlines.
// Each test file compiles this module separately and uses only part of it.
#![allow(dead_code)]

use queue_core::Job;
use queue_core::testing::TestRedis;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;

/// Slack allowed on top of a configured timeout before a call counts as hanging.
pub(crate) const MARGIN: Duration = Duration::from_millis(500);

/// How long a condition may take to become true before a test fails.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// Interval between two checks of a condition in [`wait_until`].
const POLL: Duration = Duration::from_millis(10);

/// A tracked job with named fields (one hash argument on the Ruby side).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Greet {
    pub(crate) name: String,
}

impl Job for Greet {
    const NAME: &'static str = "Greet";
}

impl Greet {
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }
}

/// A fire-and-forget job: no status record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tick(pub(crate) u64);

impl Job for Tick {
    const NAME: &'static str = "Tick";
    const QUEUE: &'static str = "ticks";
    const TRACK_STATUS: bool = false;
}

/// A job with positional arguments (`perform(a, b)` in Ruby).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Add(pub(crate) i64, pub(crate) i64);

impl Job for Add {
    const NAME: &'static str = "Add";
    const QUEUE: &'static str = "math";
}

/// A plain connection to `redis`, independent of the client under test.
pub(crate) async fn raw(redis: &TestRedis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// LPUSHes `items` in order: the first one ends at the right end, as the oldest job.
pub(crate) async fn lpush<T: AsRef<str>>(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
    items: &[T],
) {
    let mut parts = vec!["LPUSH", key];
    parts.extend(items.iter().map(AsRef::as_ref));
    let _: i64 = cmd(conn, &parts).await;
}

/// The whole list at `key`, head (newest) first.
pub(crate) async fn lrange(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    cmd(conn, &["LRANGE", key, "0", "-1"]).await
}

/// The hash at `key`.
pub(crate) async fn hgetall(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> std::collections::HashMap<String, String> {
    cmd(conn, &["HGETALL", key]).await
}

/// Whether `key` exists.
pub(crate) async fn exists(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> bool {
    cmd::<i64>(conn, &["EXISTS", key]).await == 1
}

/// Runs one command on `conn`.
pub(crate) async fn cmd<T: redis::FromRedisValue>(
    conn: &mut redis::aio::MultiplexedConnection,
    parts: &[&str],
) -> T {
    let mut c = redis::cmd(parts[0]);
    for p in &parts[1..] {
        c.arg(*p);
    }
    c.query_async(conn).await.unwrap()
}

/// Every key of the test, sorted: every key on a private server (the test started it, so
/// this is the test's data), or on the cluster target the keys of the test's prefixes on
/// its master (other tests' keys share that node).
pub(crate) async fn all_keys(
    redis: &TestRedis,
    conn: &mut redis::aio::MultiplexedConnection,
) -> Vec<String> {
    let mut keys: Vec<String> = cmd(conn, &["KEYS", "*"]).await;
    keys.retain(|key| redis.owns_key(key));
    keys.sort();
    keys
}

/// Redis's clock, epoch seconds.
pub(crate) async fn redis_time(conn: &mut redis::aio::MultiplexedConnection) -> f64 {
    let (s, us): (u64, u64) = cmd(conn, &["TIME"]).await;
    s as f64 + us as f64 / 1e6
}

/// This machine's clock, epoch seconds.
pub(crate) fn now_secs() -> f64 {
    queue_core::Timestamp::now().as_secs_f64()
}

/// Polls `check` until it returns true; panics after [`DEADLINE`].
pub(crate) async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    // Polls the condition; the deadline, not a fixed wait, decides when to give up.
    let mut poll = tokio::time::interval(POLL);
    loop {
        poll.tick().await;
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
    }
}

/// Fills a server started with `--maxmemory` and `noeviction` until it refuses writes.
///
/// Writes 64 KiB values under `{prefix}fill:` until Redis answers `OOM`, then adds 1 MiB
/// more through a script flagged `allow-oom`, so that used memory stays above the limit even
/// when Redis later shrinks a client buffer. Panics if the server never fills up.
pub(crate) async fn fill_to_out_of_memory(
    conn: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) {
    const CHUNK: usize = 64 * 1024;
    const MAX_CHUNKS: usize = 10_000;
    let mut refused = false;
    for i in 0..MAX_CHUNKS {
        // SETRANGE allocates the value in Redis from a tiny command.
        let reply: redis::RedisResult<i64> = redis::cmd("SETRANGE")
            .arg(format!("{prefix}fill:{i}"))
            .arg(CHUNK - 1)
            .arg("x")
            .query_async(conn)
            .await;
        match reply {
            Ok(_) => {}
            Err(e) if e.code() == Some("OOM") => {
                refused = true;
                break;
            }
            Err(e) => panic!("filling Redis: {e}"),
        }
    }
    assert!(refused, "Redis never refused a write: is --maxmemory set?");
    let _: i64 = redis::Script::new(
        "#!lua flags=allow-oom\nreturn redis.call('SETRANGE', KEYS[1], 1048575, 'x')",
    )
    .key(format!("{prefix}fill:margin"))
    .invoke_async(conn)
    .await
    .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(conn)
        .await
        .unwrap();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    assert!(field("used_memory") > field("maxmemory"), "{info}");
}

/// A TCP proxy in front of a Redis server that can start dropping everything the client
/// sends, as a hung server or a black-holed route would.
pub(crate) struct Proxy {
    port: u16,
    black_hole: std::sync::Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding a free loopback port to `upstream_port`.
    pub(crate) async fn start(upstream_port: u16) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let black_hole = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = black_hole.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                else {
                    continue;
                };
                let (mut client_rx, mut client_tx) = client.into_split();
                let (mut server_rx, mut server_tx) = server.into_split();
                let flag = flag.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_rx.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if !flag.load(Ordering::SeqCst)
                            && server_tx.write_all(&buf[..n]).await.is_err()
                        {
                            break;
                        }
                    }
                });
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_rx, &mut client_tx).await;
                });
            }
        });
        Self {
            port,
            black_hole,
            task,
        }
    }

    /// `redis://` URL of the proxy.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Drops every byte the client sends from now on.
    pub(crate) fn black_hole(&self) {
        self.black_hole
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
