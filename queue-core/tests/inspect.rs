//! `queue_core::inspect` against a real Redis: every reader, paging edges, malformed
//! entries, empty keys. (Agreement with Sidekiq's Ruby API is in `sidekiq_interop.rs`.)

mod common;

use common::{Add, Greet, cmd, fill_to_out_of_memory, lpush, raw, redis_time};
use queue_core::inspect::{
    Entry, Info, Inspector, JobSet, Location, MAX_PAGE_SIZE, MAX_STATUS_PER_ROUND_TRIP, Page,
    StatusRev,
};
use queue_core::testing::TestRedis;
use queue_core::{Client, EnqueueOptions, Error, JobId, NewJob, Timestamp};
use serde_json::json;
use std::time::Duration;

async fn client(redis: &TestRedis, test: &str) -> Client {
    Client::connect(redis.config(test)).await.unwrap()
}

/// Sidekiq job JSON with `jid`, in `queue`, with extra fields merged in.
fn job(jid: &str, queue: &str, extra: serde_json::Value) -> String {
    let mut j = json!({"jid": jid, "class": "Legacy", "args": [jid], "queue": queue});
    if let (Some(j), Some(extra)) = (j.as_object_mut(), extra.as_object()) {
        j.extend(extra.clone());
    }
    j.to_string()
}

/// The jids of a listing, `"!"` for a malformed entry.
fn jids<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Vec<String> {
    entries
        .into_iter()
        .map(|e| {
            e.job()
                .map_or("!".to_owned(), |j| j.jid.as_str().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn queues_sizes_and_latency_in_both_sidekiq_units() {
    let redis = TestRedis::start();
    let client = client(&redis, "queues_sizes_and_latency").await;
    let k = client.keys().clone();
    let mut conn = raw(&redis).await;
    let inspect = Inspector::new(&client);

    let before = redis_time(&mut conn).await;
    client
        .enqueue_with(&Greet::new("a"), EnqueueOptions::new().queue("mail"))
        .await
        .unwrap();
    client
        .enqueue_with(&Greet::new("b"), EnqueueOptions::new().queue("mail"))
        .await
        .unwrap();
    let now = redis_time(&mut conn).await;
    // Sidekiq 6/7: float seconds, enqueued_at preferred over created_at.
    let old = job(
        "old1",
        "old",
        json!({"created_at": now - 50.0, "enqueued_at": now - 42.5}),
    );
    // Sidekiq 8: integer milliseconds, only created_at.
    let ms = job(
        "ms1",
        "ms",
        json!({"created_at": ((now - 7.0) * 1000.0) as u64}),
    );
    let _: i64 = cmd(
        &mut conn,
        &["SADD", &k.queues(), "old", "ms", "empty", "bad"],
    )
    .await;
    lpush(&mut conn, &k.queue("old"), &[old]).await;
    lpush(&mut conn, &k.queue("ms"), &[ms]).await;
    // The oldest entry of `bad` is not JSON: its latency reads 0, the listing does not fail.
    lpush(&mut conn, &k.queue("bad"), &["{oops".to_owned()]).await;

    let queues = inspect.queues().await.unwrap();
    let after = redis_time(&mut conn).await;
    let names: Vec<&str> = queues.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(
        names,
        ["bad", "empty", "mail", "ms", "old"],
        "sorted by name"
    );
    let sizes: Vec<u64> = queues.iter().map(|q| q.size).collect();
    assert_eq!(sizes, [1, 0, 2, 1, 1]);
    let latency = |name: &str| {
        queues
            .iter()
            .find(|q| q.name == name)
            .unwrap()
            .latency
            .as_secs_f64()
    };
    assert_eq!(latency("bad"), 0.0);
    assert_eq!(latency("empty"), 0.0);
    assert!(
        (0.0..=after - before).contains(&latency("mail")),
        "{queues:?}"
    );
    let slack = after - now;
    assert!(
        (42.5..=42.5 + slack + 0.001).contains(&latency("old")),
        "{queues:?}"
    );
    assert!(
        (7.0..=7.0 + slack + 0.01).contains(&latency("ms")),
        "{queues:?}"
    );

    let old = inspect.queue("old").await.unwrap();
    assert_eq!((old.name.as_str(), old.size), ("old", 1));
    assert!(old.latency >= Duration::from_secs_f64(42.5), "{old:?}");
    let missing = inspect.queue("never-used").await.unwrap();
    assert_eq!((missing.size, missing.latency), (0, Duration::ZERO));
}

#[tokio::test]
async fn queue_pages_are_newest_first_with_clean_edges() {
    let redis = TestRedis::start();
    let client = client(&redis, "queue_pages_are_newest_first").await;
    let k = client.keys().clone();
    let mut conn = raw(&redis).await;
    let inspect = Inspector::new(&client);
    // Pushed j0 first, so j0 is the oldest, at the tail.
    let pushed: Vec<String> = (0..7)
        .map(|i| job(&format!("j{i}"), "q", json!({})))
        .collect();
    for p in &pushed {
        lpush(&mut conn, &k.queue("q"), std::slice::from_ref(p)).await;
    }

    let first = inspect.queue_page("q", Page::new(0, 3)).await.unwrap();
    assert_eq!(jids(&first.items), ["j6", "j5", "j4"]);
    assert_eq!(first.total, 7);
    assert!(first.has_more());
    assert_eq!(first.items[0].raw(), pushed[6].as_bytes());
    let second = inspect.queue_page("q", Page::new(1, 3)).await.unwrap();
    assert_eq!(jids(&second.items), ["j3", "j2", "j1"]);
    assert!(second.has_more());
    let last = inspect.queue_page("q", Page::new(2, 3)).await.unwrap();
    assert_eq!(jids(&last.items), ["j0"]);
    assert!(!last.has_more());
    let past = inspect.queue_page("q", Page::new(3, 3)).await.unwrap();
    assert!(past.items.is_empty());
    assert_eq!(past.total, 7);
    assert!(!past.has_more());
    let far = inspect
        .queue_page("q", Page::new(u32::MAX, MAX_PAGE_SIZE))
        .await
        .unwrap();
    assert!(far.items.is_empty());
    // Exactly one full page: nothing more.
    let all = inspect.queue_page("q", Page::new(0, 7)).await.unwrap();
    assert_eq!(all.items.len(), 7);
    assert!(!all.has_more());
    // A page of size 0 is a page of 1.
    let one = inspect.queue_page("q", Page::new(0, 0)).await.unwrap();
    assert_eq!(jids(&one.items), ["j6"]);

    let empty = inspect.queue_page("nothing", Page::first()).await.unwrap();
    assert!(empty.items.is_empty());
    assert_eq!(empty.total, 0);
}

#[tokio::test]
async fn malformed_entries_come_back_raw() {
    let redis = TestRedis::start();
    let client = client(&redis, "malformed_entries_come_back_raw").await;
    let k = client.keys().clone();
    let mut conn = raw(&redis).await;
    let inspect = Inspector::new(&client);
    let good = job("good1", "q", json!({}));
    let no_class = r#"{"jid":"x1","args":[]}"#.to_owned();
    lpush(
        &mut conn,
        &k.queue("q"),
        &[good.clone(), "not json".to_owned(), no_class.clone()],
    )
    .await;
    // Bytes that are not UTF-8 either.
    let _: i64 = redis::cmd("LPUSH")
        .arg(k.queue("q"))
        .arg(&[0xff_u8, 0xfe, 0x00][..])
        .query_async(&mut conn)
        .await
        .unwrap();

    let page = inspect.queue_page("q", Page::first()).await.unwrap();
    assert_eq!(jids(&page.items), ["!", "!", "!", "good1"]);
    let raws: Vec<&[u8]> = page.items.iter().map(Entry::raw).collect();
    assert_eq!(
        raws,
        [
            &[0xff_u8, 0xfe, 0x00][..],
            no_class.as_bytes(),
            b"not json",
            good.as_bytes()
        ]
    );
    match &page.items[2] {
        Entry::Malformed(m) => {
            assert_eq!(m.raw, b"not json");
            assert!(!m.reason.is_empty());
        }
        other => panic!("{other:?}"),
    }

    let _: i64 = cmd(&mut conn, &["ZADD", &k.dead(), "5", "garbage", "6", &good]).await;
    let dead = inspect.set_page(JobSet::Dead, Page::first()).await.unwrap();
    let dead_jids = jids(dead.items.iter().map(|e| &e.entry));
    assert_eq!(dead_jids, ["good1", "!"]);
    assert_eq!(dead.items[1].entry.raw(), b"garbage");
    assert_eq!(dead.items[1].at, Timestamp::from_secs_f64(5.0));
}

#[tokio::test]
async fn sets_are_listed_highest_score_first_with_their_times() {
    let redis = TestRedis::start();
    let client = client(&redis, "sets_are_listed_highest_score_first").await;
    let k = client.keys().clone();
    let mut conn = raw(&redis).await;
    let inspect = Inspector::new(&client);
    for (i, score) in ["1760000001.5", "1760000003", "1760000002.25"]
        .iter()
        .enumerate()
    {
        let member = job(&format!("r{i}"), "q", json!({"retry_count": i}));
        let _: i64 = cmd(&mut conn, &["ZADD", &k.retry(), score, &member]).await;
    }
    let scheduled = client
        .enqueue_in(&Add(1, 2), Duration::from_secs(3600))
        .await
        .unwrap();

    assert_eq!(inspect.set_size(JobSet::Retry).await.unwrap(), 3);
    assert_eq!(inspect.set_size(JobSet::Schedule).await.unwrap(), 1);
    assert_eq!(inspect.set_size(JobSet::Dead).await.unwrap(), 0);

    let page = inspect
        .set_page(JobSet::Retry, Page::new(0, 2))
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(jids(page.items.iter().map(|e| &e.entry)), ["r1", "r2"]);
    let times: Vec<f64> = page.items.iter().map(|e| e.at.as_secs_f64()).collect();
    assert_eq!(times, [1_760_000_003.0, 1_760_000_002.25]);
    assert!(page.has_more());
    let rest = inspect
        .set_page(JobSet::Retry, Page::new(1, 2))
        .await
        .unwrap();
    assert_eq!(jids(rest.items.iter().map(|e| &e.entry)), ["r0"]);
    assert_eq!(rest.items[0].at.as_secs_f64(), 1_760_000_001.5);
    assert!(!rest.has_more());

    let now = redis_time(&mut conn).await;
    let sched = inspect
        .set_page(JobSet::Schedule, Page::first())
        .await
        .unwrap();
    assert_eq!(sched.items.len(), 1);
    let job = sched.items[0].entry.job().unwrap();
    assert_eq!(job.jid, scheduled);
    let at = sched.items[0].at.as_secs_f64();
    assert!((now + 3590.0..=now + 3600.0).contains(&at), "{at} vs {now}");

    let dead = inspect.set_page(JobSet::Dead, Page::first()).await.unwrap();
    assert!(dead.items.is_empty());
    assert_eq!(dead.total, 0);
    assert!(!dead.has_more());
}

#[tokio::test]
async fn processes_with_busy_counts_and_in_flight_lists() {
    let redis = TestRedis::start();
    let client = client(&redis, "processes_with_busy_counts").await;
    let k = client.keys().clone();
    let mut conn = raw(&redis).await;
    let inspect = Inspector::new(&client);
    let info = json!({"hostname": "worker.1", "pid": 2, "concurrency": 10, "queues": ["default"]});
    let _: i64 = cmd(
        &mut conn,
        &[
            "SADD",
            &k.processes(),
            "worker.1:2:b",
            "web.1:1:a",
            "gone.1:3:c",
            "odd:4:d",
        ],
    )
    .await;
    let _: i64 = cmd(
        &mut conn,
        &[
            "HSET",
            &k.process("worker.1:2:b"),
            "info",
            &info.to_string(),
            "busy",
            "5",
            "beat",
            "1760000000.5",
            "quiet",
            "true",
            "rss",
            "2048",
        ],
    )
    .await;
    let _: i64 = cmd(
        &mut conn,
        &["HSET", &k.process("web.1:1:a"), "busy", "0", "beat", "1"],
    )
    .await;
    let _: i64 = cmd(
        &mut conn,
        &[
            "HSET",
            &k.process("odd:4:d"),
            "info",
            "{not json",
            "busy",
            "many",
            "beat",
            "x",
        ],
    )
    .await;
    // gone.1:3:c has no hash any more: it died without unregistering.

    let procs = inspect.processes().await.unwrap();
    let ids: Vec<&str> = procs.iter().map(|p| p.identity.as_str()).collect();
    assert_eq!(
        ids,
        ["odd:4:d", "web.1:1:a", "worker.1:2:b"],
        "sorted, the gone one left out"
    );
    let worker = &procs[2];
    assert_eq!(worker.busy, 5);
    assert_eq!(worker.beat, Some(Timestamp::from_secs_f64(1_760_000_000.5)));
    assert!(worker.quiet);
    assert_eq!(worker.rss_kib, 2048);
    match &worker.info {
        Info::Json(map) => assert_eq!(map["concurrency"], 10),
        other => panic!("{other:?}"),
    }
    assert_eq!(procs[1].info, Info::Absent);
    assert!(!procs[1].quiet);
    let odd = &procs[0];
    assert!(
        matches!(&odd.info, Info::Malformed(m) if m.raw == b"{not json"),
        "{odd:?}"
    );
    assert_eq!((odd.busy, odd.beat), (0, None));

    let stats = inspect.stats().await.unwrap();
    assert_eq!(stats.busy, 5);

    // In flight: fetched oldest first with LPUSH, so the newest fetch heads the list.
    let fetched: Vec<String> = (0..3)
        .map(|i| job(&format!("f{i}"), "q", json!({})))
        .collect();
    for f in &fetched {
        lpush(
            &mut conn,
            &k.processing("worker.1:2:b"),
            std::slice::from_ref(f),
        )
        .await;
    }
    let page = inspect
        .in_flight("worker.1:2:b", Page::new(0, 2))
        .await
        .unwrap();
    assert_eq!(jids(&page.items), ["f2", "f1"]);
    assert_eq!(page.total, 3);
    let page = inspect
        .in_flight("worker.1:2:b", Page::new(1, 2))
        .await
        .unwrap();
    assert_eq!(jids(&page.items), ["f0"]);
    let none = inspect.in_flight("web.1:1:a", Page::first()).await.unwrap();
    assert!(none.items.is_empty());
}

#[tokio::test]
async fn history_by_day_newest_first() {
    let redis = TestRedis::start();
    let client = client(&redis, "history_by_day_newest_first").await;
    let k = client.keys().clone();
    let mut conn = raw(&redis).await;
    let inspect = Inspector::new(&client);
    for (key, value) in [
        (k.stat_processed_on("2024-03-01"), "10"),
        (k.stat_failed_on("2024-03-01"), "2"),
        (k.stat_processed_on("2024-02-28"), "7"),
        (k.stat_processed_on("2024-02-26"), "99"),
    ] {
        let _: () = cmd(&mut conn, &["SET", &key, value]).await;
    }
    // 2024-03-01 12:00 UTC, a leap year: the day before is 02-29.
    let end = Timestamp::from_secs_f64(1_709_294_400.0);
    let days = inspect.history(3, end).await.unwrap();
    let got: Vec<(&str, u64, u64)> = days
        .iter()
        .map(|d| (d.day.as_str(), d.processed, d.failed))
        .collect();
    assert_eq!(
        got,
        [
            ("2024-03-01", 10, 2),
            ("2024-02-29", 0, 0),
            ("2024-02-28", 7, 0)
        ]
    );
    assert!(inspect.history(0, end).await.unwrap().is_empty());

    let _: () = cmd(&mut conn, &["SET", &k.stat_failed_on("2024-02-29"), "lots"]).await;
    let err = inspect.history(3, end).await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedValue { key, .. } if *key == k.stat_failed_on("2024-02-29")),
        "{err:?}"
    );
}

#[tokio::test]
async fn totals_and_stats_count_everything_once() {
    let redis = TestRedis::start();
    let client = client(&redis, "totals_and_stats").await;
    let k = client.keys().clone();
    let mut conn = raw(&redis).await;
    let inspect = Inspector::new(&client);

    let empty = inspect.stats().await.unwrap();
    assert!(empty.queues.is_empty());
    assert_eq!((empty.enqueued, empty.busy), (0, 0));
    assert_eq!(empty.totals, Default::default());
    assert_eq!(empty.max_latency(), Duration::ZERO);

    let _: () = cmd(&mut conn, &["SET", &k.stat_processed(), "1234"]).await;
    let _: () = cmd(&mut conn, &["SET", &k.stat_failed(), "56"]).await;
    let _: i64 = cmd(&mut conn, &["ZADD", &k.retry(), "1", "r1", "2", "r2"]).await;
    let _: i64 = cmd(
        &mut conn,
        &["ZADD", &k.dead(), "1", "d1", "2", "d2", "3", "d3"],
    )
    .await;
    client
        .enqueue_in(&Add(1, 1), Duration::from_secs(60))
        .await
        .unwrap();
    for _ in 0..3 {
        client.enqueue(&Greet::new("x")).await.unwrap();
    }
    let mut job = NewJob::new("Urgent", vec![]);
    job.queue = "critical".into();
    client.push(job).await.unwrap();

    let t = inspect.totals().await.unwrap();
    assert_eq!(
        (t.processed, t.failed, t.retry, t.scheduled, t.dead),
        (1234, 56, 2, 1, 3)
    );
    let s = inspect.stats().await.unwrap();
    assert_eq!(s.totals, t);
    assert_eq!(s.enqueued, 4);
    let sizes: Vec<(&str, u64)> = s.queues.iter().map(|q| (q.name.as_str(), q.size)).collect();
    assert_eq!(sizes, [("critical", 1), ("default", 3)]);

    let _: () = cmd(&mut conn, &["SET", &k.stat_processed(), "-3"]).await;
    let err = inspect.totals().await.unwrap_err();
    assert!(
        matches!(&err, Error::UnexpectedValue { key, .. } if *key == k.stat_processed()),
        "{err:?}"
    );
    assert!(inspect.stats().await.is_err());
}

#[tokio::test]
async fn find_job_looks_in_sets_queues_and_in_flight_lists() {
    let redis = TestRedis::start();
    let client = client(&redis, "find_job_looks_everywhere").await;
    let k = client.keys().clone();
    let mut conn = raw(&redis).await;
    let inspect = Inspector::new(&client);

    // A queue longer than one LRANGE, with the wanted job at its oldest end.
    let deep = JobId::new();
    client
        .push({
            let mut j = NewJob::new("Deep", vec![]);
            j.options = EnqueueOptions::new().job_id(deep.clone());
            j
        })
        .await
        .unwrap();
    let filler: Vec<NewJob> = (0..2 * MAX_PAGE_SIZE + 5)
        .map(|i| NewJob::new("Filler", vec![json!(i)]))
        .collect();
    client.push_bulk(filler).await.unwrap();
    let scheduled = client
        .enqueue_in(&Add(1, 2), Duration::from_secs(60))
        .await
        .unwrap();
    let retry_member = job("retry1", "q", json!({"retry_count": 0}));
    let _: i64 = cmd(
        &mut conn,
        &["ZADD", &k.retry(), "1760000000", &retry_member],
    )
    .await;
    // A dead job whose args mention another job's id: only its own jid matches.
    let dead_member = job("dead1", "q", json!({"args": ["retry2"]}));
    let _: i64 = cmd(&mut conn, &["ZADD", &k.dead(), "1760000001", &dead_member]).await;
    let _: i64 = cmd(&mut conn, &["SADD", &k.workers(), "w:1:x"]).await;
    let running = job("running1", "default", json!({}));
    lpush(
        &mut conn,
        &k.processing("w:1:x"),
        &[running.clone(), "not json".into()],
    )
    .await;

    let found = inspect.find_job(&deep).await.unwrap().unwrap();
    assert_eq!(found.location, Location::Queue("default".into()));
    assert_eq!((found.job.class.as_str(), found.at), ("Deep", None));

    let found = inspect.find_job(&scheduled).await.unwrap().unwrap();
    assert_eq!(found.location, Location::Set(JobSet::Schedule));
    assert!(found.at.is_some());

    let id = |s: &str| JobId::parse(s).unwrap();
    let found = inspect.find_job(&id("retry1")).await.unwrap().unwrap();
    assert_eq!(found.location, Location::Set(JobSet::Retry));
    assert_eq!(found.at, Some(Timestamp::from_secs_f64(1_760_000_000.0)));
    assert_eq!(found.raw, retry_member.as_bytes());

    let found = inspect.find_job(&id("dead1")).await.unwrap().unwrap();
    assert_eq!(found.location, Location::Set(JobSet::Dead));

    let found = inspect.find_job(&id("running1")).await.unwrap().unwrap();
    assert_eq!(found.location, Location::InFlight("w:1:x".into()));
    assert_eq!(found.raw, running.as_bytes());

    assert_eq!(inspect.find_job(&id("retry2")).await.unwrap(), None);
    assert_eq!(inspect.find_job(&JobId::new()).await.unwrap(), None);
}

#[tokio::test]
async fn an_empty_redis_reads_as_empty() {
    let redis = TestRedis::start();
    let client = client(&redis, "an_empty_redis_reads_as_empty").await;
    let inspect = Inspector::new(&client);
    assert!(inspect.queues().await.unwrap().is_empty());
    assert!(inspect.processes().await.unwrap().is_empty());
    for set in JobSet::ALL {
        assert_eq!(inspect.set_size(set).await.unwrap(), 0);
        assert!(
            inspect
                .set_page(set, Page::first())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }
    let days = inspect.history(2, Timestamp::now()).await.unwrap();
    assert_eq!(days.len(), 2);
    assert!(days.iter().all(|d| d.processed == 0 && d.failed == 0));
    assert_eq!(inspect.find_job(&JobId::new()).await.unwrap(), None);
    assert!(inspect.status_revs(&[]).await.unwrap().is_empty());
    let now = inspect.redis_now().await.unwrap();
    assert!((now.as_secs_f64() - Timestamp::now().as_secs_f64()).abs() < 60.0);
}

#[tokio::test]
async fn status_revs_of_many_ids_in_order() {
    let redis = TestRedis::start();
    let client = client(&redis, "status_revs_of_many_ids").await;
    let k = client.keys().clone();
    let mut conn = raw(&redis).await;
    let inspect = Inspector::new(&client);

    let queued = client.enqueue(&Greet::new("q")).await.unwrap();
    let scheduled = client
        .enqueue_in(&Greet::new("s"), Duration::from_secs(60))
        .await
        .unwrap();
    let changed = client.enqueue(&Greet::new("c")).await.unwrap();
    let _: i64 = cmd(
        &mut conn,
        &["HSET", &k.status(changed.as_str()), "rev", "4"],
    )
    .await;
    let bad = client.enqueue(&Greet::new("b")).await.unwrap();
    let _: i64 = cmd(&mut conn, &["HSET", &k.status(bad.as_str()), "rev", "four"]).await;
    let deleted = client.enqueue(&Greet::new("d")).await.unwrap();
    let _: i64 = cmd(&mut conn, &["DEL", &k.status(deleted.as_str())]).await;

    // More ids than one pipeline takes, the known ones last, so the second pipeline's
    // answers must land in the right places.
    let mut ids: Vec<JobId> = (0..MAX_STATUS_PER_ROUND_TRIP)
        .map(|_| JobId::new())
        .collect();
    ids.extend([queued, scheduled, changed, bad, deleted]);
    let revs = inspect.status_revs(&ids).await.unwrap();
    assert_eq!(revs.len(), ids.len());
    assert!(
        revs[..MAX_STATUS_PER_ROUND_TRIP]
            .iter()
            .all(|r| *r == StatusRev::Gone)
    );
    assert_eq!(
        revs[MAX_STATUS_PER_ROUND_TRIP..],
        [
            StatusRev::Rev(1),
            StatusRev::Rev(1),
            StatusRev::Rev(4),
            // A `rev` that is not a number reads as 1, as the whole record reads it.
            StatusRev::Rev(1),
            StatusRev::Gone
        ]
    );
}

// Pages were read in MULTI, and Redis refuses every command queued in a transaction at
// maxmemory, reads too: with Redis full, the operator could not list the dead set (CLI or
// dashboard) to see what to delete, which is when they need it most.
#[tokio::test]
async fn pages_read_at_maxmemory() {
    // Sets the server's maxmemory (CONFIG SET).
    let redis = TestRedis::start_private();
    let client = Client::connect(redis.config("pages_at_maxmemory"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = raw(&redis).await;
    let job = r#"{"jid":"0123456789abcdef01234567","class":"X","args":[],"queue":"q"}"#;
    let _: i64 = cmd(&mut conn, &["ZADD", &keys.dead(), "1", job]).await;
    lpush(&mut conn, &keys.queue("q"), &[job.to_owned()]).await;
    let _: () = cmd(
        &mut conn,
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
    )
    .await;
    let _: () = cmd(&mut conn, &["CONFIG", "SET", "maxmemory", "4mb"]).await;
    fill_to_out_of_memory(&mut conn, keys.prefix()).await;

    let inspect = Inspector::new(&client);
    let dead = inspect
        .set_page(JobSet::Dead, Page::new(0, 10))
        .await
        .unwrap();
    assert_eq!((dead.total, dead.items.len()), (1, 1));
    let queued = inspect.queue_page("q", Page::new(0, 10)).await.unwrap();
    assert_eq!((queued.total, queued.items.len()), (1, 1));
    let _: () = cmd(&mut conn, &["CONFIG", "SET", "maxmemory", "0"]).await;
}
