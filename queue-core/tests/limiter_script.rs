//! `limiter_acquire.lua` through its wrapper, and the raw state it leaves.

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
