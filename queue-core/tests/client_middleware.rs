//! Client middleware and extra job fields: what reaches Redis, in which order the chain
//! runs, refusals; and the fake client, which must refuse and record what the real one does.

mod common;

use common::{Greet, lrange, raw};
use queue_core::client_middleware::{ClientMiddleware, Next, PushFuture};
use queue_core::testing::{FakeClient, TestRedis};
use queue_core::{Client, Enqueue, EnqueueOptions, Error, Job, JobPayload, NewJob};
use std::sync::{Arc, Mutex};

/// Adds `tenant` to every job and notes its name on the way in and out.
struct Stamp {
    name: &'static str,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ClientMiddleware for Stamp {
    fn push<'a>(&'a self, mut job: NewJob, next: Next<'a>) -> PushFuture<'a> {
        Box::pin(async move {
            self.seen.lock().unwrap().push(format!("{} in", self.name));
            job.options
                .extra
                .insert("tenant".into(), format!("acme-{}", self.name).into());
            let pushed = next.run(job).await;
            self.seen.lock().unwrap().push(format!("{} out", self.name));
            pushed
        })
    }
}

/// Refuses jobs for the queue `blocked`.
struct Gate;

impl ClientMiddleware for Gate {
    fn push<'a>(&'a self, job: NewJob, next: Next<'a>) -> PushFuture<'a> {
        if job.options.queue.as_deref() == Some("blocked") {
            return Box::pin(async { Err(Error::Rejected("queue blocked".into())) });
        }
        next.run(job)
    }
}

fn chain<E: Clone>(base: &E, seen: &Arc<Mutex<Vec<String>>>, add: impl Fn(&E, Stamp) -> E) -> E {
    let outer = add(
        base,
        Stamp {
            name: "outer",
            seen: Arc::clone(seen),
        },
    );
    add(
        &outer,
        Stamp {
            name: "inner",
            seen: Arc::clone(seen),
        },
    )
}

#[tokio::test]
async fn middleware_runs_outermost_first_and_its_fields_reach_the_stored_job() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("client_middleware_order"))
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stamped = chain(&client, &seen, |c, m| c.with_middleware(m)).with_middleware(Gate);

    let id = stamped.enqueue(&Greet::new("ada")).await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        ["outer in", "inner in", "inner out", "outer out"]
    );
    let mut conn = raw(&redis).await;
    let stored = lrange(&mut conn, &client.keys().queue("default")).await;
    let job = JobPayload::from_json(stored[0].as_bytes()).unwrap();
    assert_eq!(job.jid, id);
    // The inner one wrote last: it sits nearer the push.
    assert_eq!(job.extra["tenant"], "acme-inner");

    let refused = stamped
        .enqueue_with(&Greet::new("bob"), EnqueueOptions::new().queue("blocked"))
        .await;
    assert!(matches!(refused, Err(Error::Rejected(_))), "{refused:?}");
    assert!(
        lrange(&mut conn, &client.keys().queue("blocked"))
            .await
            .is_empty()
    );

    // The client it was made from has no chain.
    client.enqueue(&Greet::new("cy")).await.unwrap();
    let plain = lrange(&mut conn, &client.keys().queue("default")).await;
    assert!(
        !JobPayload::from_json(plain[0].as_bytes())
            .unwrap()
            .extra
            .contains_key("tenant")
    );
}

#[tokio::test]
async fn extra_fields_are_written_and_reserved_names_refused() {
    let redis = TestRedis::start();
    let client = Client::connect(redis.config("extra_fields")).await.unwrap();
    let opts = EnqueueOptions::new().field("traceparent", "00-abc-def-01");
    client.enqueue_with(&Greet::new("ada"), opts).await.unwrap();
    let mut conn = raw(&redis).await;
    let stored = lrange(&mut conn, &client.keys().queue("default")).await;
    let json: serde_json::Value = serde_json::from_str(&stored[0]).unwrap();
    assert_eq!(json["traceparent"], "00-abc-def-01");

    for name in ["jid", "args", "retry_count", "at"] {
        let opts = EnqueueOptions::new().field(name, 1);
        let err = client.enqueue_with(&Greet::new("x"), opts.clone()).await;
        assert!(
            matches!(&err, Err(Error::ReservedField(n)) if n == name),
            "{err:?}"
        );
        let fake = FakeClient::new();
        let err = fake.enqueue_with(&Greet::new("x"), opts).await;
        assert!(
            matches!(&err, Err(Error::ReservedField(n)) if n == name),
            "{err:?}"
        );
        assert_eq!(fake.count(), 0);
    }
    assert_eq!(
        lrange(&mut conn, &client.keys().queue("default"))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn the_fake_runs_the_same_chain_and_refuses_what_the_client_refuses() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let fake = chain(&FakeClient::new(), &seen, |c, m| c.with_middleware(m)).with_middleware(Gate);
    let id = fake.enqueue(&Greet::new("ada")).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 4);
    let jobs = fake.jobs();
    assert_eq!((jobs.len(), &jobs[0].jid), (1, &id));
    assert_eq!(jobs[0].class, Greet::NAME);
    assert_eq!(jobs[0].extra["tenant"], "acme-inner");

    let refused = fake
        .enqueue_with(&Greet::new("b"), EnqueueOptions::new().queue("blocked"))
        .await;
    assert!(matches!(refused, Err(Error::Rejected(_))));
    let bad_queue = fake
        .enqueue_with(&Greet::new("b"), EnqueueOptions::new().queue("no spaces"))
        .await;
    assert!(matches!(bad_queue, Err(Error::InvalidQueueName(_))));
    let huge = fake.enqueue(&Greet::new(&"x".repeat(300 * 1024))).await;
    assert!(matches!(huge, Err(Error::PayloadTooLarge { .. })));
    assert_eq!(fake.count(), 1);
    assert!(fake.pop().is_some());
    assert!(fake.pop().is_none());
}
