//! The operators' verbs of `Inspector`: retry now, kill and delete one entry of a set, retry
//! all and clear a set, pause and resume a queue; each keeps the status record true.

mod common;

use common::{Greet, cmd, exists, hgetall, lrange};
use queue_core::inspect::{Acted, BatchReport, JobSet, MANAGE_BATCH, Page};
use queue_core::testing::TestRedis;
use queue_core::{Client, Error, Inspector, JobId, JobState};

/// A day, the default retention of a finished job's record.
const FINISHED_TTL: i64 = 24 * 3600;

/// A job as Sidekiq keeps it in the retry or dead set.
fn failed_job(jid: &str, queue: &str) -> String {
    format!(
        r#"{{"class":"Greet","args":[{{"name":"x"}}],"jid":"{jid}","queue":"{queue}","retry_count":3,"error_class":"E","error_message":"boom","failed_at":1700000000.5}}"#
    )
}

async fn setup(redis: &TestRedis, name: &str) -> (Client, redis::aio::MultiplexedConnection) {
    let client = Client::connect(redis.config(name)).await.unwrap();
    (client, common::raw(redis).await)
}

/// Puts `member` in `set` at `score` with a status record in `state` (rev 3).
async fn plant(
    conn: &mut redis::aio::MultiplexedConnection,
    client: &Client,
    set: JobSet,
    score: &str,
    jid: &str,
    member: &str,
    state: Option<&str>,
) {
    let keys = client.keys();
    let _: i64 = cmd(conn, &["ZADD", &set.key(keys), score, member]).await;
    if let Some(state) = state {
        let status = keys.status(jid);
        let _: i64 = cmd(
            conn,
            &[
                "HSET",
                &status,
                "state",
                state,
                "rev",
                "3",
                "finished_at",
                "1",
                "run_at",
                "2",
            ],
        )
        .await;
        let _: i64 = cmd(conn, &["EXPIRE", &status, "60"]).await;
    }
}

#[tokio::test]
async fn retry_now_queues_a_dead_job_and_its_record_says_queued() {
    let redis = TestRedis::start();
    let (client, mut conn) = setup(&redis, "retry_now_dead").await;
    let keys = client.keys().clone();
    let member = failed_job("deadjob1", "mail");
    plant(
        &mut conn,
        &client,
        JobSet::Dead,
        "1700000001.25",
        "deadjob1",
        &member,
        Some("dead"),
    )
    .await;
    let inspect = Inspector::new(&client);

    // Found as Sidekiq's API names it: by score and jid, the score a listing gave.
    let listed = inspect.set_page(JobSet::Dead, Page::first()).await.unwrap();
    let at = listed.items[0].at;
    let jid = JobId::parse("deadjob1").unwrap();
    let entry = inspect
        .set_entry(JobSet::Dead, at, &jid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.entry.raw(), member.as_bytes());
    let other = JobId::parse("otherjob").unwrap();
    assert!(
        inspect
            .set_entry(JobSet::Dead, at, &other)
            .await
            .unwrap()
            .is_none()
    );

    let acted = inspect
        .retry_now(JobSet::Dead, entry.entry.raw())
        .await
        .unwrap();
    assert_eq!(acted, Acted::Done);
    let queued = lrange(&mut conn, &keys.queue("mail")).await;
    assert_eq!(queued.len(), 1);
    assert!(
        queued[0].starts_with(&member[..member.len() - 1]),
        "{}",
        queued[0]
    );
    assert!(queued[0].contains("\"enqueued_at\":"), "{}", queued[0]);
    let card: i64 = cmd(&mut conn, &["ZCARD", &keys.dead()]).await;
    assert_eq!(card, 0);
    let queues: Vec<String> = cmd(&mut conn, &["SMEMBERS", &keys.queues()]).await;
    assert_eq!(queues, vec!["mail".to_owned()]);
    let record = hgetall(&mut conn, &keys.status("deadjob1")).await;
    assert_eq!(record["state"], "queued");
    assert_eq!(record["rev"], "4");
    assert!(!record.contains_key("finished_at") && !record.contains_key("run_at"));
    let ttl: i64 = cmd(&mut conn, &["TTL", &keys.status("deadjob1")]).await;
    assert!(
        ttl > 60,
        "a queued record lives as long as a waiting job's: {ttl}"
    );
    let status = client.status(&jid).await.unwrap().unwrap();
    assert_eq!(status.state, JobState::Queued);

    // Already gone: nothing changes.
    let again = inspect
        .retry_now(JobSet::Dead, member.as_bytes())
        .await
        .unwrap();
    assert_eq!(again, Acted::Gone);
    assert_eq!(lrange(&mut conn, &keys.queue("mail")).await.len(), 1);
}

#[tokio::test]
async fn retry_now_of_a_scheduled_job_and_of_a_cancelled_one() {
    let redis = TestRedis::start();
    let (client, mut conn) = setup(&redis, "retry_now_scheduled").await;
    let keys = client.keys().clone();
    let inspect = Inspector::new(&client);
    let later = client
        .enqueue_in(&Greet::new("a"), std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    let dropped = client
        .enqueue_in(&Greet::new("b"), std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(client.cancel(&dropped).await.unwrap());
    let page = inspect
        .set_page(JobSet::Schedule, Page::first())
        .await
        .unwrap();
    for item in &page.items {
        let id = &item.entry.job().unwrap().jid;
        let acted = inspect
            .retry_now(JobSet::Schedule, item.entry.raw())
            .await
            .unwrap();
        if *id == later {
            assert_eq!(acted, Acted::Done);
        } else {
            assert_eq!(acted, Acted::Cancelled);
        }
    }
    assert_eq!(lrange(&mut conn, &keys.queue("default")).await.len(), 1);
    assert_eq!(inspect.set_size(JobSet::Schedule).await.unwrap(), 0);
    let s = client.status(&later).await.unwrap().unwrap();
    assert_eq!((s.state, s.rev), (JobState::Queued, 2));
    // The cancelled record keeps its state and now gets the finished retention.
    let s = client.status(&dropped).await.unwrap().unwrap();
    assert_eq!(s.state, JobState::Cancelled);
    let ttl: i64 = cmd(&mut conn, &["TTL", &keys.status(dropped.as_str())]).await;
    assert!((1..=FINISHED_TTL).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn kill_moves_a_retry_to_dead_and_its_record_says_dead() {
    let redis = TestRedis::start();
    let (client, mut conn) = setup(&redis, "kill_retry").await;
    let keys = client.keys().clone();
    let inspect = Inspector::new(&client);
    let member = failed_job("retryjob1", "default");
    plant(
        &mut conn,
        &client,
        JobSet::Retry,
        "4000000000",
        "retryjob1",
        &member,
        Some("retrying"),
    )
    .await;

    let before = inspect.redis_now().await.unwrap().as_secs_f64();
    assert_eq!(
        inspect
            .kill(JobSet::Retry, member.as_bytes())
            .await
            .unwrap(),
        Acted::Done
    );
    let dead: Vec<(String, f64)> = cmd(
        &mut conn,
        &["ZRANGE", &keys.dead(), "0", "-1", "WITHSCORES"],
    )
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, member, "kept byte for byte");
    assert!(
        dead[0].1 >= before && dead[0].1 < before + 5.0,
        "{}",
        dead[0].1
    );
    assert_eq!(inspect.set_size(JobSet::Retry).await.unwrap(), 0);
    let record = hgetall(&mut conn, &keys.status("retryjob1")).await;
    assert_eq!(record["state"], "dead");
    assert_eq!(record["rev"], "4");
    assert!(!record.contains_key("run_at"));
    let ttl: i64 = cmd(&mut conn, &["TTL", &keys.status("retryjob1")]).await;
    assert!(ttl > 60 && ttl <= FINISHED_TTL, "{ttl}");

    assert_eq!(
        inspect
            .kill(JobSet::Retry, member.as_bytes())
            .await
            .unwrap(),
        Acted::Gone
    );
    assert_eq!(
        inspect.kill(JobSet::Dead, member.as_bytes()).await.unwrap(),
        Acted::Done
    );
    assert_eq!(
        inspect.kill(JobSet::Retry, b"not json").await.unwrap(),
        Acted::NotAJob
    );
}

#[tokio::test]
async fn delete_removes_the_entry_and_the_record_that_describes_it() {
    let redis = TestRedis::start();
    let (client, mut conn) = setup(&redis, "delete_entry").await;
    let keys = client.keys().clone();
    let inspect = Inspector::new(&client);
    let gone = failed_job("deljob1", "default");
    let elsewhere = failed_job("deljob2", "default");
    plant(
        &mut conn,
        &client,
        JobSet::Retry,
        "4000000000",
        "deljob1",
        &gone,
        Some("retrying"),
    )
    .await;
    // A record that says running belongs to a copy of the job that runs now: it stays.
    plant(
        &mut conn,
        &client,
        JobSet::Retry,
        "4000000001",
        "deljob2",
        &elsewhere,
        Some("running"),
    )
    .await;

    assert_eq!(
        inspect
            .delete(JobSet::Retry, gone.as_bytes())
            .await
            .unwrap(),
        Acted::Done
    );
    assert!(!exists(&mut conn, &keys.status("deljob1")).await);
    assert!(
        client
            .status(&JobId::parse("deljob1").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        inspect
            .delete(JobSet::Retry, elsewhere.as_bytes())
            .await
            .unwrap(),
        Acted::Done
    );
    assert_eq!(
        hgetall(&mut conn, &keys.status("deljob2")).await["state"],
        "running"
    );
    assert_eq!(inspect.set_size(JobSet::Retry).await.unwrap(), 0);
    assert_eq!(
        inspect
            .delete(JobSet::Retry, gone.as_bytes())
            .await
            .unwrap(),
        Acted::Gone
    );

    // A malformed entry is deleted like any other.
    let _: i64 = cmd(&mut conn, &["ZADD", &keys.dead(), "1", "not json"]).await;
    assert_eq!(
        inspect.delete(JobSet::Dead, b"not json").await.unwrap(),
        Acted::Done
    );
    assert_eq!(inspect.set_size(JobSet::Dead).await.unwrap(), 0);
}

#[tokio::test]
async fn keys_of_another_type_are_refused_or_stepped_over() {
    let redis = TestRedis::start();
    let (client, mut conn) = setup(&redis, "manage_wrong_type").await;
    let keys = client.keys().clone();
    let inspect = Inspector::new(&client);
    let member = failed_job("wrongtype1", "blocked");

    // The set itself holds a string: every verb refuses, nothing is written.
    let _: () = cmd(&mut conn, &["SET", &keys.retry(), "x"]).await;
    for result in [
        inspect.retry_now(JobSet::Retry, member.as_bytes()).await,
        inspect.kill(JobSet::Retry, member.as_bytes()).await,
        inspect.delete(JobSet::Retry, member.as_bytes()).await,
    ] {
        assert!(
            matches!(result, Err(Error::WrongType { ref key, .. }) if *key == keys.retry()),
            "{result:?}"
        );
    }
    let _: i64 = cmd(&mut conn, &["DEL", &keys.retry()]).await;

    // Its queue holds a string: it stays in the set.
    plant(
        &mut conn,
        &client,
        JobSet::Retry,
        "4000000000",
        "wrongtype1",
        &member,
        Some("retrying"),
    )
    .await;
    let _: () = cmd(&mut conn, &["SET", &keys.queue("blocked"), "x"]).await;
    assert_eq!(
        inspect
            .retry_now(JobSet::Retry, member.as_bytes())
            .await
            .unwrap(),
        Acted::Blocked
    );
    assert_eq!(inspect.set_size(JobSet::Retry).await.unwrap(), 1);
    assert_eq!(
        hgetall(&mut conn, &keys.status("wrongtype1")).await["state"],
        "retrying"
    );

    // The dead set holds a string: kill refuses.
    let _: () = cmd(&mut conn, &["SET", &keys.dead(), "x"]).await;
    let killed = inspect.kill(JobSet::Retry, member.as_bytes()).await;
    assert!(
        matches!(killed, Err(Error::WrongType { ref key, .. }) if *key == keys.dead()),
        "{killed:?}"
    );
    assert_eq!(inspect.set_size(JobSet::Retry).await.unwrap(), 1);

    // The status key holds a string: it is left alone and the job still moves.
    let _: i64 = cmd(&mut conn, &["DEL", &keys.dead(), &keys.queue("blocked")]).await;
    let _: i64 = cmd(&mut conn, &["DEL", &keys.status("wrongtype1")]).await;
    let _: () = cmd(&mut conn, &["SET", &keys.status("wrongtype1"), "x"]).await;
    assert_eq!(
        inspect
            .kill(JobSet::Retry, member.as_bytes())
            .await
            .unwrap(),
        Acted::Done
    );
    assert_eq!(inspect.set_size(JobSet::Dead).await.unwrap(), 1);
    let kept: String = cmd(&mut conn, &["GET", &keys.status("wrongtype1")]).await;
    assert_eq!(kept, "x");

    // The paused set holds a list.
    let _: i64 = cmd(&mut conn, &["LPUSH", &keys.paused(), "x"]).await;
    let paused = inspect.pause("default").await;
    assert!(
        matches!(paused, Err(Error::WrongType { ref key, .. }) if *key == keys.paused()),
        "{paused:?}"
    );
}

#[tokio::test]
async fn retry_all_and_clear_go_in_bounded_batches() {
    let redis = TestRedis::start();
    let (client, mut conn) = setup(&redis, "retry_all_clear").await;
    let keys = client.keys().clone();
    let inspect = Inspector::new(&client);
    let n = MANAGE_BATCH * 2 + 50;
    for i in 0..n {
        let jid = format!("bulk{i}");
        let state = (i % 2 == 0).then_some("dead");
        plant(
            &mut conn,
            &client,
            JobSet::Dead,
            &i.to_string(),
            &jid,
            &failed_job(&jid, "bulk"),
            state,
        )
        .await;
    }
    // Not a job (left in the set), and a job whose queue holds another type (left too).
    let _: i64 = cmd(&mut conn, &["ZADD", &keys.dead(), "0.5", "not json"]).await;
    plant(
        &mut conn,
        &client,
        JobSet::Dead,
        "0.7",
        "stuck1",
        &failed_job("stuck1", "stuck"),
        None,
    )
    .await;
    let _: () = cmd(&mut conn, &["SET", &keys.queue("stuck"), "x"]).await;

    let report = inspect.retry_all(JobSet::Dead).await.unwrap();
    assert_eq!(
        report,
        BatchReport {
            done: n as u64,
            cancelled: 0,
            left: 2
        }
    );
    let len: usize = cmd(&mut conn, &["LLEN", &keys.queue("bulk")]).await;
    assert_eq!(len, n);
    assert_eq!(
        hgetall(&mut conn, &keys.status("bulk0")).await["state"],
        "queued"
    );
    assert_eq!(inspect.set_size(JobSet::Dead).await.unwrap(), 2);

    for i in 0..n {
        let jid = format!("sched{i}");
        plant(
            &mut conn,
            &client,
            JobSet::Schedule,
            &i.to_string(),
            &jid,
            &failed_job(&jid, "bulk"),
            Some("scheduled"),
        )
        .await;
    }
    let report = inspect.clear(JobSet::Schedule).await.unwrap();
    assert_eq!(report.done, n as u64);
    assert_eq!(inspect.set_size(JobSet::Schedule).await.unwrap(), 0);
    assert!(!exists(&mut conn, &keys.status("sched0")).await);
    let report = inspect.clear(JobSet::Dead).await.unwrap();
    assert_eq!(report.done, 2);
    assert_eq!(
        inspect.clear(JobSet::Dead).await.unwrap(),
        BatchReport::default()
    );
}

#[tokio::test]
async fn pause_and_resume_are_stored_and_announced() {
    let redis = TestRedis::start();
    let (client, mut conn) = setup(&redis, "pause_resume").await;
    let keys = client.keys().clone();
    let inspect = Inspector::new(&client);
    let mut notices = client.wake_ups().await.unwrap();

    assert!(inspect.pause("mail").await.unwrap());
    assert!(!inspect.pause("mail").await.unwrap(), "already paused");
    assert_eq!(inspect.paused().await.unwrap(), vec!["mail".to_owned()]);
    let members: Vec<String> = cmd(&mut conn, &["SMEMBERS", &keys.paused()]).await;
    assert_eq!(members, vec!["mail".to_owned()]);
    use futures_util::StreamExt;
    let notice = tokio::time::timeout(common::DEADLINE, notices.next())
        .await
        .unwrap();
    assert_eq!(notice.as_deref(), Some(queue_core::scripts::PAUSED_CHANGED));

    assert!(inspect.resume("mail").await.unwrap());
    assert!(!inspect.resume("mail").await.unwrap());
    assert!(inspect.paused().await.unwrap().is_empty());
    assert!(matches!(
        inspect.pause("bad name").await,
        Err(Error::InvalidQueueName(_))
    ));
}

#[tokio::test]
async fn each_verb_announces_a_watched_record() {
    use futures_util::StreamExt;
    let redis = TestRedis::start();
    let (client, mut conn) = setup(&redis, "manage_announce").await;
    let inspect = Inspector::new(&client);
    let mut changes = std::pin::pin!(client.status_changes().await.unwrap());
    let wait = std::time::Duration::from_secs(20);
    let (a, b, c) = ("announce1", "announce2", "announce3");
    for jid in [a, b, c] {
        plant(
            &mut conn,
            &client,
            JobSet::Retry,
            "4000000000",
            jid,
            &failed_job(jid, "default"),
            Some("retrying"),
        )
        .await;
        assert!(
            queue_core::scripts::watch(&client, jid, wait)
                .await
                .unwrap()
                .is_some()
        );
    }
    let mut next = async || {
        let change = tokio::time::timeout(common::DEADLINE, changes.next())
            .await
            .unwrap()
            .unwrap();
        (change.job.as_str().to_owned(), change.rev)
    };
    inspect
        .retry_now(JobSet::Retry, failed_job(a, "default").as_bytes())
        .await
        .unwrap();
    assert_eq!(next().await, (a.to_owned(), 4));
    inspect
        .kill(JobSet::Retry, failed_job(b, "default").as_bytes())
        .await
        .unwrap();
    assert_eq!(next().await, (b.to_owned(), 4));
    inspect
        .delete(JobSet::Retry, failed_job(c, "default").as_bytes())
        .await
        .unwrap();
    assert_eq!(next().await, (c.to_owned(), 4));
}

#[tokio::test]
async fn killing_a_unique_job_gives_its_key_back_deleting_keeps_it() {
    use queue_core::{EnqueueOptions, Unique};
    use std::time::Duration;
    let redis = TestRedis::start();
    let (client, mut conn) = setup(&redis, "manage_unique").await;
    let keys = client.keys().clone();
    let inspect = Inspector::new(&client);
    let unique = || Unique::until_succeeded(Duration::from_secs(3600));
    for (verb, key) in [("kill", "killed"), ("delete", "deleted")] {
        let options = || {
            EnqueueOptions::new()
                .delay(Duration::from_secs(3600))
                .unique_by(key, unique())
        };
        let first = client
            .enqueue_with(&Greet::new("x"), options())
            .await
            .unwrap();
        let members: Vec<Vec<u8>> = cmd(&mut conn, &["ZRANGE", &keys.schedule(), "0", "-1"]).await;
        let raw = members
            .iter()
            .find(|m| String::from_utf8_lossy(m).contains(first.as_str()))
            .unwrap();
        let acted = if verb == "kill" {
            inspect.kill(JobSet::Schedule, raw).await.unwrap()
        } else {
            inspect.delete(JobSet::Schedule, raw).await.unwrap()
        };
        assert_eq!(acted, Acted::Done);
        let second = client
            .enqueue_with(&Greet::new("x"), options())
            .await
            .unwrap();
        if verb == "kill" {
            // A death releases every lifetime: an equal enqueue must not get the dead job's id.
            assert_ne!(
                second, first,
                "after kill, the key still named the dead job"
            );
        } else {
            // Documented (as Sidekiq Enterprise): a delete keeps the key until its TTL.
            assert_eq!(second, first);
        }
    }
}
