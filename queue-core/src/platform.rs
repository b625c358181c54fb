//! Process helpers shared by web and worker dynos: logs to stdout (logfmt when `DYNO` is
//! set, human-readable elsewhere) and the SIGTERM/SIGINT future that starts a shutdown.
//!
//! The logfmt lines read `at=info target=… msg="job failed" job_id=… error="…"`
//! ([`Logfmt`]).
//!
//! Behind the `platform` feature (on by default), so that an app with its own logging set-up
//! can leave `tracing-subscriber` out.
//!
//! ```no_run
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     queue_core::platform::init_logging();
//!     // Install the handlers first: a SIGTERM during start-up must not kill the process.
//!     let shutdown = queue_core::platform::shutdown_signal()?;
//!     shutdown.await;
//!     Ok(())
//! }
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::io::{self, Write};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::{EnvFilter, fmt};

pub use crate::logfmt::{Logfmt, LogfmtFields};
use crate::redact::redact_credentials;

/// Installs the global subscriber: `RUST_LOG` filters (default `info`); logfmt when `DYNO`
/// is set so the platform's log drains can parse `key=value` pairs. Safe to call twice.
///
/// Every line passes through [`redact_credentials`] on its way out: a log drain is read by
/// more people than the app's settings, and a connection error can quote a URL with its
/// password.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only on a terminal: escape codes in a log drain or file are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(Redacting(std::io::stdout))
        .with_ansi(ansi);
    let _ = if std::env::var_os("DYNO").is_some() {
        builder
            .fmt_fields(LogfmtFields)
            .event_format(Logfmt)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// Makes writers that redact credentials in URLs from what the subscriber writes.
#[derive(Clone, Copy)]
struct Redacting<M>(M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for Redacting<M> {
    type Writer = RedactingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter(self.0.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        RedactingWriter(self.0.make_writer_for(meta))
    }
}

/// Writes each buffer redacted. The fmt subscriber formats a whole event first and hands it
/// over in one `write_all`, so a URL is never split between two calls.
struct RedactingWriter<W>(W);

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf).map(redact_credentials) {
            Ok(Cow::Owned(clean)) => self.0.write_all(clean.as_bytes())?,
            Ok(Cow::Borrowed(_)) | Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Completes on the first SIGTERM or SIGINT; a background task logs any later ones.
///
/// Call it before anything slow at start-up: until the handlers are installed, a SIGTERM
/// kills the process outright. Needs a Tokio runtime.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = tokio::sync::oneshot::channel::<&'static str>();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            let name = tokio::select! {
                s = term.recv() => { if s.is_none() { break; } "SIGTERM" }
                s = int.recv() => { if s.is_none() { break; } "SIGINT" }
            };
            match tx.take() {
                Some(tx) => {
                    let _ = tx.send(name);
                }
                None => tracing::info!(signal = name, "already shutting down; signal ignored"),
            }
        }
    });
    Ok(async move {
        if let Ok(name) = rx.await {
            tracing::info!(signal = name, "received signal");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that keeps what the subscriber wrote, for the assertion.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_lose_the_passwords_of_urls() {
        let captured = Captured::default();
        let writer = captured.clone();
        for logfmt in [false, true] {
            let writer = writer.clone();
            let builder = fmt()
                .with_ansi(false)
                .with_writer(Redacting(move || writer.clone()));
            let run = || {
                tracing::warn!(
                    error = "cannot reach redis://app:hunter2@h:6379",
                    "no Redis"
                );
                tracing::warn!("connecting to rediss://:hunter2@h:6380/0");
            };
            if logfmt {
                tracing::subscriber::with_default(builder.event_format(Logfmt).finish(), run);
            } else {
                tracing::subscriber::with_default(builder.finish(), run);
            }
        }
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(text.matches("redis://app:***@h:6379").count(), 2, "{text}");
        assert_eq!(text.matches("rediss://:***@h:6380/0").count(), 2, "{text}");
    }

    #[test]
    fn a_dyno_line_has_at_target_msg_and_the_fields() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .event_format(Logfmt)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(job_id = "abc", error = "say \"hi\"", "job failed");
        });
        let line = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            line,
            "at=info target=queue_core::platform::tests msg=\"job failed\" \
             job_id=abc error=\"say \\\"hi\\\"\"\n"
        );
    }
}
