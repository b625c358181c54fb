//! Helpers for the integration tests that run the worker inside the test process.
#![allow(dead_code, unreachable_pub)]

use queue_core::testing::TestRedis;
use queue_core::{Client, JobId, JobState};
use queue_worker::WorkerConfig;
use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns `Some`, or panics after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until job `id` reaches `state`.
pub async fn wait_for_state(client: &Client, id: &JobId, state: JobState) {
    wait_for(
        &format!("job {id} to be {state}"),
        Duration::from_secs(15),
        || async {
            let s = client.status(id).await.unwrap()?;
            (s.state == state).then_some(())
        },
    )
    .await;
}

/// A client on `redis` with the prefix `{name}:`.
pub async fn client(redis: &TestRedis, name: &str) -> Client {
    Client::connect(redis.config(name)).await.unwrap()
}

/// Worker settings fast enough for tests.
pub fn fast_config() -> WorkerConfig {
    WorkerConfig {
        idle_poll: Duration::from_millis(200),
        heartbeat_interval: Duration::from_millis(200),
        lease_ttl: Duration::from_millis(1000),
        reaper_interval: Duration::from_millis(300),
        scheduler_interval: Duration::from_millis(100),
        shutdown_timeout: Duration::from_secs(2),
        ..WorkerConfig::default()
    }
}

/// A plain connection for raw inspection.
pub async fn raw(redis: &TestRedis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Deletes every key of the test: the whole server's when it is the test's own, its
/// prefixes' on the cluster target (where FLUSHALL would empty other tests' keys).
pub async fn clear(redis: &TestRedis, conn: &mut redis::aio::MultiplexedConnection) {
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query_async(conn).await.unwrap();
    for key in keys.iter().filter(|key| redis.owns_key(key)) {
        let _: i64 = redis::cmd("DEL").arg(key).query_async(conn).await.unwrap();
    }
}

/// Waits until the list or sorted set at `key` holds `expected` entries (a missing key
/// holds 0). `what` names the condition in the failure message.
pub async fn wait_for_size(
    conn: &redis::aio::MultiplexedConnection,
    key: &str,
    expected: i64,
    what: &str,
    deadline: Duration,
) {
    wait_for(what, deadline, || {
        let mut conn = conn.clone();
        let key = key.to_owned();
        async move {
            let kind: String = redis::cmd("TYPE")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            // A key that does not exist yet holds nothing; asking LLEN of it would race with
            // a script that creates it as a sorted set in between (WRONGTYPE).
            let cmd = match kind.as_str() {
                "zset" => "ZCARD",
                "list" => "LLEN",
                _ => return (expected == 0).then_some(()),
            };
            let n: i64 = redis::cmd(cmd)
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap();
            (n == expected).then_some(())
        }
    })
    .await;
}
