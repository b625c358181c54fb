//! Cluster mode against a private loopback Redis Cluster (3 masters, 3 replicas): the client's
//! calls, scripts and pipelines work through the cluster client, every key of the app lands
//! in the one slot of its prefix's hash tag, and a prefix without a tag is refused.

use queue_core::testing::TestCluster;
use queue_core::{
    Client, ClientConfig, EnqueueOptions, Error, Inspector, JobState, NewJob, Unique,
};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_prefix_without_a_hash_tag_is_refused_before_anything_is_written() {
    let cluster = TestCluster::start();
    for prefix in ["", "app:", "{}:"] {
        let err = Client::connect(ClientConfig::cluster(cluster.urls(), prefix))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::ClusterPrefixWithoutHashTag(p) if p == prefix),
            "{prefix:?}: {err:?}"
        );
    }
    for (i, node) in cluster.nodes().iter().enumerate() {
        assert_eq!(node.command(&["DBSIZE"]), "0", "node {i}");
    }
}

#[tokio::test]
async fn enqueue_status_bulk_unique_cancel_and_inspect_work_in_one_slot() {
    let cluster = TestCluster::start();
    let client = Client::connect(cluster.config("cluster_core"))
        .await
        .unwrap();
    let keys = client.keys().clone();

    let id = client
        .push(NewJob::new("Greet", vec![json!("ada")]))
        .await
        .unwrap();
    let status = client.status(&id).await.unwrap().unwrap();
    assert_eq!(status.state, JobState::Queued);

    let bulk: Vec<NewJob> = (0..250)
        .map(|i| NewJob::new("Greet", vec![json!(i)]))
        .collect();
    assert_eq!(client.push_bulk(bulk).await.unwrap().len(), 250);

    let later = client
        .push(NewJob {
            options: EnqueueOptions::new().delay(Duration::from_secs(600)),
            ..NewJob::new("Later", vec![])
        })
        .await
        .unwrap();
    assert_eq!(
        client.status(&later).await.unwrap().unwrap().state,
        JobState::Scheduled
    );
    assert!(client.cancel(&later).await.unwrap());
    assert_eq!(
        client.status(&later).await.unwrap().unwrap().state,
        JobState::Cancelled
    );

    let once = Unique::until_succeeded(Duration::from_secs(60));
    let unique = |n: u32| NewJob {
        options: EnqueueOptions::new().unique_by("nightly", once),
        ..NewJob::new("Nightly", vec![json!(n)])
    };
    let first = client.push(unique(1)).await.unwrap();
    assert_eq!(client.push(unique(2)).await.unwrap(), first);

    // Inspect's pipelines (several keys and TIME in one round trip) route to the one slot.
    let inspector = Inspector::new(&client);
    let stats = inspector.stats().await.unwrap();
    assert_eq!(stats.enqueued, 252, "{stats:?}");
    assert_eq!(inspector.queue("default").await.unwrap().size, 252);

    // Every key of the app is on the master of its hash tag's slot, none elsewhere.
    let home = cluster.master_of(&keys.queue("default"));
    for (i, node) in cluster.nodes().iter().enumerate() {
        if !node
            .command(&["INFO", "replication"])
            .contains("role:master")
        {
            continue;
        }
        let size: u64 = node.command(&["DBSIZE"]).parse().unwrap();
        if i == home {
            // queue, queues, status records, the unique key.
            assert!(size >= 250, "home master holds {size} keys");
        } else {
            assert_eq!(size, 0, "master {i} holds keys of the app");
        }
    }
}

/// The node holding this process's one subscriber connection (`sub=1` in its client list;
/// none of the cluster's own links subscribe), once there is exactly one: a dropped
/// subscription's connection may take a moment to leave its node's list.
fn subscriber_node(cluster: &TestCluster) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let holders: Vec<usize> = (0..cluster.nodes().len())
            .filter(|&i| {
                cluster.nodes()[i]
                    .command(&["CLIENT", "LIST"])
                    .lines()
                    .any(|client| client.contains(" sub=1 "))
            })
            .collect();
        if let [one] = holders[..] {
            return one;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "one subscriber expected: {holders:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(cluster: &TestCluster, node: usize, sig: &str) {
    let pid = cluster.nodes()[node].pid().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// How long a subscription on a frozen node may take to notice: the check interval plus the
/// client timeout, with room for a loaded machine.
const FROZEN_NOTICED: Duration = Duration::from_secs(15);

/// A node that stops answering (SIGSTOP: a hung host, a network partition) closes no TCP
/// connection, so a subscriber on it would wait forever while the app's master runs on and
/// publishes to everyone else. The subscription must end by itself (its owner then
/// subscribes on the next node), for the wake channel and the status channel alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_on_a_frozen_node_ends_and_the_next_one_is_elsewhere() {
    use futures_util::StreamExt;
    let cluster = TestCluster::start();
    let client = Client::connect(cluster.config("frozen_sub")).await.unwrap();

    let mut wake = Box::pin(client.wake_ups().await.unwrap());
    let frozen = subscriber_node(&cluster);
    signal(&cluster, frozen, "-STOP");
    let ended = tokio::time::timeout(FROZEN_NOTICED, wake.next()).await;
    signal(&cluster, frozen, "-CONT");
    assert_eq!(
        ended,
        Ok(None),
        "the wake subscription outlived its frozen node"
    );
    drop(wake);

    let mut changes = Box::pin(client.status_changes().await.unwrap());
    let frozen = subscriber_node(&cluster);
    signal(&cluster, frozen, "-STOP");
    let ended = tokio::time::timeout(FROZEN_NOTICED, changes.next()).await;
    signal(&cluster, frozen, "-CONT");
    assert!(
        matches!(ended, Ok(None)),
        "the status subscription outlived its frozen node"
    );
    drop(changes);

    // The next subscription is on another node, survives its checks (a reply to its `PING`
    // is not taken for a failure nor for a message), and hears the app's pushes.
    let wake = client.wake_ups().await.unwrap();
    let first = tokio::spawn(async move { Box::pin(wake).next().await });
    let node = subscriber_node(&cluster);
    assert_ne!(node, frozen);
    let deadline = std::time::Instant::now() + FROZEN_NOTICED;
    while !cluster.nodes()[node]
        .command(&["CLIENT", "LIST"])
        .lines()
        .any(|client| client.contains(" sub=1 ") && client.contains(" cmd=ping "))
    {
        assert!(std::time::Instant::now() < deadline, "no check was sent");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client
        .push(NewJob::new("Greet", vec![json!("ada")]))
        .await
        .unwrap();
    let heard = tokio::time::timeout(FROZEN_NOTICED, first).await.unwrap();
    assert_eq!(heard.unwrap(), Some("default".to_owned()));
}
