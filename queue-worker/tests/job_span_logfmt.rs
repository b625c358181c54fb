//! The job's span in a handler's own log lines, alone in its test binary: tests that run
//! jobs on threads with no subscriber, in parallel in the same process, sometimes left the
//! span's callsite disabled for this one (it failed about 3 runs in 10 in
//! `testing_helpers.rs`).

use queue_core::testing::FakeClient;
use queue_core::{Enqueue, Job};
use queue_worker::testing::TestWorker;
use queue_worker::{Failure, JobContext, Worker};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Serialize, Deserialize)]
struct Greet(String);
impl Job for Greet {
    const NAME: &'static str = "Greet";
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);
impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_event_in_a_handler_names_its_job_in_logfmt() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .fmt_fields(queue_core::platform::LogfmtFields)
        .event_format(queue_core::platform::Logfmt)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let id = runtime.block_on(async {
        let fake = FakeClient::new();
        let builder = Worker::builder().register(|g: Greet, _ctx: JobContext| async move {
            tracing::info!(greeting = %g.0, "inside the handler");
            Ok::<_, Failure>(())
        });
        let id = fake
            .enqueue_with(
                &Greet("hello there".into()),
                queue_core::EnqueueOptions::new().queue("mail"),
            )
            .await
            .unwrap();
        TestWorker::new(builder, &fake).drain().await;
        id
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("inside the handler"))
        .unwrap();
    assert!(
        line.ends_with(&format!(
            r#"greeting="hello there" job.id={id} job.class=Greet job.queue=mail attempt=1"#
        )),
        "{line}"
    );
}
