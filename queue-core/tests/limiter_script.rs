//! `limiter_acquire.lua` through its wrapper, and the raw state it leaves.

mod common;

use queue_core::Client;
use queue_core::scripts::{Admission, LimiterKind, limiter_acquire, limiter_release};
use queue_core::testing::TestRedis;
use redis::AsyncCommands;
use std::time::Duration;

#[tokio::test]
async fn each_kind_admits_up_to_its_limit_and_says_how_long_to_wait() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("limiter_script"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = client.raw_connection();

    // Concurrent: two holders, a third refused until one gives its slot back.
    let conc = LimiterKind::Concurrent {
        limit: 2,
        lifetime: Duration::from_secs(60),
    };
    for h in ["a", "b"] {
        assert!(matches!(
            limiter_acquire(&client, "db", conc, h).await.unwrap(),
            Admission::Admitted { .. }
        ));
    }
    assert_eq!(
        limiter_acquire(&client, "db", conc, "c").await.unwrap(),
        Admission::Over(None)
    );
    // A holder asking again keeps its one slot.
    assert!(matches!(
        limiter_acquire(&client, "db", conc, "a").await.unwrap(),
        Admission::Admitted { .. }
    ));
    let held: usize = conn.zcard(keys.limiter("db")).await.unwrap();
    assert_eq!(held, 2);
    limiter_release(&client, "db", "a").await.unwrap();
    assert!(matches!(
        limiter_acquire(&client, "db", conc, "c").await.unwrap(),
        Admission::Admitted { .. }
    ));

    // Window: 3 per 10 s, then a wait of about the window.
    let win = LimiterKind::Window {
        limit: 3,
        interval: Duration::from_secs(10),
    };
    for i in 0..3 {
        assert!(matches!(
            limiter_acquire(&client, "api", win, &i.to_string())
                .await
                .unwrap(),
            Admission::Admitted { .. }
        ));
    }
    match limiter_acquire(&client, "api", win, "x").await.unwrap() {
        Admission::Over(Some(w)) => assert!(
            w > Duration::from_secs(9) && w <= Duration::from_secs(10) + Duration::from_millis(5),
            "{w:?}"
        ),
        other => panic!("{other:?}"),
    }
    let ttl: i64 = conn.pttl(keys.limiter("api")).await.unwrap();
    assert!(ttl > 10_000, "the window's key expires after it: {ttl}");

    // Bucket: 2 per 10 s, evenly: one now, the next in about 5 s.
    let bucket = LimiterKind::Bucket {
        limit: 2,
        interval: Duration::from_secs(10),
    };
    assert!(matches!(
        limiter_acquire(&client, "mail", bucket, "").await.unwrap(),
        Admission::Admitted { .. }
    ));
    match limiter_acquire(&client, "mail", bucket, "").await.unwrap() {
        Admission::Over(Some(w)) => assert!(
            w > Duration::from_millis(4900) && w <= Duration::from_secs(5),
            "{w:?}"
        ),
        other => panic!("{other:?}"),
    }

    let listed = queue_core::Inspector::new(&client)
        .limiters()
        .await
        .unwrap();
    let seen: Vec<(&str, &str, u64, u64)> = listed
        .iter()
        .map(|l| (l.name.as_str(), l.kind.as_str(), l.limit, l.in_use))
        .collect();
    assert_eq!(
        seen,
        [
            ("api", "window", 3, 3),
            ("db", "concurrent", 2, 2),
            ("mail", "bucket", 2, 1)
        ]
    );

    // A key of another type is reported, never overwritten.
    let () = conn.set(keys.limiter("odd"), "x").await.unwrap();
    assert!(limiter_acquire(&client, "odd", win, "1").await.is_err());
    let v: String = conn.get(keys.limiter("odd")).await.unwrap();
    assert_eq!(v, "x");
}

/// `slot_renew.lua`: a held slot gets a new expiry (also with Redis full), a released one is
/// not taken again, and a key of another type is skipped.
#[tokio::test]
async fn renewal_extends_held_slots_only() {
    use queue_core::scripts::{HeldSlot, SlotSet, limit_acquire, slot_renew};
    let redis =
        TestRedis::start_with_args(&["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"]);
    let client = Client::connect(redis.config("slot_renew")).await.unwrap();
    let keys = client.keys().clone();
    let mut conn = client.raw_connection();
    let short = LimiterKind::Concurrent {
        limit: 5,
        lifetime: Duration::from_secs(1),
    };
    for h in ["a", "b"] {
        limiter_acquire(&client, "db", short, h).await.unwrap();
    }
    limit_acquire(&client, "Report", "w:1", 1, Duration::from_secs(1))
        .await
        .unwrap();
    limiter_release(&client, "db", "b").await.unwrap();
    let _: () = conn.set(keys.limiter("planted"), "x").await.unwrap();
    let slot = |set: SlotSet, holder: &str| HeldSlot {
        set,
        holder: holder.to_owned(),
    };
    let slots = [
        slot(SlotSet::Limiter("db".into()), "a"),
        slot(SlotSet::Limiter("db".into()), "b"),
        slot(SlotSet::Class("Report".into()), "w:1"),
        slot(SlotSet::Limiter("planted".into()), "a"),
    ];
    let mut filler = common::raw(&redis).await;
    common::fill_to_out_of_memory(&mut filler, keys.prefix()).await;
    let renewed = slot_renew(&client, &slots, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(renewed, 2);
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64;
    let a: Option<f64> = conn.zscore(keys.limiter("db"), "a").await.unwrap();
    assert!(a.unwrap() > now_ms + 500_000.0, "{a:?}");
    let b: Option<f64> = conn.zscore(keys.limiter("db"), "b").await.unwrap();
    assert_eq!(b, None);
    let w: Option<f64> = conn
        .zscore(keys.concurrency("Report"), "w:1")
        .await
        .unwrap();
    assert!(w.unwrap() > now_ms + 500_000.0, "{w:?}");
    let planted: String = conn.get(keys.limiter("planted")).await.unwrap();
    assert_eq!(planted, "x");
}

/// State no limiter writes, planted far in the future (a slot expiring in the year 33,000,
/// a window admission or a bucket's next admission as far ahead), used to hold the limiter
/// at its limit forever: every job under it was deferred again and again. A slot expires at
/// most one lifetime (or a day) from now, an admission is scored now, a bucket is at most one
/// step ahead: anything beyond is not the limiter's and is dropped.
#[tokio::test]
async fn state_planted_far_in_the_future_does_not_hold_a_limiter_forever() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("limiter_future"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = client.raw_connection();
    let far = 1e15;

    let () = conn.zadd(keys.limiter("db"), "ghost", far).await.unwrap();
    let conc = LimiterKind::Concurrent {
        limit: 1,
        lifetime: Duration::from_secs(15),
    };
    assert!(matches!(
        limiter_acquire(&client, "db", conc, "a").await.unwrap(),
        Admission::Admitted { .. }
    ));
    // A live holder's slot, taken with a long lifetime, is not dropped.
    let long = LimiterKind::Concurrent {
        limit: 1,
        lifetime: Duration::from_secs(7200),
    };
    assert!(matches!(
        limiter_acquire(&client, "ops", long, "slow").await.unwrap(),
        Admission::Admitted { .. }
    ));
    assert_eq!(
        limiter_acquire(&client, "ops", conc, "quick")
            .await
            .unwrap(),
        Admission::Over(None)
    );

    let () = conn.zadd(keys.limiter("api"), "ghost", far).await.unwrap();
    let win = LimiterKind::Window {
        limit: 1,
        interval: Duration::from_secs(1),
    };
    assert!(matches!(
        limiter_acquire(&client, "api", win, "1").await.unwrap(),
        Admission::Admitted { .. }
    ));

    let () = conn
        .set(keys.limiter("mail"), format!("{far}"))
        .await
        .unwrap();
    let bucket = LimiterKind::Bucket {
        limit: 1,
        interval: Duration::from_secs(1),
    };
    assert!(matches!(
        limiter_acquire(&client, "mail", bucket, "").await.unwrap(),
        Admission::Admitted { .. }
    ));

    // A class's slots (`Job::CONCURRENCY_LIMIT`) likewise.
    let () = conn
        .zadd(keys.concurrency("Report"), "ghost", far)
        .await
        .unwrap();
    assert_eq!(
        queue_core::scripts::limit_acquire(&client, "Report", "r1", 1, Duration::from_secs(15))
            .await
            .unwrap(),
        queue_core::scripts::Slot::Taken
    );
}
