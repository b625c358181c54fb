//! A worker process holds one Redis connection whatever its concurrency (two where the
//! server refuses RESP3), and a dropped connection loses no wake-up.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{Client, Job, JobState};
use queue_worker::{Failure, JobContext, Worker};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Hold;
impl Job for Hold {
    const NAME: &'static str = "Hold";
}

#[derive(Serialize, Deserialize)]
struct Noop;
impl Job for Noop {
    const NAME: &'static str = "Noop";
}

/// The lines of `CLIENT LIST`, our probe's left out.
async fn client_list(redis: &TestRedis) -> Vec<String> {
    let mut probe = raw(redis).await;
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
    list.lines()
        .filter(|l| !l.contains("name=probe"))
        .map(str::to_owned)
        .collect()
}

/// The connections of a worker at `concurrency` once every slot runs a job: their number,
/// and how many of them are subscribed to a channel.
async fn connections_at(redis: &TestRedis, concurrency: usize) -> (usize, usize) {
    let client = client(redis, "conns").await;
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
    let list = client_list(redis).await;
    let subscribed = list.iter().filter(|l| l.contains(" sub=1 ")).count();
    eprintln!(
        "concurrency {concurrency}: {} Redis connections\n{}",
        list.len(),
        list.join("\n")
    );
    drop(tokio::time::timeout(Duration::from_secs(10), w.shutdown()).await);
    (list.len(), subscribed)
}

#[tokio::test]
async fn one_connection_whatever_the_concurrency() {
    for concurrency in [1, 25, 100] {
        let redis = TestRedis::start_private();
        let (n, subscribed) = connections_at(&redis, concurrency).await;
        // The shared connection carries the commands and the wake channel's pushes.
        assert_eq!(
            (n, subscribed),
            (1, 1),
            "connections at concurrency {concurrency}"
        );
    }
}

#[tokio::test]
async fn two_connections_where_the_server_refuses_resp3() {
    // What a server before Redis 6 answers to HELLO: unknown command.
    for concurrency in [1, 25] {
        let redis = TestRedis::start_with_args(&["--rename-command", "HELLO", "HELLO_IS_GONE"]);
        assert!(!client(&redis, "old").await.pushes_on_shared_connection());
        let (n, subscribed) = connections_at(&redis, concurrency).await;
        // The shared connection, and the pub/sub connection of the wake channel.
        assert_eq!(
            (n, subscribed),
            (2, 1),
            "connections at concurrency {concurrency}"
        );
    }
}

/// The id of the one subscribed connection (the worker's shared one), once there is one.
async fn subscribed_connection(redis: &TestRedis) -> String {
    wait_for(
        "a subscribed connection",
        Duration::from_secs(5),
        || async {
            let list = client_list(redis).await;
            let line = list.iter().find(|l| l.contains(" sub=1 "))?;
            let id = line.split(' ').find_map(|f| f.strip_prefix("id="))?;
            Some(id.to_owned())
        },
    )
    .await
}

#[tokio::test]
async fn a_killed_connection_loses_no_wake_up() {
    let redis = TestRedis::start_private();
    let worker_client = client(&redis, "kill").await;
    assert!(worker_client.pushes_on_shared_connection());
    let enqueuer = Client::connect(redis.config("kill").connection_name("enqueuer"))
        .await
        .unwrap();
    // Polling would find a job only after a minute: a pickup in seconds was woken.
    let config = queue_worker::WorkerConfig {
        idle_poll: Duration::from_secs(60),
        ..fast_config()
    };
    let w = Worker::builder()
        .config(config)
        .concurrency(1)
        .register(|_: Noop, _ctx: JobContext| async move { Ok::<_, Failure>(()) })
        .build(worker_client)
        .unwrap()
        .start();
    let first = enqueuer.enqueue(&Noop).await.unwrap();
    wait_for_state(&enqueuer, &first, JobState::Succeeded).await;
    for round in 0..8 {
        let id = subscribed_connection(&redis).await;
        assert_eq!(redis.command(&["CLIENT", "KILL", "ID", &id]), "1");
        // The worker is back (it ran a script on a new connection: the fetch its wake
        // listener asked for when the subscription ended), and may not have subscribed
        // again yet: an enqueue now is announced to nobody unless it already has.
        wait_for(
            "the worker to reconnect",
            Duration::from_secs(5),
            || async {
                client_list(&redis)
                    .await
                    .iter()
                    .any(|l| {
                        !l.contains("name=enqueuer")
                            && !l.contains(&format!("id={id} "))
                            && (l.contains(" cmd=evalsha ") || l.contains(" sub=1 "))
                    })
                    .then_some(())
            },
        )
        .await;
        let job = enqueuer.enqueue(&Noop).await.unwrap();
        wait_for(
            &format!("round {round}: the job enqueued after the kill to run"),
            Duration::from_secs(5),
            || async {
                let s = enqueuer.status(&job).await.unwrap()?;
                (s.state == JobState::Succeeded).then_some(())
            },
        )
        .await;
    }
    drop(tokio::time::timeout(Duration::from_secs(10), w.shutdown()).await);
}
