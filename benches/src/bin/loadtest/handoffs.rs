//! Thread hand-offs of a process over a window (`--handoffs`): its futex calls, context
//! switches, epoll waits and socket calls, counted by `perf stat` attached to it.
//!
//! A tokio runtime hands work between threads by waking a parked thread (a `futex` wake) or
//! the I/O driver (a write to its eventfd), and a thread with nothing to do parks (a `futex`
//! wait, or `epoll_wait` for the driver's thread). Counting those calls per job says how
//! many hand-offs a job costs, which CPU time alone does not. `perf stat` runs with its
//! events disabled (`-D -1`) and is switched on and off through its control FIFOs, so the
//! window is exactly the phase's, not the process's start or its shutdown.

use crate::error::{LoadError, Result, io};
use serde_json::{Map, Value};
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Child;

/// The events counted, as `perf stat -e` names them, and the name each gets in the report.
/// Both epoll calls and both pairs of socket calls are listed because which one a runtime
/// (and its libc) issues differs by version.
const EVENTS: &[(&str, &str)] = &[
    ("syscalls:sys_enter_futex", "futex"),
    ("context-switches", "context_switches"),
    ("syscalls:sys_enter_epoll_wait", "epoll_wait"),
    ("syscalls:sys_enter_epoll_pwait", "epoll_pwait"),
    ("syscalls:sys_enter_sendto", "sendto"),
    ("syscalls:sys_enter_write", "write"),
    ("syscalls:sys_enter_writev", "writev"),
    ("syscalls:sys_enter_recvfrom", "recvfrom"),
    ("syscalls:sys_enter_read", "read"),
];

/// How long `perf` may take to attach, or to answer a control command.
const PERF_DEADLINE: Duration = Duration::from_secs(10);

/// Event counts of one window, by report name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counts(pub(crate) Vec<(&'static str, u64)>);

impl Counts {
    /// Adds `other`'s counts to these (several worker processes).
    pub(crate) fn add(&mut self, other: &Counts) {
        for (name, n) in &other.0 {
            match self.0.iter_mut().find(|(k, _)| k == name) {
                Some((_, sum)) => *sum += n,
                None => self.0.push((name, *n)),
            }
        }
    }

    /// Each count divided by `per` (jobs, pickups), rounded to 2 decimals.
    pub(crate) fn json_per(&self, per: f64) -> Value {
        let mut out = Map::new();
        for (name, n) in &self.0 {
            out.insert(
                (*name).to_owned(),
                crate::report::round(*n as f64 / per.max(1.0), 2),
            );
        }
        Value::Object(out)
    }

    /// Parses `perf stat -x,` output: `count,unit,event,...` lines; `<not counted>` is 0.
    fn parse(text: &str) -> Result<Self> {
        let mut out = Vec::new();
        for line in text.lines() {
            let cols: Vec<&str> = line.split(',').collect();
            let (Some(count), Some(event)) = (cols.first(), cols.get(2)) else {
                continue;
            };
            let Some(&(_, name)) = EVENTS.iter().find(|(e, _)| e == event) else {
                continue;
            };
            let n = match *count {
                "<not counted>" => 0,
                c => c
                    .parse()
                    .map_err(|_| LoadError::Perf(format!("perf stat: {event} reads {c:?}")))?,
            };
            out.push((name, n));
        }
        if out.is_empty() {
            return Err(LoadError::Perf(format!(
                "perf stat printed no counts: {text:?}"
            )));
        }
        Ok(Self(out))
    }
}

/// `perf stat` attached to one process, its events off until [`PerfCounter::enable`].
pub(crate) struct PerfCounter {
    child: Child,
    ctl: std::fs::File,
    ack: std::fs::File,
    dir: PathBuf,
    output: PathBuf,
}

impl PerfCounter {
    /// Attaches to process `pid` (its threads at this moment: the runtimes start theirs
    /// before the work begins).
    pub(crate) async fn attach(pid: u32) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("loadtest-perf-{}-{pid}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(io("creating the perf control directory"))?;
        let (ctl_path, ack_path, output) = (dir.join("ctl"), dir.join("ack"), dir.join("counts"));
        for fifo in [&ctl_path, &ack_path] {
            let _ = std::fs::remove_file(fifo);
            let made = std::process::Command::new("mkfifo")
                .arg(fifo)
                .status()
                .map_err(io("running mkfifo"))?;
            if !made.success() {
                return Err(LoadError::Perf(format!("mkfifo {} failed", fifo.display())));
            }
        }
        let events: Vec<&str> = EVENTS.iter().map(|(e, _)| *e).collect();
        let child = tokio::process::Command::new("perf")
            .args(["stat", "-x,", "-D", "-1", "-e", &events.join(",")])
            .arg("-p")
            .arg(pid.to_string())
            .arg("--control")
            .arg(format!(
                "fifo:{},{}",
                ctl_path.display(),
                ack_path.display()
            ))
            .arg("-o")
            .arg(&output)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(io("starting perf stat (is perf installed?)"))?;
        // perf opens its control FIFO read-write and then its ack FIFO for writing, which
        // blocks until this side opens it for reading: both opens return once perf is ready.
        // Blocking opens, on the blocking pool (this crate's tokio has no `fs`).
        let opened = tokio::task::spawn_blocking(move || {
            let ctl = std::fs::OpenOptions::new().write(true).open(&ctl_path)?;
            let ack = std::fs::File::open(&ack_path)?;
            Ok::<_, std::io::Error>((ctl, ack))
        });
        let (ctl, ack) = tokio::time::timeout(PERF_DEADLINE, opened)
            .await
            .map_err(|_| LoadError::Timeout("perf stat attaching (permission to trace?)"))?
            .map_err(|e| LoadError::Perf(format!("opening perf's control FIFOs: {e}")))?
            .map_err(io("opening perf's control FIFOs"))?;
        Ok(Self {
            child,
            ctl,
            ack,
            dir,
            output,
        })
    }

    async fn command(&mut self, what: &'static str) -> Result<()> {
        let mut ctl = self.ctl.try_clone().map_err(io("perf's control FIFO"))?;
        let mut ack = self.ack.try_clone().map_err(io("perf's ack FIFO"))?;
        let exchange = tokio::task::spawn_blocking(move || {
            ctl.write_all(format!("{what}\n").as_bytes())?;
            // perf writes its tag with the C string's NUL: `ack\n\0`.
            let mut reply = [0u8; 5];
            ack.read_exact(&mut reply)?;
            Ok::<_, std::io::Error>(reply)
        });
        let reply = tokio::time::timeout(PERF_DEADLINE, exchange)
            .await
            .map_err(|_| LoadError::Timeout("perf stat's ack"))?
            .map_err(|e| LoadError::Perf(format!("perf control: {e}")))?
            .map_err(io("perf's control FIFOs"))?;
        if !reply.starts_with(b"ack\n") {
            return Err(LoadError::Perf(format!("perf answered {reply:?}")));
        }
        Ok(())
    }

    /// Starts counting; returns once perf has.
    pub(crate) async fn enable(&mut self) -> Result<()> {
        self.command("enable").await
    }

    /// Stops counting; returns once perf has.
    pub(crate) async fn disable(&mut self) -> Result<()> {
        self.command("disable").await
    }

    /// Ends perf (it prints its counts on SIGINT, or by itself once the process it watched
    /// exited) and reads what it counted while enabled.
    pub(crate) async fn finish(mut self) -> Result<Counts> {
        if let Some(pid) = self.child.id() {
            // `kill` the command: this crate has no signal API of its own (no libc, no unsafe).
            let _ = tokio::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .await;
        }
        tokio::time::timeout(PERF_DEADLINE, self.child.wait())
            .await
            .map_err(|_| LoadError::Timeout("perf stat's exit"))?
            .map_err(io("waiting for perf stat"))?;
        let text = std::fs::read_to_string(&self.output).map_err(io("reading perf's counts"))?;
        let _ = std::fs::remove_dir_all(&self.dir);
        Counts::parse(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_stat_csv_is_read_and_summed() {
        let text = "# started on Wed Dec  2 01:50:34 2026\n\n\
                    120,,syscalls:sys_enter_futex,2265633,100.00,,\n\
                    <not counted>,,syscalls:sys_enter_epoll_wait,0,100.00,,\n\
                    91,,context-switches,2265633,100.00,,\n";
        let mut c = Counts::parse(text).unwrap();
        assert_eq!(
            c.0,
            [("futex", 120), ("epoll_wait", 0), ("context_switches", 91)]
        );
        c.add(&Counts(vec![("futex", 30), ("sendto", 4)]));
        assert_eq!(c.0[0], ("futex", 150));
        assert_eq!(c.0[3], ("sendto", 4));
        assert_eq!(c.json_per(10.0)["futex"], serde_json::json!(15.0));
        assert!(Counts::parse("# nothing\n").is_err());
        assert!(Counts::parse("<not supported>,,syscalls:sys_enter_futex,0,100.00,,\n").is_err());
    }
}
