//! TLS: a self-signed local server, with and without certificate verification.

mod common;

use common::{Greet, MARGIN};
use queue_core::testing::TestRedis;
use queue_core::{Client, Error, JobPayload};
use std::time::Duration;

/// A raw connection to a TLS server that skips verification, independent of the client.
async fn raw_tls(redis: &TestRedis) -> redis::aio::MultiplexedConnection {
    let _ = rustls::crypto::ring::default_provider().install_default();
    redis::Client::open(format!("{}#insecure", redis.url()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn accept_invalid_certs_connects_to_a_self_signed_server() {
    let redis = TestRedis::start_tls();
    assert!(redis.url().starts_with("rediss://"));
    let config = redis
        .config("accept_invalid_certs_connects_to_a_self_signed_server")
        .accept_invalid_certs(true);
    let client = Client::connect(config).await.unwrap();
    let id = client.enqueue(&Greet::new("tls")).await.unwrap();

    let mut conn = raw_tls(&redis).await;
    let entries: Vec<String> = redis::cmd("LRANGE")
        .arg(client.keys().queue("default"))
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        JobPayload::from_json(entries[0].as_bytes()).unwrap().jid,
        id
    );
    assert!(client.status(&id).await.unwrap().is_some());
}

#[tokio::test]
async fn verification_on_rejects_a_self_signed_certificate() {
    let redis = TestRedis::start_tls();
    let timeout = Duration::from_secs(1);
    let config = redis
        .config("verification_on_rejects_a_self_signed_certificate")
        .timeout(timeout);
    assert!(!config.accept_invalid_certs, "verification is the default");
    let err = tokio::time::timeout(timeout + MARGIN, Client::connect(config))
        .await
        .expect("a refused certificate must not hang")
        .unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err:?}");
    assert!(!err.is_transient());

    // Nothing reached the server.
    let mut conn = raw_tls(&redis).await;
    let size: i64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    assert_eq!(size, 0);
}
