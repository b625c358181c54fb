//! Periodic entries in Redis: registration, exactly-once ticks, changed and removed entries,
//! the run-once policy, and what `inspect` lists.

use queue_core::periodic::{PeriodicDefinition, TickKind, Ticked, tick_job_id};
use queue_core::testing::TestRedis;
use queue_core::{Client, Inspector, NewJob};
use redis::AsyncCommands;

fn def(name: &str, cron: &str) -> PeriodicDefinition {
    PeriodicDefinition {
        name: name.to_owned(),
        cron: cron.to_owned(),
        tz: "UTC".to_owned(),
        missed: "skip".to_owned(),
        job: NewJob::new("Report", vec![serde_json::json!(1)]),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_tick_is_pushed_once_and_only_for_the_registered_definition() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("periodic_once"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = client.raw_connection();
    let nightly = def("nightly", "0 2 * * *");
    let digest = nightly.digest();
    let t = now() - 1;

    // Not registered yet: refused.
    let r = client
        .enqueue_tick(&nightly, &digest, t, t + 86400, TickKind::Due)
        .await
        .unwrap();
    assert_eq!(r, Ticked::NotRegistered);
    assert_eq!(
        client
            .register_periodic(std::slice::from_ref(&nightly))
            .await
            .unwrap(),
        0
    );

    let r = client
        .enqueue_tick(&nightly, &digest, t, t + 86400, TickKind::Due)
        .await
        .unwrap();
    assert!(
        matches!(r, Ticked::Pushed { late_ms } if (0..5000).contains(&late_ms)),
        "{r:?}"
    );
    for _ in 0..3 {
        let again = client
            .enqueue_tick(&nightly, &digest, t, t + 86400, TickKind::Due)
            .await
            .unwrap();
        assert_eq!(again, Ticked::AlreadyDone);
    }
    // An older tick offered late by a slow process is not pushed either.
    let older = client
        .enqueue_tick(&nightly, &digest, t - 5, t, TickKind::Due)
        .await
        .unwrap();
    assert_eq!(older, Ticked::AlreadyDone);
    // A tick ahead of Redis's clock waits.
    let early = client
        .enqueue_tick(&nightly, &digest, now() + 60, 0, TickKind::Due)
        .await
        .unwrap();
    assert_eq!(early, Ticked::Early);

    let queued: Vec<String> = conn.lrange(keys.queue("default"), 0, -1).await.unwrap();
    assert_eq!(queued.len(), 1);
    let job: serde_json::Value = serde_json::from_str(&queued[0]).unwrap();
    assert_eq!(job["jid"], tick_job_id("nightly", t).as_str());
    let state: String = conn
        .hget(keys.status(&format!("cron-nightly-{t}")), "state")
        .await
        .unwrap();
    assert_eq!(state, "queued");

    let listed = Inspector::new(&client).periodic().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "nightly");
    assert_eq!(listed[0].cron, "0 2 * * *");
    assert_eq!(listed[0].last, Some(t));
    assert_eq!(listed[0].next, Some(t + 86400));
    assert_eq!(
        listed[0].last_job_id.as_deref(),
        Some(format!("cron-nightly-{t}").as_str())
    );

    // A newer deploy changes the entry: the old definition's ticks are refused.
    let changed = def("nightly", "0 3 * * *");
    client
        .register_periodic(std::slice::from_ref(&changed))
        .await
        .unwrap();
    let stale = client
        .enqueue_tick(&nightly, &digest, t + 1, 0, TickKind::Due)
        .await
        .unwrap();
    assert_eq!(stale, Ticked::NotRegistered);
    // ... and a deploy without it removes it: nobody pushes its ticks any more.
    let other = def("hourly", "0 * * * *");
    assert_eq!(client.register_periodic(&[other]).await.unwrap(), 1);
    let gone = client
        .enqueue_tick(&changed, &changed.digest(), t + 1, 0, TickKind::Due)
        .await
        .unwrap();
    assert_eq!(gone, Ticked::NotRegistered);
    let exists: bool = conn.exists(keys.periodic_entry("nightly")).await.unwrap();
    assert!(!exists);
    let names: Vec<String> = conn.smembers(keys.periodic()).await.unwrap();
    assert_eq!(names, vec!["hourly".to_owned()]);
}

#[tokio::test]
async fn run_once_pushes_a_missed_tick_only_for_an_entry_that_ran_before() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("periodic_missed"))
        .await
        .unwrap();
    let e = PeriodicDefinition {
        missed: "once".to_owned(),
        ..def("daily", "0 0 * * *")
    };
    let d = e.digest();
    client
        .register_periodic(std::slice::from_ref(&e))
        .await
        .unwrap();
    let t = now() - 10 * 86400;
    // Never ran: nothing was missed.
    let r = client
        .enqueue_tick(&e, &d, t, 0, TickKind::Missed)
        .await
        .unwrap();
    assert_eq!(r, Ticked::AlreadyDone);
    // It ran at t; a tick missed after it is pushed once, late.
    assert!(matches!(
        client
            .enqueue_tick(&e, &d, t, 0, TickKind::Due)
            .await
            .unwrap(),
        Ticked::Pushed { .. }
    ));
    let missed = t + 5 * 86400;
    let r = client
        .enqueue_tick(&e, &d, missed, 0, TickKind::Missed)
        .await
        .unwrap();
    assert!(
        matches!(r, Ticked::Pushed { late_ms } if late_ms >= 5 * 86_400_000 - 1000),
        "{r:?}"
    );
    let r = client
        .enqueue_tick(&e, &d, missed, 0, TickKind::Missed)
        .await
        .unwrap();
    assert_eq!(r, Ticked::AlreadyDone);
}

#[tokio::test]
async fn a_bad_entry_name_is_refused_before_anything_is_written() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("periodic_name"))
        .await
        .unwrap();
    for bad in ["", "has space", &"x".repeat(41)] {
        assert!(
            client
                .register_periodic(&[def(bad, "* * * * *")])
                .await
                .is_err()
        );
    }
}

/// An offer that waited out a Redis stall arrives late by Redis's clock: under the skip
/// policy it is refused; under run-once it runs only if the tick after it is not due yet.
#[tokio::test]
async fn an_offer_that_arrives_stale_is_refused_unless_it_is_the_newest_under_run_once() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("periodic_stale"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = client.raw_connection();
    let every_second = def("fast", "* * * * * *");
    let nightly = PeriodicDefinition {
        missed: "once".to_owned(),
        ..def("nightly", "30 2 * * *")
    };
    let burst = PeriodicDefinition {
        missed: "once".to_owned(),
        ..def("burst", "* * * * * *")
    };
    client
        .register_periodic(&[every_second.clone(), nightly.clone(), burst.clone()])
        .await
        .unwrap();
    let stale_after = Some(std::time::Duration::from_secs(6));
    let t = now() - 20;
    let offer = |d: &PeriodicDefinition, tick: i64, next: i64| {
        let (client, d) = (client.clone(), d.clone());
        async move {
            client
                .enqueue_tick_shifted(&d, &d.digest(), tick, next, TickKind::Due, 0, stale_after)
                .await
                .unwrap()
        }
    };
    // Skip: 20 s late with a 6 s limit is stale; nothing is written.
    let r = offer(&every_second, t, t + 1).await;
    assert!(
        matches!(r, Ticked::Stale { late_ms } if late_ms >= 19_000),
        "{r:?}"
    );
    // Run-once: stale, and the tick after it is due too, so it is refused as well...
    let r = offer(&burst, t, t + 1).await;
    assert!(matches!(r, Ticked::Stale { .. }), "{r:?}");
    // ...but the newest one (the next tick is still ahead) runs once.
    let r = offer(&nightly, t, t + 86_400).await;
    assert!(
        matches!(r, Ticked::Pushed { late_ms } if late_ms >= 19_000),
        "{r:?}"
    );
    // On time: pushed whatever the limit.
    let r = offer(&every_second, now() - 1, now()).await;
    assert!(matches!(r, Ticked::Pushed { .. }), "{r:?}");
    let queued: Vec<String> = conn.lrange(keys.queue("default"), 0, -1).await.unwrap();
    assert_eq!(queued.len(), 2, "{queued:?}");
    let fast: std::collections::HashMap<String, String> =
        conn.hgetall(keys.periodic_entry("fast")).await.unwrap();
    assert_ne!(
        fast.get("last").map(String::as_str),
        Some(t.to_string().as_str())
    );
}

/// An entry whose `last` tick lies far ahead of Redis's clock (planted, or left by a Redis
/// clock that stepped back) used to stop firing until that time, silently: every offer read
/// "already pushed". No tick is pushed before Redis's clock reaches it, so such a `last` is
/// not this script's: the tick is pushed, the entry's `last` replaced, and the reply says so.
#[tokio::test]
async fn a_last_tick_far_in_the_future_does_not_stop_the_entry() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("periodic_future"))
        .await
        .unwrap();
    let keys = client.keys().clone();
    let mut conn = client.raw_connection();
    let every_second = def("fast", "* * * * * *");
    let nightly = PeriodicDefinition {
        missed: "once".to_owned(),
        ..def("nightly", "30 2 * * *")
    };
    client
        .register_periodic(&[every_second.clone(), nightly.clone()])
        .await
        .unwrap();
    let year_3000 = 32_503_680_000_i64;
    for name in ["fast", "nightly"] {
        let () = conn
            .hset(keys.periodic_entry(name), "last", year_3000)
            .await
            .unwrap();
    }
    let t = now() - 1;
    let r = client
        .enqueue_tick(
            &every_second,
            &every_second.digest(),
            t,
            t + 1,
            TickKind::Due,
        )
        .await
        .unwrap();
    assert!(
        matches!(r, Ticked::PushedOverFuture { last, .. } if last == year_3000),
        "{r:?}"
    );
    let last: i64 = conn
        .hget(keys.periodic_entry("fast"), "last")
        .await
        .unwrap();
    assert_eq!(last, t);
    // Exactly once still holds for the tick pushed.
    let r = client
        .enqueue_tick(
            &every_second,
            &every_second.digest(),
            t,
            t + 1,
            TickKind::Due,
        )
        .await
        .unwrap();
    assert_eq!(r, Ticked::AlreadyDone);
    // A run-once entry's missed tick: it ran before (it has a `last`), so it runs once.
    let r = client
        .enqueue_tick(&nightly, &nightly.digest(), t, t + 86_400, TickKind::Missed)
        .await
        .unwrap();
    assert!(matches!(r, Ticked::PushedOverFuture { .. }), "{r:?}");
    let queued: Vec<String> = conn.lrange(keys.queue("default"), 0, -1).await.unwrap();
    assert_eq!(queued.len(), 2, "{queued:?}");
}
