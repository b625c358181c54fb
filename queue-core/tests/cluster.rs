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
