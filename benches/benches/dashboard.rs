//! Dashboard pages over a million entries: the dead page and a queue page, rendered
//! through the router in-process (no socket), against a `dead` set and a queue of
//! 1,000,000 jobs each.
//!
//! Run with `cargo bench -p benches --bench dashboard` (needs `redis-server` on `PATH`, or
//! `REDIS_URL`, and then only this bench's prefix is deleted). One criterion group,
//! `dashboard`:
//! - `ping_baseline`: one `PING` round trip on the shared connection, the floor of any page;
//! - `dead_page/{1,last}`: `GET /sets/dead?page=N&size=25`, the first page and the last
//!   (`ZREVRANGE` is O(log n + page), so the last costs what the first does);
//! - `queue_page/{1,100}`: `GET /queues/big?page=N&size=25` (`LRANGE` is O(offset + page)
//!   from the head, so a far page costs more; page 100 reads from index 2,475).
//!
//! Filling Redis takes a while (two million ZADD/LPUSH members, in pipelines); it is not
//! timed.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use benches::{BenchRedis, ping};
use criterion::Criterion;
use queue_core::{Client, Timestamp};
use queue_web::{DashboardAuth, dashboard_router};
use std::time::Duration;
use tower::ServiceExt;

/// Entries in the dead set and in the queue.
const ENTRIES: u64 = 1_000_000;
/// Members per ZADD / LPUSH command while filling.
const FILL_CHUNK: u64 = 1_000;
/// Commands per pipeline while filling.
const PIPELINE: u64 = 20;

fn job(i: u64, now: f64) -> String {
    serde_json::json!({
        "jid": format!("{i:032x}"), "class": "MonthlyReportJob", "args": [{"account_id": i}],
        "queue": "big", "retry": true, "retry_count": 25, "created_at": now - 3600.0,
        "enqueued_at": now - 3000.0, "failed_at": now - 60.0, "error_class": "Timeout::Error",
        "error_message": "execution expired after 30s",
        "error_backtrace": ["app/jobs/monthly_report_job.rb:12:in `perform'", "lib/report.rb:88"],
    })
    .to_string()
}

async fn fill(client: &Client) {
    let keys = client.keys();
    let now = Timestamp::now().as_secs_f64();
    let mut conn = client.raw_connection();
    let mut i = 0;
    while i < ENTRIES {
        let mut pipe = redis::pipe();
        for _ in 0..PIPELINE {
            if i >= ENTRIES {
                break;
            }
            let end = (i + FILL_CHUNK).min(ENTRIES);
            let zadd = pipe.cmd("ZADD").arg(keys.dead());
            for n in i..end {
                zadd.arg(now - n as f64).arg(job(n, now));
            }
            zadd.ignore();
            let lpush = pipe.cmd("LPUSH").arg(keys.queue("big"));
            for n in i..end {
                lpush.arg(job(n, now));
            }
            lpush.ignore();
            i = end;
        }
        pipe.query_async::<()>(&mut conn).await.expect("fill");
    }
    redis::cmd("SADD")
        .arg(keys.queues())
        .arg("big")
        .query_async::<()>(&mut conn)
        .await
        .expect("SADD");
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let redis = BenchRedis::from_env();
    let name = "dashboard";
    let client = rt.block_on(async {
        let client = Client::connect(redis.config(name)).await.expect("connect");
        redis
            .clear(&mut client.raw_connection(), &redis.prefix(name))
            .await
            .expect("clear");
        fill(&client).await;
        client
    });
    let router = dashboard_router(client.clone(), DashboardAuth::insecure_open());
    let get = |path: String| {
        let router = router.clone();
        async move {
            let response = router
                .oneshot(Request::get(path).body(Body::empty()).expect("request"))
                .await
                .expect("response");
            assert_eq!(response.status(), StatusCode::OK);
            axum::body::to_bytes(response.into_body(), 10 << 20)
                .await
                .expect("body")
        }
    };
    let last = ENTRIES.div_ceil(25);
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut group = c.benchmark_group("dashboard");
    group.bench_function("ping_baseline", |b| b.to_async(&rt).iter(|| ping(&client)));
    for (label, page) in [("1", 1), ("last", last)] {
        let path = format!("/sets/dead?page={page}&size=25");
        group.bench_function(format!("dead_page/{label}"), |b| {
            b.to_async(&rt).iter(|| get(path.clone()))
        });
    }
    for page in [1, 100] {
        let path = format!("/queues/big?page={page}&size=25");
        group.bench_function(format!("queue_page/{page}"), |b| {
            b.to_async(&rt).iter(|| get(path.clone()))
        });
    }
    group.finish();
    c.final_summary();
    rt.block_on(async {
        redis
            .clear(&mut client.raw_connection(), &redis.prefix(name))
            .await
            .expect("clear");
    });
}
