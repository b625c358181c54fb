//! Shared by the end-to-end tests: the example binaries as child processes with their
//! logs in files, and free ports.
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Pause between two polls of something that has no long poll (a process, a port).
pub(crate) const POLL: Duration = Duration::from_millis(20);

/// A child process whose stdout and stderr go to files; killed on drop.
pub(crate) struct Proc {
    name: String,
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Proc {
    /// Starts `bin` with exactly `env` (plus `NO_COLOR`), stdout to `name.out`, stderr to
    /// `name.err` in `dir` (the web and worker processes log to stdout). The environment is
    /// cleared so that a developer's `REDIS_TLS_URL` or `DYNO` cannot leak into the test.
    pub(crate) fn spawn(
        name: &str,
        bin: &str,
        args: &[&str],
        dir: &Path,
        env: &[(&str, String)],
    ) -> Self {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let child = Command::new(bin)
            .args(args)
            .env_clear()
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(File::create(&out).unwrap())
            .stderr(File::create(&err).unwrap())
            .spawn()
            .unwrap();
        Self {
            name: name.to_owned(),
            child,
            out,
            err,
        }
    }

    /// Everything the process wrote so far: stdout (the log of `web` and `worker`), stderr.
    pub(crate) fn output(&self) -> (String, String) {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        (read(&self.out), read(&self.err))
    }

    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Sends `signal` (`TERM`, `KILL`, ...) with `kill`, as the platform would.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} {} failed", self.name);
    }

    /// Waits for the process to exit, at most `within`.
    pub(crate) async fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {within:?}",
                self.name
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let (out, err) = self.output();
            for (what, text) in [("stdout", out), ("stderr", err)] {
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
                eprintln!("--- {} {what} (last {} lines) ---", self.name, tail.len());
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
    }
}

/// A port that was free a moment ago (the web process fails loudly if it is taken since).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
