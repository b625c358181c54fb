//! A real worker on a private Redis: hooks fire at their events, per-class metrics count
//! each outcome (read in-process and from the metrics listener), and every finished job
//! leaves a logfmt line with its outcome.

mod worker_in_process;

use queue_core::testing::TestRedis;
use queue_core::{EnqueueOptions, Job, JobState, Retry};
use queue_worker::middleware::{AttemptFuture, Middleware, Next};
use queue_worker::{DeadJob, Failure, JobContext, Worker};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use worker_in_process::*;

#[derive(Serialize, Deserialize)]
struct Fine;
impl Job for Fine {
    const NAME: &'static str = "Fine";
}

#[derive(Serialize, Deserialize)]
struct Doomed;
impl Job for Doomed {
    const NAME: &'static str = "Doomed";
    const RETRY: Retry = Retry::Disabled;
}

#[derive(Serialize, Deserialize)]
struct Hopeless;
impl Job for Hopeless {
    const NAME: &'static str = "Hopeless";
}

#[derive(Serialize, Deserialize)]
struct Flaky;
impl Job for Flaky {
    const NAME: &'static str = "Flaky";
}

type Events = Arc<Mutex<Vec<String>>>;

fn note(events: &Events, what: impl Into<String>) {
    events.lock().unwrap().push(what.into());
}

/// Counts attempts as middleware sees them.
struct Count(Events);
impl Middleware for Count {
    fn perform<'a>(&'a self, job: &'a queue_core::JobPayload, next: Next<'a>) -> AttemptFuture<'a> {
        note(&self.0, format!("attempt {}", job.class));
        next.run()
    }
}

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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scrape(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test]
async fn hooks_metrics_and_finished_lines_follow_each_outcome() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .fmt_fields(queue_core::platform::LogfmtFields)
        .event_format(queue_core::platform::Logfmt)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime: every task of the worker logs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let redis = TestRedis::start();
    let client = client(&redis, "observability").await;
    let events: Events = Arc::default();
    let port = free_port();
    let mut config = fast_config();
    config.metrics_addr = Some(([127, 0, 0, 1], port).into());
    let e = |events: &Events| Arc::clone(events);
    let (e1, e2, e3, e4, e5) = (e(&events), e(&events), e(&events), e(&events), e(&events));
    let worker = Worker::builder()
        .config(config)
        .middleware(Count(e(&events)))
        .on_start(move || {
            let e = e1.clone();
            async move { note(&e, "start") }
        })
        .on_quiet(move || {
            let e = e2.clone();
            async move { note(&e, "quiet") }
        })
        .on_shutdown(move || {
            let e = e3.clone();
            async move { note(&e, "shutdown") }
        })
        .on_retries_exhausted(move |dead: Arc<DeadJob>| {
            let e = e4.clone();
            async move {
                note(
                    &e,
                    format!("exhausted {} {}", dead.job.class, dead.error_message),
                )
            }
        })
        .on_death(move |dead: Arc<DeadJob>| {
            let e = e5.clone();
            async move {
                note(
                    &e,
                    format!("dead {} {}", dead.job.class, dead.retries_exhausted),
                )
            }
        })
        .register(|_: Fine, _: JobContext| async { Ok::<_, Failure>("ok") })
        .register(|_: Doomed, _: JobContext| async { Err::<(), _>(Failure::retry("no luck")) })
        .register(|_: Hopeless, _: JobContext| async { Err::<(), _>(Failure::dead("give up")) })
        .register(|_: Flaky, _: JobContext| async { Err::<(), _>(Failure::retry("later")) })
        .build(client.clone())
        .unwrap()
        .start();

    let fine = client.enqueue(&Fine).await.unwrap();
    client.enqueue(&Fine).await.unwrap();
    let doomed = client.enqueue(&Doomed).await.unwrap();
    let hopeless = client.enqueue(&Hopeless).await.unwrap();
    let flaky = client
        .enqueue_with(&Flaky, EnqueueOptions::new().retry(Retry::Max(3)))
        .await
        .unwrap();
    wait_for_state(&client, &fine, JobState::Succeeded).await;
    wait_for_state(&client, &doomed, JobState::Dead).await;
    wait_for_state(&client, &hopeless, JobState::Dead).await;
    wait_for_state(&client, &flaky, JobState::Retrying).await;
    // Death hooks run right after the dead-set write that the state shows: wait for them.
    wait_for("death hooks", Duration::from_secs(5), || async {
        (events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.starts_with("dead "))
            .count()
            == 2)
            .then_some(())
    })
    .await;

    let text = worker.metrics_text();
    for line in [
        r#"queue_worker_jobs_processed_total{class="Fine"} 2"#,
        r#"queue_worker_jobs_dead_total{class="Doomed"} 1"#,
        r#"queue_worker_jobs_dead_total{class="Hopeless"} 1"#,
        r#"queue_worker_jobs_retried_total{class="Flaky"} 1"#,
        r#"queue_worker_jobs_failed_total{class="Flaky"} 1"#,
        r#"queue_worker_job_duration_seconds_count{class="Fine"} 2"#,
        "queue_worker_jobs_in_flight 0",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }
    let scraped =
        tokio::task::spawn_blocking(move || (scrape(port, "/metrics"), scrape(port, "/")))
            .await
            .unwrap();
    assert!(
        scraped.0.starts_with("HTTP/1.1 200 OK\r\n"),
        "{}",
        scraped.0
    );
    assert!(
        scraped
            .0
            .contains(r#"queue_worker_jobs_processed_total{class="Fine"} 2"#)
    );
    assert!(scraped.1.starts_with("HTTP/1.1 404"), "{}", scraped.1);

    worker.shutdown().await.unwrap();
    let events = events.lock().unwrap().clone();
    let pos = |e: &str| {
        events
            .iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("{e} missing: {events:?}"))
    };
    assert_eq!(pos("start"), 0);
    assert!(pos("quiet") < pos("shutdown"));
    assert!(
        events.contains(&"exhausted Doomed no luck".to_owned()),
        "{events:?}"
    );
    assert!(events.contains(&"dead Doomed true".to_owned()));
    assert!(events.contains(&"dead Hopeless false".to_owned()));
    assert!(!events.iter().any(|e| e.starts_with("exhausted Hopeless")));
    assert_eq!(events.iter().filter(|e| *e == "attempt Fine").count(), 2);

    // Every attempt is counted once, on its own line or in a summary (the shutdown closes
    // the last window); the first ones of a window get their own line.
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let finished: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("target=queue_worker::finished"))
        .collect();
    let total = |key: &str| -> u64 {
        finished
            .iter()
            .flat_map(|l| l.split(' '))
            .filter_map(|p| p.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(total("count#jobs.succeeded"), 2, "{log}");
    assert_eq!(total("count#jobs.failed"), 1, "{log}");
    assert_eq!(total("count#jobs.dead"), 2, "{log}");
    let own: Vec<&&str> = finished
        .iter()
        .filter(|l| l.contains(r#"msg="job finished""#))
        .collect();
    assert_eq!(
        own.len(),
        queue_worker::finished_log::LINES_PER_WINDOW,
        "{log}"
    );
    for (id, class, outcome) in [
        (&fine, "Fine", "succeeded"),
        (&doomed, "Doomed", "dead"),
        (&hopeless, "Hopeless", "dead"),
        (&flaky, "Flaky", "failed"),
    ] {
        if let Some(line) = own.iter().find(|l| l.contains(&format!("job_id={id} "))) {
            assert!(
                line.contains(&format!("class={class} outcome={outcome} ")),
                "{line}"
            );
        }
    }
}

#[tokio::test]
async fn an_operators_quiet_runs_the_quiet_hooks_once() {
    let redis = TestRedis::start();
    let client = client(&redis, "quiet_hook").await;
    let events: Events = Arc::default();
    let e = Arc::clone(&events);
    let worker = Worker::builder()
        .config(fast_config())
        .on_quiet(move || {
            let e = e.clone();
            async move { note(&e, "quiet") }
        })
        .register(|_: Fine, _: JobContext| async { Ok::<_, Failure>(()) })
        .build(client.clone())
        .unwrap()
        .start();
    let inspect = queue_core::Inspector::new(&client);
    let identity = worker.identity();
    wait_for("the process record", Duration::from_secs(5), || async {
        let listed = inspect.processes().await.unwrap();
        listed.iter().any(|p| p.identity == identity).then_some(())
    })
    .await;
    inspect.quiet(&identity).await.unwrap();
    wait_for("the quiet hook", Duration::from_secs(5), || async {
        (!events.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    worker.shutdown().await.unwrap();
    assert_eq!(*events.lock().unwrap(), ["quiet"]);
}

/// The answer to a scrape of `port`, once the listener answers one.
fn scrape_when_up(port: u16) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let attempt = || -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        write!(s, "GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    };
    loop {
        match attempt() {
            Ok(answer) if !answer.is_empty() => return answer,
            other if std::time::Instant::now() > deadline => panic!("no answer: {other:?}"),
            _ => std::thread::yield_now(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_metrics_connections_is_turned_away_not_held() {
    let redis = TestRedis::start();
    let client = client(&redis, "metrics_flood").await;
    let port = free_port();
    let mut config = fast_config();
    config.metrics_addr = Some(([127, 0, 0, 1], port).into());
    let worker = Worker::builder()
        .config(config)
        .register(|_: Fine, _: JobContext| async { Ok::<_, Failure>(()) })
        .build(client.clone())
        .unwrap()
        .start();
    let (last, recovered) = tokio::task::spawn_blocking(move || {
        assert!(scrape_when_up(port).starts_with("HTTP/1.1 200 OK\r\n"));
        // Clients that connect and send nothing (slowloris): each one held costs the worker
        // a task and a file descriptor, the ones its Redis connections need too.
        let idle: Vec<_> = (0..200)
            .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        let mut last = idle.last().unwrap().try_clone().unwrap();
        // Well inside the 5 s each request may take: a held connection times out here.
        last.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let read = last.read(&mut [0u8; 1]);
        drop(idle);
        drop(last);
        // Once the flood is gone, scrapes are answered again.
        (read, scrape_when_up(port))
    })
    .await
    .unwrap();
    match last {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("the 200th idle connection was held open: {other:?}"),
    }
    assert!(recovered.starts_with("HTTP/1.1 200 OK\r\n"), "{recovered}");
    worker.shutdown().await.unwrap();
}
