//! Bad input and failing jobs: each ends in the right Sidekiq set with Sidekiq's fields,
//! and the worker keeps serving.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{EnqueueOptions, Job, JobPayload, JobState, NewJob, Retry};
use queue_worker::{Failure, JobContext, MALFORMED_CLASS, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Panics;
impl Job for Panics {
    const NAME: &'static str = "Panics";
}

#[derive(Serialize, Deserialize)]
struct Hangs;
impl Job for Hangs {
    const NAME: &'static str = "Hangs";
    fn timeout() -> Option<Duration> {
        Some(Duration::from_millis(200))
    }
}

#[derive(Serialize, Deserialize)]
struct Fine;
impl Job for Fine {
    const NAME: &'static str = "Fine";
}

#[derive(Serialize, Deserialize)]
struct Doomed;
impl Job for Doomed {
    const NAME: &'static str = "Doomed";
    const RETRY: Retry = Retry::Disabled;
}

fn worker(
    client: &queue_core::Client,
    tweak: impl FnOnce(&mut queue_worker::WorkerConfig),
) -> queue_worker::RunningWorker {
    let mut config = fast_config();
    tweak(&mut config);
    Worker::builder()
        .config(config)
        .register(|_: Panics, _: JobContext| async { panic!("boom {}", 7) as Result<(), Failure> })
        .register(|_: Hangs, ctx: JobContext| async move {
            ctx.cancelled().await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, Failure>(())
        })
        .register(|_: Fine, _: JobContext| async { Ok::<_, Failure>("fine") })
        .register(|_: Doomed, _: JobContext| async { Err::<(), _>(Failure::retry("no luck")) })
        .build(client.clone())
        .unwrap()
        .start()
}

async fn retry_entries(
    conn: &mut redis::aio::MultiplexedConnection,
    key: &str,
) -> Vec<(JobPayload, f64)> {
    let raw: Vec<(String, f64)> = conn.zrange_withscores(key, 0, -1).await.unwrap();
    raw.into_iter()
        .map(|(j, s)| (JobPayload::from_json(j.as_bytes()).unwrap(), s))
        .collect()
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn a_panic_is_recorded_as_a_failure_without_its_payload_and_retried_with_backoff() {
    let redis = TestRedis::start();
    let client = client(&redis, "panic").await;
    let w = worker(&client, |_| {});
    let id = client.enqueue(&Panics).await.unwrap();
    wait_for_state(&client, &id, JobState::Retrying).await;
    let mut conn = raw(&redis).await;
    let entries = retry_entries(&mut conn, &client.keys().retry()).await;
    assert_eq!(entries.len(), 1);
    let (job, score) = &entries[0];
    assert_eq!(job.error_class.as_deref(), Some("Panic"));
    // A panic's payload is internal (it can quote any value): it goes to the log only.
    let message = job.error_message.as_deref().unwrap();
    assert!(!message.contains("boom"), "{message}");
    assert!(message.contains("panicked"), "{message}");
    assert_eq!(job.retry_count, Some(0));
    assert!(job.failed_at.is_some() && job.enqueued_at.is_none());
    // Sidekiq's first delay: 15 s plus up to 10 s of jitter.
    let delay = score - now();
    assert!((13.0..26.0).contains(&delay), "retry in {delay} s");
    let status = client.status(&id).await.unwrap().unwrap();
    assert_eq!(status.error.unwrap(), format!("Panic: {message}"));
    // The worker keeps serving.
    let ok = client.enqueue(&Fine).await.unwrap();
    wait_for_state(&client, &ok, JobState::Succeeded).await;
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_job_over_its_timeout_is_cancelled_and_failed_as_timeout() {
    let redis = TestRedis::start();
    let client = client(&redis, "timeout").await;
    let w = worker(&client, |_| {});
    let id = client.enqueue(&Hangs).await.unwrap();
    wait_for_state(&client, &id, JobState::Retrying).await;
    let mut conn = raw(&redis).await;
    let (job, _) = retry_entries(&mut conn, &client.keys().retry())
        .await
        .remove(0);
    assert_eq!(job.error_class.as_deref(), Some("Timeout"));
    assert!(job.error_message.unwrap().starts_with("timeout"));
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_malformed_entry_goes_to_the_dead_set_with_its_raw_bytes_and_reason() {
    let redis = TestRedis::start();
    let client = client(&redis, "malformed").await;
    let w = worker(&client, |_| {});
    let mut conn = raw(&redis).await;
    let garbage = format!("{{not json {}", "x".repeat(10_000));
    let _: () = conn
        .lpush(client.keys().queue("default"), &garbage)
        .await
        .unwrap();
    let ok = client.enqueue(&Fine).await.unwrap();
    wait_for_state(&client, &ok, JobState::Succeeded).await;
    let dead = wait_for("the dead entry", Duration::from_secs(5), || {
        let mut conn = conn.clone();
        let key = client.keys().dead();
        async move {
            let d = retry_entries(&mut conn, &key).await;
            (!d.is_empty()).then_some(d)
        }
    })
    .await;
    let (job, _) = &dead[0];
    assert_eq!(job.class, MALFORMED_CLASS);
    assert_eq!(job.error_class.as_deref(), Some("MalformedPayload"));
    assert!(
        job.error_message
            .as_deref()
            .unwrap()
            .contains("not valid job JSON")
    );
    let kept = job.extra["raw"].as_str().unwrap();
    assert!(
        garbage.starts_with(kept) && kept.len() <= 4096,
        "raw bytes kept, truncated"
    );
    let processing: i64 = conn
        .llen(client.keys().processing_prefix() + &w.identity())
        .await
        .unwrap();
    assert_eq!(processing, 0);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unknown_job_type_is_retried_not_dropped_and_not_counted() {
    let redis = TestRedis::start();
    let client = client(&redis, "unknown").await;
    let w = worker(&client, |_| {});
    let id = client
        .push(NewJob::new("FromTheNextDeploy", vec![serde_json::json!(1)]))
        .await
        .unwrap();
    wait_for_state(&client, &id, JobState::Retrying).await;
    let mut conn = raw(&redis).await;
    let entries = retry_entries(&mut conn, &client.keys().retry()).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0.error_class.as_deref(), Some("UnknownJob"));
    assert_eq!(entries[0].0.args, vec![serde_json::json!(1)]);
    let processed: Option<i64> = conn.get(client.keys().stat_processed()).await.unwrap();
    assert_eq!(processed, None, "not counted as processed");
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn retry_false_goes_straight_to_dead_and_the_dead_set_is_capped() {
    let redis = TestRedis::start();
    let client = client(&redis, "dead").await;
    let w = worker(&client, |c| c.dead_max_jobs = 3);
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(client.enqueue(&Doomed).await.unwrap());
    }
    for id in &ids {
        wait_for_state(&client, id, JobState::Dead).await;
    }
    let mut conn = raw(&redis).await;
    let dead: i64 = conn.zcard(client.keys().dead()).await.unwrap();
    assert_eq!(dead, 3, "capped by count");
    let retry: i64 = conn.zcard(client.keys().retry()).await.unwrap();
    assert_eq!(retry, 0);
    let failed: i64 = conn.get(client.keys().stat_failed()).await.unwrap();
    assert_eq!(failed, 5);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn exhausted_retries_go_to_dead_and_old_dead_jobs_are_trimmed_by_age() {
    let redis = TestRedis::start();
    let client = client(&redis, "exhausted").await;
    let mut conn = raw(&redis).await;
    // A very old dead job, beyond the 180-day age cap.
    let _: () = conn
        .zadd(
            client.keys().dead(),
            r#"{"class":"Old","args":[],"jid":"old"}"#,
            1_000.0,
        )
        .await
        .unwrap();
    let w = worker(&client, |_| {});
    let id = client
        .enqueue_with(&Panics, EnqueueOptions::new().retry(Retry::Max(1)))
        .await
        .unwrap();
    wait_for_state(&client, &id, JobState::Retrying).await;
    // Make the retry due now, as if its time had come.
    let (raw_job, _): (String, f64) = conn
        .zrange_withscores::<_, Vec<(String, f64)>>(client.keys().retry(), 0, 0)
        .await
        .unwrap()
        .remove(0);
    let _: () = conn
        .zadd(client.keys().retry(), &raw_job, 1.0)
        .await
        .unwrap();
    wait_for_state(&client, &id, JobState::Dead).await;
    let dead = retry_entries(&mut conn, &client.keys().dead()).await;
    assert_eq!(dead.len(), 1, "the 180-day-old entry was trimmed");
    assert_eq!(dead[0].0.retry_count, Some(1));
    assert!(dead[0].0.retried_at.is_some());
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn long_error_messages_are_truncated() {
    let redis = TestRedis::start();
    let client = client(&redis, "truncate").await;
    let w = Worker::builder()
        .config(fast_config())
        .register(|_: Doomed, _: JobContext| async {
            Err::<(), _>(Failure::retry("e".repeat(100_000)))
        })
        .build(client.clone())
        .unwrap()
        .start();
    let id = client.enqueue(&Doomed).await.unwrap();
    wait_for_state(&client, &id, JobState::Dead).await;
    let mut conn = raw(&redis).await;
    let (job, _) = retry_entries(&mut conn, &client.keys().dead())
        .await
        .remove(0);
    assert!(job.error_message.unwrap().len() <= 4100);
    assert!(
        client
            .status(&id)
            .await
            .unwrap()
            .unwrap()
            .error
            .unwrap()
            .len()
            <= 4100
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_job_is_skipped() {
    let redis = TestRedis::start();
    let client = client(&redis, "cancel").await;
    let id = client.enqueue(&Panics).await.unwrap();
    assert!(client.cancel(&id).await.unwrap());
    let w = worker(&client, |_| {});
    let ok = client.enqueue(&Fine).await.unwrap();
    wait_for_state(&client, &ok, JobState::Succeeded).await;
    let mut conn = raw(&redis).await;
    let queued: i64 = conn.llen(client.keys().queue("default")).await.unwrap();
    let retry: i64 = conn.zcard(client.keys().retry()).await.unwrap();
    assert_eq!((queued, retry), (0, 0), "taken off the queue, never run");
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_unknown_job_type_uses_up_no_retry_even_with_retry_false() {
    let redis = TestRedis::start();
    let client = client(&redis, "unknown_noretry").await;
    let w = worker(&client, |_| {});
    let mut job = NewJob::new("FromTheNextDeploy", vec![]);
    job.retry = Retry::Disabled;
    let id = client.push(job).await.unwrap();
    wait_for_state(&client, &id, JobState::Retrying).await;
    let mut conn = raw(&redis).await;
    let entries = retry_entries(&mut conn, &client.keys().retry()).await;
    assert_eq!(entries.len(), 1, "deferred to the retry set, not buried");
    assert_eq!(entries[0].0.retry_count, None, "no retry used up");
    assert_eq!(entries[0].0.unknown_class, Some(1));
    let dead: i64 = conn.zcard(client.keys().dead()).await.unwrap();
    assert_eq!(dead, 0);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_entry_that_is_not_utf8_is_buried_and_leaves_the_processing_list() {
    let redis = TestRedis::start();
    let client = client(&redis, "not_utf8").await;
    let w = worker(&client, |_| {});
    let mut conn = raw(&redis).await;
    let bytes: Vec<u8> = vec![0xff, 0xfe, b'{', 0x80];
    let _: () = conn
        .lpush(client.keys().queue("default"), &bytes)
        .await
        .unwrap();
    wait_for_size(
        &conn,
        &client.keys().dead(),
        1,
        "the dead entry",
        Duration::from_secs(5),
    )
    .await;
    let processing: i64 = conn
        .llen(client.keys().processing(&w.identity()))
        .await
        .unwrap();
    assert_eq!(processing, 0);
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_scheduled_job_never_runs() {
    let redis = TestRedis::start();
    let client = client(&redis, "cancel_scheduled").await;
    let w = worker(&client, |_| {});
    let id = client
        .enqueue_in(&Panics, Duration::from_millis(200))
        .await
        .unwrap();
    assert!(client.cancel(&id).await.unwrap());
    let mut conn = raw(&redis).await;
    wait_for_size(
        &conn,
        &client.keys().schedule(),
        0,
        "the schedule set to empty",
        Duration::from_secs(5),
    )
    .await;
    // Run something after it so that, had it been queued, the worker would have taken it.
    let ok = client.enqueue(&Fine).await.unwrap();
    wait_for_state(&client, &ok, JobState::Succeeded).await;
    let retry: i64 = conn.zcard(client.keys().retry()).await.unwrap();
    assert_eq!(retry, 0, "the panicking job never ran");
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_job_of_an_unknown_class_is_dropped_not_deferred() {
    let redis = TestRedis::start();
    let client = client(&redis, "cancel_unknown").await;
    let id = client
        .push(NewJob::new("FromTheNextDeploy", vec![]))
        .await
        .unwrap();
    assert!(client.cancel(&id).await.unwrap());
    let w = worker(&client, |_| {});
    let ok = client.enqueue(&Fine).await.unwrap();
    wait_for_state(&client, &ok, JobState::Succeeded).await;
    let mut conn = raw(&redis).await;
    let retry: i64 = conn.zcard(client.keys().retry()).await.unwrap();
    let queued: i64 = conn.llen(client.keys().queue("default")).await.unwrap();
    assert_eq!((retry, queued), (0, 0));
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    w.shutdown().await.unwrap();
}

#[derive(Serialize, Deserialize)]
struct CallsUpstream;
impl Job for CallsUpstream {
    const NAME: &'static str = "CallsUpstream";
}

/// A job's own error type, whose message quotes a URL with a password in it.
#[derive(Debug)]
struct UpstreamError(String);

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream refused: {}", self.0)
    }
}

impl std::error::Error for UpstreamError {}

#[derive(Serialize, Deserialize)]
struct QueueTrouble;
impl Job for QueueTrouble {
    const NAME: &'static str = "QueueTrouble";
}

#[tokio::test]
async fn the_status_shows_the_jobs_own_error_class_and_message_with_credentials_redacted() {
    let redis = TestRedis::start();
    let client = client(&redis, "own_error").await;
    let w = Worker::builder()
        .config(fast_config())
        .register(|_: CallsUpstream, _: JobContext| async {
            Err(UpstreamError(
                "redis://app:hunter2@db.example:6379/0 said no".into(),
            ))?;
            Ok::<_, Failure>(())
        })
        .build(client.clone())
        .unwrap()
        .start();
    let id = client.enqueue(&CallsUpstream).await.unwrap();
    wait_for_state(&client, &id, JobState::Retrying).await;
    let status = client.status(&id).await.unwrap().unwrap();
    assert_eq!(
        status.error.as_deref(),
        Some("UpstreamError: upstream refused: redis://app:***@db.example:6379/0 said no")
    );
    let mut conn = raw(&redis).await;
    let (job, _) = retry_entries(&mut conn, &client.keys().retry())
        .await
        .remove(0);
    assert_eq!(job.error_class.as_deref(), Some("UpstreamError"));
    assert_eq!(
        job.error_message.as_deref(),
        Some("upstream refused: redis://app:***@db.example:6379/0 said no")
    );
    w.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_queue_error_passed_on_by_a_job_is_logged_not_shown() {
    let redis = TestRedis::start();
    let client = client(&redis, "queue_error").await;
    let w = Worker::builder()
        .config(fast_config())
        .register(|_: QueueTrouble, _: JobContext| async {
            // What `ctx.progress(..).await?` returns when Redis refuses or hangs.
            Err(queue_worker::Error::from(queue_core::Error::Timeout(
                Duration::from_secs(2),
            )))?;
            Ok::<_, Failure>(())
        })
        .build(client.clone())
        .unwrap()
        .start();
    let id = client.enqueue(&QueueTrouble).await.unwrap();
    wait_for_state(&client, &id, JobState::Retrying).await;
    let error = client.status(&id).await.unwrap().unwrap().error.unwrap();
    assert!(!error.contains("did not answer"), "{error}");
    assert!(error.starts_with("QueueError: "), "{error}");
    w.shutdown().await.unwrap();
}
