//! The test target itself: `TestRedis::start` gives each test a share of the shared cluster
//! when `QUEUE_TEST_CLUSTER_URLS` is set (the second run of `script/test`), a private server
//! otherwise. Checked here so that the second run cannot quietly repeat the first.

mod common;

use common::{Tick, cmd, raw};
use queue_core::Client;
use queue_core::testing::{CLUSTER_TARGET_VAR, TestRedis};

#[tokio::test]
async fn start_gives_what_the_target_asks_for() {
    let on_cluster = std::env::var_os(CLUSTER_TARGET_VAR).is_some_and(|v| !v.is_empty());
    let redis = TestRedis::start();
    assert_eq!(redis.is_shared(), on_cluster);
    let config = redis.config("target_one");
    assert_eq!(config.is_cluster(), on_cluster);
    assert_eq!(redis.config("target_one").prefix, config.prefix);
    let other = redis.config("target_two");
    assert_ne!(other.prefix, config.prefix);
    // Another test asking for the same name shares the cluster, not the prefix.
    let neighbour = TestRedis::start().config("target_one").prefix;
    assert_eq!(neighbour == config.prefix, !on_cluster, "{neighbour}");

    // Every prefix of the test is on the node its raw connection reads.
    let mut conn = raw(&redis).await;
    for config in [config, other] {
        let client = Client::connect(config).await.unwrap();
        client.enqueue(&Tick(1)).await.unwrap();
        let queue = client.keys().queue("ticks");
        let len: usize = cmd(&mut conn, &["LLEN", &queue]).await;
        assert_eq!(len, 1, "{queue}");
        assert!(redis.owns_key(&queue));
    }
    assert_eq!(
        redis.owns_key(&format!("{neighbour}queue:ticks")),
        !on_cluster
    );
}

#[test]
fn a_share_of_the_cluster_cannot_be_stopped() {
    let mut redis = TestRedis::start();
    if !redis.is_shared() {
        return;
    }
    let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| redis.kill()));
    let message = killed.unwrap_err();
    let text = message.downcast_ref::<String>().unwrap();
    assert!(text.contains("TestRedis::start_private()"), "{text}");
}
