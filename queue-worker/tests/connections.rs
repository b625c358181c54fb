//! A worker process holds at most 3 Redis connections whatever its concurrency.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Job, JobState};
use queue_worker::{Failure, JobContext, Worker};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Hold;
impl Job for Hold {
    const NAME: &'static str = "Hold";
}

async fn connections_at(concurrency: usize) -> usize {
    let redis = TestRedis::start();
    let client = client(&redis, "conns").await;
    let w = Worker::builder()
        .config(fast_config())
        .concurrency(concurrency)
        .register(|_: Hold, ctx: JobContext| async move {
            ctx.progress(1, "holding").await.ok();
            ctx.cancelled().await;
            Ok::<_, Failure>(())
        })
        .build(client.clone())
        .unwrap()
        .start();
    let mut ids = Vec::new();
    for _ in 0..concurrency {
        ids.push(client.enqueue(&Hold).await.unwrap());
    }
    for id in &ids {
        wait_for_state(&client, id, JobState::Running).await;
    }
    // Our probe is the only other client: name it so it can be left out.
    let mut probe = raw(&redis).await;
    let _: () = redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg("probe")
        .query_async(&mut probe)
        .await
        .unwrap();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut probe)
        .await
        .unwrap();
    let count = list.lines().filter(|l| !l.contains("name=probe")).count();
    eprintln!("concurrency {concurrency}: {count} Redis connections\n{list}");
    drop(tokio::time::timeout(Duration::from_secs(10), w.shutdown()).await);
    count
}

#[tokio::test]
async fn connections_do_not_grow_with_concurrency() {
    for concurrency in [1, 25, 100] {
        let n = connections_at(concurrency).await;
        assert!(n <= 3, "{n} connections at concurrency {concurrency}");
    }
}
