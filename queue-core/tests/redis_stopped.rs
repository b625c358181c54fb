//! Redis stopping under a connected client: typed errors within the timeout, then recovery.

mod common;

use common::{Greet, MARGIN, Tick, cmd, raw, wait_until};
use queue_core::testing::TestRedis;
use queue_core::{Client, Error, JobId};
use std::future::Future;
use std::time::Duration;

/// Bound of every call in these tests.
const TIMEOUT: Duration = Duration::from_millis(500);

/// Runs `call` with a deadline of the client's timeout plus [`MARGIN`]; panics if it hangs.
async fn within_timeout<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = queue_core::Result<T>>,
) -> Error {
    let reply = tokio::time::timeout(TIMEOUT + MARGIN, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung past its timeout"));
    let err = reply.expect_err(what);
    assert!(
        matches!(err, Error::Unavailable(_) | Error::Timeout(_)),
        "{what}: {err:?}"
    );
    assert!(err.is_transient(), "{what}");
    err
}

#[tokio::test]
async fn calls_fail_fast_while_redis_is_stopped_and_recover_after_restart() {
    let mut redis = TestRedis::start_private();
    let config = redis
        .config("calls_fail_fast_while_redis_is_stopped_and_recover_after_restart")
        .timeout(TIMEOUT);
    let client = Client::connect(config).await.unwrap();
    let keys = client.keys().clone();
    let id = client.enqueue(&Greet::new("before")).await.unwrap();

    redis.kill();
    within_timeout("enqueue", client.enqueue(&Greet::new("down"))).await;
    within_timeout("enqueue again", client.enqueue(&Tick(1))).await;
    within_timeout(
        "scheduled enqueue",
        client.enqueue_in(&Greet::new("down"), Duration::from_secs(5)),
    )
    .await;
    within_timeout("bulk enqueue", client.enqueue_bulk(&[Tick(1), Tick(2)])).await;
    within_timeout("status", client.status(&id)).await;
    within_timeout("cancel", client.cancel(&id)).await;
    within_timeout("ping", client.ping()).await;

    // The same port, an empty server without the scripts: the shared connection reconnects
    // by itself and the scripts are sent again on NOSCRIPT.
    redis.restart();
    let mut conn = raw(&redis).await;
    let fresh = JobId::new();
    wait_until("an enqueue succeeds after the restart", || {
        let client = client.clone();
        let fresh = fresh.clone();
        async move {
            let opts = queue_core::EnqueueOptions::new().job_id(fresh);
            client
                .enqueue_with(&Greet::new("after"), opts)
                .await
                .is_ok()
        }
    })
    .await;
    let entries: Vec<String> = cmd(&mut conn, &["LRANGE", &keys.queue("default"), "0", "-1"]).await;
    assert_eq!(entries.len(), 1, "only the job pushed after the restart");
    let job = queue_core::JobPayload::from_json(entries[0].as_bytes()).unwrap();
    assert_eq!(job.jid, fresh);
    assert!(client.status(&fresh).await.unwrap().is_some());
}
