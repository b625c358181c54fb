//! Subscriptions ride on the shared connection where the server speaks RESP3: one connection
//! carries commands and both channels, a drop ends every subscription's stream (so the
//! subscriber catches up, as after losing a pub/sub connection), and a server that refuses
//! `HELLO 3` gets today's second connection.

use futures_util::{Stream, StreamExt};
use queue_core::testing::TestRedis;
use queue_core::{Client, ClientConfig};
use std::pin::pin;
use std::time::{Duration, Instant};

/// `CLIENT LIST` over a connection of its own, which is left out.
fn connections(redis: &TestRedis) -> Vec<String> {
    redis
        .command(&["CLIENT", "LIST"])
        .lines()
        .filter(|l| !l.contains(" cmd=client|list "))
        .map(str::to_owned)
        .collect()
}

/// Waits until `check` holds for the connections, or panics after 5 s.
async fn wait_connections(redis: &TestRedis, what: &str, check: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = connections(redis);
        if check(&list) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}; connections:\n{list:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn next<T>(stream: &mut (impl Stream<Item = T> + Unpin)) -> Option<T> {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("nothing within 5 s")
}

#[tokio::test]
async fn both_channels_ride_on_the_one_shared_connection() {
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("pushes")).await.unwrap();
    assert!(client.pushes_on_shared_connection());
    let keys = client.keys().clone();
    let mut wakes = pin!(client.wake_ups().await.unwrap());
    let mut second = Box::pin(client.wake_ups().await.unwrap());
    let mut changes = Box::pin(client.status_changes().await.unwrap());
    let list = connections(&redis);
    assert_eq!(list.len(), 1, "{list:#?}");
    assert!(list[0].contains(" sub=2 "), "{list:#?}");

    redis.command(&["PUBLISH", &keys.wake_channel(), "default"]);
    assert_eq!(next(&mut wakes).await.unwrap(), "default");
    assert_eq!(next(&mut second).await.unwrap(), "default");
    let id = queue_core::JobId::new();
    let message = format!("3 {}", keys.status(id.as_str()));
    redis.command(&["PUBLISH", &keys.status_channel(), &message]);
    let change = next(&mut changes).await.unwrap();
    assert_eq!((change.job, change.rev), (id, 3));

    // One subscriber of the wake channel left: still subscribed to both channels.
    drop(second);
    redis.command(&["PUBLISH", &keys.wake_channel(), "mail"]);
    assert_eq!(next(&mut wakes).await.unwrap(), "mail");
    assert!(connections(&redis)[0].contains(" sub=2 "));
    // The last subscriber of a channel gone: the connection leaves it.
    drop(changes);
    wait_connections(&redis, "unsubscribed from the status channel", |l| {
        l.len() == 1 && l[0].contains(" sub=1 ")
    })
    .await;
    // Commands keep working on the subscribed connection.
    client.ping().await.unwrap();
}

#[tokio::test]
async fn a_dropped_connection_ends_the_subscription_and_subscribing_again_works() {
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("pushes_drop")).await.unwrap();
    let channel = client.keys().wake_channel();
    let mut wakes = pin!(client.wake_ups().await.unwrap());
    let mut changes = pin!(client.status_changes().await.unwrap());
    // A subscribed connection is of type `pubsub`, in RESP3 as in RESP2.
    assert_eq!(redis.command(&["CLIENT", "KILL", "TYPE", "pubsub"]), "1");
    // Both streams end, as a pub/sub connection's does: their owners must catch up.
    assert_eq!(next(&mut wakes).await, None);
    assert!(next(&mut changes).await.is_none());

    let mut wakes = pin!(client.wake_ups().await.unwrap());
    redis.command(&["PUBLISH", &channel, "default"]);
    assert_eq!(next(&mut wakes).await.unwrap(), "default");
    let list = connections(&redis);
    assert_eq!(list.len(), 1, "{list:#?}");
    assert!(list[0].contains(" sub=1 "), "{list:#?}");

    // A restart (all state lost) ends it too, and the next subscription works.
    let mut redis = redis;
    redis.restart();
    assert_eq!(next(&mut wakes).await, None);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut wakes = loop {
        match client.wake_ups().await {
            Ok(wakes) => break Box::pin(wakes),
            Err(e) => assert!(Instant::now() < deadline, "{e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    redis.command(&["PUBLISH", &channel, "mail"]);
    assert_eq!(next(&mut wakes).await.unwrap(), "mail");
}

#[tokio::test]
async fn a_server_that_refuses_resp3_gets_a_pub_sub_connection() {
    // What a server before Redis 6 answers to HELLO: unknown command.
    let redis = TestRedis::start_with_args(&["--rename-command", "HELLO", "HELLO_IS_GONE"]);
    let client = Client::connect(redis.config("pushes_old")).await.unwrap();
    assert!(!client.pushes_on_shared_connection());
    let channel = client.keys().wake_channel();
    let mut wakes = pin!(client.wake_ups().await.unwrap());
    let list = connections(&redis);
    assert_eq!(list.len(), 2, "{list:#?}");
    redis.command(&["PUBLISH", &channel, "default"]);
    assert_eq!(next(&mut wakes).await.unwrap(), "default");
}

#[tokio::test]
async fn protocol_resp2_in_the_url_keeps_the_second_connection() {
    let redis = TestRedis::start_private();
    let config = ClientConfig::new(format!("{}/?protocol=resp2", redis.url())).prefix("{p2}:");
    let client = Client::connect(config).await.unwrap();
    assert!(!client.pushes_on_shared_connection());
    let _wakes = client.wake_ups().await.unwrap();
    let list = connections(&redis);
    assert_eq!(list.len(), 2, "{list:#?}");
}
