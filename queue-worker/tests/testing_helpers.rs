//! The helpers apps use in their own tests, without Redis: drain, inline, the test context;
//! and what they share with the worker: the middleware chain and the job's span.

use queue_core::client_middleware::{ClientMiddleware, Next as PushNext, PushFuture};
use queue_core::testing::FakeClient;
use queue_core::{Enqueue, Error, Job, JobPayload, NewJob};
use queue_worker::middleware::{AttemptFuture, Middleware, Next};
use queue_worker::testing::{MAX_DRAINED, TestWorker};
use queue_worker::{Failure, JobContext, Worker};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

#[derive(Serialize, Deserialize)]
struct Greet(String);
impl Job for Greet {
    const NAME: &'static str = "Greet";
}

#[derive(Serialize, Deserialize)]
struct Explode;
impl Job for Explode {
    const NAME: &'static str = "Explode";
}

#[derive(Serialize, Deserialize)]
struct Forever(u64);
impl Job for Forever {
    const NAME: &'static str = "Forever";
}

tokio::task_local! {
    static TENANT: String;
}

/// Client side: stamps the tenant of the code that enqueues.
struct StampTenant;
impl ClientMiddleware for StampTenant {
    fn push<'a>(&'a self, mut job: NewJob, next: PushNext<'a>) -> PushFuture<'a> {
        if let Ok(tenant) = TENANT.try_with(Clone::clone) {
            job.options.extra.insert("tenant".into(), tenant.into());
        }
        next.run(job)
    }
}

/// Server side: runs the attempt with the job's tenant set.
struct WithTenant;
impl Middleware for WithTenant {
    fn perform<'a>(&'a self, job: &'a JobPayload, next: Next<'a>) -> AttemptFuture<'a> {
        let tenant = job
            .extra
            .get("tenant")
            .and_then(|t| t.as_str())
            .unwrap_or("none");
        Box::pin(TENANT.scope(tenant.to_owned(), next.run()))
    }
}

/// Notes the order it runs in.
struct Note(&'static str, Arc<Mutex<Vec<String>>>);
impl Middleware for Note {
    fn perform<'a>(&'a self, _job: &'a JobPayload, next: Next<'a>) -> AttemptFuture<'a> {
        Box::pin(async move {
            self.1.lock().unwrap().push(format!("{} in", self.0));
            let out = next.run().await;
            self.1.lock().unwrap().push(format!("{} out", self.0));
            out
        })
    }
}

/// Answers for `Explode` jobs without running them.
struct Defuse;
impl Middleware for Defuse {
    fn perform<'a>(&'a self, job: &'a JobPayload, next: Next<'a>) -> AttemptFuture<'a> {
        if job.class == Explode::NAME {
            return Box::pin(async { Ok(serde_json::json!("defused")) });
        }
        next.run()
    }
}

#[tokio::test]
async fn tenant_travels_from_enqueue_to_perform_through_both_chains() {
    let fake = FakeClient::new().with_middleware(StampTenant);
    let order = Arc::new(Mutex::new(Vec::new()));
    let builder = Worker::builder()
        .middleware(Note("outer", Arc::clone(&order)))
        .middleware(WithTenant)
        .middleware(Note("inner", Arc::clone(&order)))
        .register(|g: Greet, _ctx: JobContext| async move {
            Ok::<_, Failure>(format!("{} for {}", g.0, TENANT.with(Clone::clone)))
        });
    let jobs = TestWorker::new(builder, &fake);
    TENANT
        .scope("acme".into(), fake.enqueue(&Greet("hi".into())))
        .await
        .unwrap();
    assert_eq!(fake.jobs()[0].extra["tenant"], "acme");
    let drained = jobs.drain().await;
    assert_eq!(
        drained.performed[0].outcome.as_ref().unwrap(),
        "hi for acme"
    );
    assert_eq!(
        *order.lock().unwrap(),
        ["outer in", "inner in", "inner out", "outer out"]
    );
}

#[tokio::test]
async fn middleware_can_answer_for_a_job_and_panics_are_failures() {
    let ran = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&ran);
    let fake = FakeClient::new();
    let builder = Worker::builder()
        .middleware(Defuse)
        .register(move |_: Explode, _ctx: JobContext| {
            *counter.lock().unwrap() += 1;
            async { Ok::<_, Failure>(()) }
        })
        .register(|g: Greet, _ctx: JobContext| async move {
            if g.0 == "panic" {
                panic!("greeting went wrong");
            }
            Ok::<_, Failure>(())
        });
    let jobs = TestWorker::new(builder, &fake);
    fake.enqueue(&Explode).await.unwrap();
    fake.enqueue(&Greet("panic".into())).await.unwrap();
    fake.push(NewJob::new("Unknown", vec![])).await.unwrap();
    let drained = jobs.drain().await;
    assert_eq!(drained.performed[0].outcome.as_ref().unwrap(), "defused");
    assert_eq!(*ran.lock().unwrap(), 0, "the handler never ran");
    let failures: Vec<_> = drained
        .failures()
        .map(|(j, f)| (j.class.clone(), f.class().to_owned()))
        .collect();
    assert_eq!(
        failures,
        [
            ("Greet".to_owned(), "Panic".to_owned()),
            ("Unknown".to_owned(), "Error".to_owned())
        ]
    );
}

#[tokio::test]
async fn inline_runs_at_push_and_reports_a_failure_to_the_pusher() {
    let fake = FakeClient::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let builder = Worker::builder().register(move |g: Greet, _ctx: JobContext| {
        let log = Arc::clone(&log);
        async move {
            if g.0 == "bad" {
                return Err(Failure::retry("bad greeting"));
            }
            log.lock().unwrap().push(g.0);
            Ok(())
        }
    });
    let jobs = TestWorker::new(builder, &fake);
    jobs.inline();
    fake.enqueue(&Greet("now".into())).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), ["now"]);
    assert_eq!(fake.count(), 0);
    let err = fake.enqueue(&Greet("bad".into())).await.unwrap_err();
    assert!(
        matches!(&err, Error::InlineJobFailed { class, message } if class == "Greet" && message.contains("bad greeting")),
        "{err:?}"
    );
    fake.record();
    fake.enqueue(&Greet("later".into())).await.unwrap();
    assert_eq!(fake.count(), 1);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn drain_stops_a_job_that_enqueues_itself_forever() {
    let fake = FakeClient::new();
    let again = fake.clone();
    let builder = Worker::builder().register(move |f: Forever, _ctx: JobContext| {
        let again = again.clone();
        async move {
            again.enqueue(&Forever(f.0 + 1)).await?;
            Ok::<_, Failure>(())
        }
    });
    fake.enqueue(&Forever(0)).await.unwrap();
    let drained = TestWorker::new(builder, &fake).drain().await;
    assert_eq!(drained.performed.len(), MAX_DRAINED);
    assert_eq!(drained.left, 1);
}

#[tokio::test]
async fn inline_mode_stops_a_job_that_enqueues_itself_forever() {
    // Each inline push performs its job inside the pusher's poll: unbounded, this chain
    // overflows the thread's stack and aborts the whole test binary.
    let fake = FakeClient::new();
    let again = fake.clone();
    let builder = Worker::builder()
        .register(move |f: Forever, _ctx: JobContext| {
            let again = again.clone();
            async move {
                again.enqueue(&Forever(f.0 + 1)).await?;
                Ok::<_, Failure>(())
            }
        })
        .register(|_: Greet, _ctx: JobContext| async { Ok::<_, Failure>(()) });
    let jobs = TestWorker::new(builder, &fake);
    jobs.inline();
    let err = fake.enqueue(&Forever(0)).await.unwrap_err();
    assert!(err.to_string().contains("nested deeper than"), "{err}");
    // The depth unwinds with the chain: the next push runs as usual.
    fake.enqueue(&Greet("again".into())).await.unwrap();
}

#[tokio::test]
async fn a_test_context_records_progress_and_can_be_cancelled() {
    let ctx = JobContext::for_test();
    ctx.progress(30, "a").await.unwrap();
    ctx.progress(250, "x".repeat(5000)).await.unwrap();
    let progress = ctx.recorded_progress();
    assert_eq!(progress[0].percent, 30);
    assert_eq!(progress[1].percent, 100);
    assert_eq!(progress[1].message.as_ref().unwrap().len(), 1024);
    assert!(!ctx.is_cancelled());
    ctx.cancel_for_test();
    ctx.cancelled().await;
}
