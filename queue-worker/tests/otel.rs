//! With the `otel` feature: a trace runs from an HTTP request's span, through the enqueue
//! (the job carries its `traceparent`), into the job's span; captured by the SDK's
//! in-memory exporter. Run with `cargo test -p queue-worker --features otel --test otel`.
#![cfg(feature = "otel")]

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use queue_core::otel::{PropagateTrace, TRACEPARENT};
use queue_core::testing::FakeClient;
use queue_core::{Enqueue, Job};
use queue_worker::testing::TestWorker;
use queue_worker::{Failure, JobContext, Worker};
use serde::{Deserialize, Serialize};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Serialize, Deserialize)]
struct BuildReport {
    account: u64,
}
impl Job for BuildReport {
    const NAME: &'static str = "BuildReport";
}

#[test]
fn the_jobs_span_continues_the_trace_of_the_request_that_enqueued_it() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("dynoqueue-test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fake = FakeClient::new().with_middleware(PropagateTrace);
        // What a web handler does inside tower-http's request span.
        let request = tracing::info_span!("POST /reports", http.method = "POST");
        async { fake.enqueue(&BuildReport { account: 42 }).await.unwrap() }
            .instrument(request)
            .await;
        // Outside any span there is no trace to carry.
        fake.enqueue(&BuildReport { account: 7 }).await.unwrap();
        let jobs = fake.jobs();
        assert!(
            jobs[0].extra[TRACEPARENT]
                .as_str()
                .unwrap()
                .starts_with("00-")
        );
        assert!(!jobs[1].extra.contains_key(TRACEPARENT));

        let builder = Worker::builder().register(|r: BuildReport, _ctx: JobContext| async move {
            let _inner = tracing::info_span!("render pdf").entered();
            Ok::<_, Failure>(r.account)
        });
        let drained = TestWorker::new(builder, &fake).drain().await;
        assert_eq!(drained.failures().count(), 0);
    });
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    for s in &spans {
        println!(
            "{:<14} trace={} span={} parent={}",
            s.name,
            s.span_context.trace_id(),
            s.span_context.span_id(),
            s.parent_span_id
        );
    }
    let request = spans.iter().find(|s| s.name == "POST /reports").unwrap();
    let jobs: Vec<_> = spans
        .iter()
        .filter(|s| s.name == queue_worker::JOB_SPAN)
        .collect();
    assert_eq!(jobs.len(), 2);
    let traced = jobs
        .iter()
        .find(|s| s.parent_span_id == request.span_context.span_id())
        .expect("a job span whose parent is the request span");
    assert_eq!(
        traced.span_context.trace_id(),
        request.span_context.trace_id()
    );
    assert!(
        traced
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "job.class" && kv.value.as_str() == "BuildReport")
    );
    let render = spans
        .iter()
        .find(|s| s.name == "render pdf" && s.parent_span_id == traced.span_context.span_id());
    assert!(
        render.is_some(),
        "the handler's own span sits inside the job's"
    );
    let untraced = jobs
        .iter()
        .find(|s| s.span_context.span_id() != traced.span_context.span_id())
        .unwrap();
    assert_ne!(
        untraced.span_context.trace_id(),
        request.span_context.trace_id()
    );
}
