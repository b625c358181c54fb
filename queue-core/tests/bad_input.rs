//! Refused enqueues: each bad input is a typed error and leaves Redis untouched.

mod common;

use common::{Greet, MARGIN, Tick, all_keys, cmd, raw};
use queue_core::config::DEFAULT_MAX_PAYLOAD_BYTES;
use queue_core::testing::TestRedis;
use queue_core::{Client, EnqueueOptions, Error, Job, NewJob};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

/// A job whose arguments serde_json cannot encode: map keys must be strings.
#[derive(Debug, Serialize, Deserialize)]
struct TupleKeys(BTreeMap<(u8, u8), u8>);

impl Job for TupleKeys {
    const NAME: &'static str = "TupleKeys";
}

/// A job carrying a blob, to go over the payload cap.
#[derive(Debug, Serialize, Deserialize)]
struct Blob {
    data: String,
}

impl Job for Blob {
    const NAME: &'static str = "Blob";
}

fn blob(bytes: usize) -> Blob {
    Blob {
        data: "x".repeat(bytes),
    }
}

#[tokio::test]
async fn arguments_that_fail_to_serialize_write_nothing() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("arguments_that_fail_to_serialize_write_nothing"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;
    let bad = TupleKeys(BTreeMap::from([((1, 2), 3)]));

    let err = client.enqueue(&bad).await.unwrap_err();
    assert!(matches!(err, Error::Serialize(_)), "{err:?}");
    assert!(!err.is_transient());
    let err = client
        .enqueue_in(&bad, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Serialize(_)), "{err:?}");
    let err = client.enqueue_bulk(&[bad]).await.unwrap_err();
    assert!(matches!(err, Error::Serialize(_)), "{err:?}");

    assert!(all_keys(&redis, &mut conn).await.is_empty());
}

#[tokio::test]
async fn a_payload_over_the_cap_writes_nothing() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("a_payload_over_the_cap_writes_nothing"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    assert_eq!(client.config().max_payload_bytes, 256 * 1024);

    let err = client
        .enqueue(&blob(DEFAULT_MAX_PAYLOAD_BYTES))
        .await
        .unwrap_err();
    match err {
        Error::PayloadTooLarge { size, limit } => {
            assert_eq!(limit, DEFAULT_MAX_PAYLOAD_BYTES);
            assert!(size > DEFAULT_MAX_PAYLOAD_BYTES, "{size}");
        }
        other => panic!("{other:?}"),
    }
    let err = client
        .enqueue_in(&blob(DEFAULT_MAX_PAYLOAD_BYTES), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err:?}");
    // One oversized job fails the whole bulk call before anything is sent.
    let jobs = [blob(10), blob(DEFAULT_MAX_PAYLOAD_BYTES), blob(10)];
    let err = client.enqueue_bulk(&jobs).await.unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err:?}");
    assert!(all_keys(&redis, &mut conn).await.is_empty());

    // Just under the cap is fine: the cap is on the whole encoded job.
    let id = client
        .enqueue(&blob(DEFAULT_MAX_PAYLOAD_BYTES - 300))
        .await
        .unwrap();
    let stored: Vec<String> = cmd(&mut conn, &["LRANGE", &keys.queue("default"), "0", "-1"]).await;
    assert!(stored[0].len() <= DEFAULT_MAX_PAYLOAD_BYTES);
    assert!(client.status(&id).await.unwrap().is_some());
}

#[tokio::test]
async fn a_configured_cap_is_applied_to_the_encoded_job() {
    let redis = TestRedis::start();
    let config = redis
        .config("a_configured_cap_is_applied_to_the_encoded_job")
        .max_payload_bytes(1024);
    let client = Client::connect(config).await.unwrap();
    let mut conn = raw(&redis).await;

    let err = client.enqueue(&blob(1024)).await.unwrap_err();
    assert!(
        matches!(err, Error::PayloadTooLarge { limit: 1024, size } if size > 1024),
        "{err:?}"
    );
    assert!(all_keys(&redis, &mut conn).await.is_empty());
    client.enqueue(&blob(100)).await.unwrap();
}

#[tokio::test]
async fn an_invalid_queue_name_writes_nothing() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("an_invalid_queue_name_writes_nothing"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;

    let long = "q".repeat(129);
    for bad in [
        "",
        "has space",
        "a:b",
        "x/y",
        "{tag}",
        "é",
        "new\nline",
        long.as_str(),
    ] {
        let err = client
            .enqueue_with(&Greet::new("q"), EnqueueOptions::new().queue(bad))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidQueueName(q) if q == bad),
            "{bad:?}: {err:?}"
        );
        let err = client
            .enqueue_with(
                &Greet::new("q"),
                EnqueueOptions::new()
                    .queue(bad)
                    .delay(Duration::from_secs(1)),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidQueueName(_)), "{err:?}");
    }
    let mut jobs = vec![
        NewJob::new("Ok", vec![json!(1)]),
        NewJob::new("Bad", vec![]),
    ];
    jobs[1].queue = "no good".to_owned();
    let err = client.push_bulk(jobs).await.unwrap_err();
    assert!(matches!(err, Error::InvalidQueueName(_)), "{err:?}");

    assert!(all_keys(&redis, &mut conn).await.is_empty());
    // The longest and the most varied legal names are accepted.
    for good in ["q".repeat(128), "Mixed_case-1.2".to_owned()] {
        client
            .enqueue_with(&Greet::new("q"), EnqueueOptions::new().queue(good))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_bad_job_late_in_a_bulk_writes_nothing() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("a_bad_job_late_in_a_bulk_writes_nothing"))
        .await
        .unwrap();
    let mut conn = raw(&redis).await;

    // Chunks are 1,000 jobs: the bad job sits in the fourth chunk of its group, so a
    // client that sent chunks before validating everything would have written three.
    let good = |i: u64| {
        let mut job = NewJob::new("Ok", vec![json!(i)]);
        job.track_status = i.is_multiple_of(2);
        job
    };
    let mut jobs: Vec<NewJob> = (0..4_000).map(good).collect();
    jobs[3_500].queue = "no good".to_owned();
    let err = client.push_bulk(jobs).await.unwrap_err();
    assert!(matches!(err, Error::InvalidQueueName(_)), "{err:?}");

    let mut jobs: Vec<NewJob> = (0..4_000).map(good).collect();
    jobs.push(NewJob::new(
        "Big",
        vec![json!("x".repeat(DEFAULT_MAX_PAYLOAD_BYTES))],
    ));
    let err = client.push_bulk(jobs).await.unwrap_err();
    assert!(matches!(err, Error::PayloadTooLarge { .. }), "{err:?}");

    assert!(all_keys(&redis, &mut conn).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_redis_is_a_typed_error_within_the_timeout() {
    // A port nothing listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let timeout = Duration::from_millis(500);
    let config = queue_core::ClientConfig::new(format!("redis://127.0.0.1:{port}"))
        .prefix("{an_unreachable_redis_is_a_typed_error_within_the_timeout}:")
        .timeout(timeout);

    let err = tokio::time::timeout(timeout + MARGIN, Client::connect(config))
        .await
        .expect("connect must give up within its timeout")
        .unwrap_err();
    assert!(
        matches!(err, Error::Unavailable(_) | Error::Timeout(_)),
        "{err:?}"
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_redis_that_never_answers_times_out() {
    // Accepts connections and never answers a byte: a hung server or a black-holed route.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let timeout = Duration::from_millis(300);
    let config = queue_core::ClientConfig::new(format!("redis://127.0.0.1:{port}"))
        .prefix("{a_redis_that_never_answers_times_out}:")
        .timeout(timeout);

    let err = tokio::time::timeout(timeout + MARGIN, Client::connect(config))
        .await
        .expect("connect must give up within its timeout")
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(t) if t == timeout), "{err:?}");
    held.abort();
}

#[tokio::test]
async fn an_enqueue_that_times_out_writes_nothing() {
    // A proxy in front of one server (a cluster client would go around it).
    let redis = TestRedis::start_private();
    let proxy = common::Proxy::start(redis.port()).await;
    let timeout = Duration::from_millis(300);
    let config = queue_core::ClientConfig::new(proxy.url())
        .prefix("{an_enqueue_that_times_out_writes_nothing}:")
        .timeout(timeout);
    let client = Client::connect(config).await.unwrap();
    client.enqueue(&Tick(1)).await.unwrap();
    let mut conn = raw(&redis).await;
    let before = all_keys(&redis, &mut conn).await;
    assert_eq!(before.len(), 2);

    // From now on the route drops everything the client sends: Redis never sees it.
    proxy.black_hole();
    for call in 0..2 {
        let err = tokio::time::timeout(timeout + MARGIN, client.enqueue(&Greet::new("lost")))
            .await
            .expect("enqueue must give up within its timeout")
            .unwrap_err();
        assert!(
            matches!(err, Error::Timeout(t) if t == timeout),
            "call {call}: {err:?}"
        );
        assert!(err.is_transient());
    }
    assert_eq!(all_keys(&redis, &mut conn).await, before);
    let len: usize = cmd(&mut conn, &["LLEN", &client.keys().queue("ticks")]).await;
    assert_eq!(len, 1);
}

#[tokio::test]
async fn out_of_memory_is_a_typed_error_and_writes_nothing() {
    let redis =
        TestRedis::start_with_args(&["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"]);
    let client = Client::connect(redis.config("out_of_memory_is_a_typed_error_and_writes_nothing"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    common::fill_to_out_of_memory(&mut conn, keys.prefix()).await;
    let before = all_keys(&redis, &mut conn).await;

    let err = client.enqueue(&Greet::new("full")).await.unwrap_err();
    assert!(matches!(err, Error::OutOfMemory(_)), "{err:?}");
    assert!(err.is_transient());
    let err = client.enqueue(&Tick(1)).await.unwrap_err();
    assert!(matches!(err, Error::OutOfMemory(_)), "untracked: {err:?}");
    let err = client
        .enqueue_in(&Greet::new("later"), Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutOfMemory(_)), "scheduled: {err:?}");
    let jobs: Vec<Greet> = (0..1_500).map(|i| Greet::new(&i.to_string())).collect();
    let err = client.enqueue_bulk(&jobs).await.unwrap_err();
    assert!(matches!(err, Error::OutOfMemory(_)), "bulk: {err:?}");

    // Only the filler keys: no queue, no queues set, no schedule, no status record.
    assert_eq!(all_keys(&redis, &mut conn).await, before);
    assert!(
        before
            .iter()
            .all(|k| k.starts_with(&format!("{}fill:", keys.prefix())))
    );
}
