//! The boot-time `maxmemory-policy` check: an enum per case, and a warning unless `noeviction`.

mod common;

use queue_core::Client;
use queue_core::connection::{MemoryPolicy, check_memory_policy};
use queue_core::testing::TestRedis;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Collects log output so a test can read the warnings.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// Runs the check against `redis` on a plain connection while capturing warnings.
async fn check(redis: &TestRedis) -> (MemoryPolicy, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // The test runtime is single-threaded, so a thread-local subscriber sees the whole call.
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut conn = common::raw(redis).await;
    let policy = check_memory_policy(&mut conn).await;
    (policy, captured.text())
}

#[tokio::test]
async fn noeviction_passes_silently() {
    let redis = TestRedis::start_with_args(&["--maxmemory-policy", "noeviction"]);
    let (policy, log) = check(&redis).await;
    assert_eq!(policy, MemoryPolicy::NoEviction);
    assert!(log.is_empty(), "{log}");
}

#[tokio::test]
async fn an_evicting_policy_is_named_and_warned_about() {
    let redis = TestRedis::start_with_args(&["--maxmemory-policy", "allkeys-lru"]);
    let (policy, log) = check(&redis).await;
    assert_eq!(policy, MemoryPolicy::Evicting("allkeys-lru".to_owned()));
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("maxmemory_policy=allkeys-lru"), "{log}");

    // A warning, not a refusal: the client still connects and enqueues.
    let client = Client::connect(redis.config("an_evicting_policy_is_named_and_warned_about"))
        .await
        .unwrap();
    let mut conn = client.raw_connection();
    assert_eq!(
        check_memory_policy(&mut conn).await,
        MemoryPolicy::Evicting("allkeys-lru".to_owned())
    );
    client.enqueue(&common::Tick(1)).await.unwrap();
}

#[tokio::test]
async fn a_blocked_config_command_is_unknown_and_warned_about() {
    // Managed services often rename or block CONFIG.
    let redis = TestRedis::start_with_args(&["--rename-command", "CONFIG", ""]);
    let (policy, log) = check(&redis).await;
    assert_eq!(policy, MemoryPolicy::Unknown);
    assert!(log.contains("WARN") && log.contains("noeviction"), "{log}");
    Client::connect(redis.config("a_blocked_config_command_is_unknown_and_warned_about"))
        .await
        .unwrap();
}
