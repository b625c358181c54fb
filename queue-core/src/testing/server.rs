//! Test support: a private `redis-server` per test (feature `test-support`).
//!
//! Each [`TestRedis`] runs its own server on a free loopback port with persistence off and
//! its log in a temporary directory. It is killed on drop; when the test is panicking, the
//! end of its log is printed so that a failure shows what the server saw. Tests therefore
//! never flush, stop or fill a server they did not start. On the cluster target
//! ([`CLUSTER_TARGET_VAR`](super::CLUSTER_TARGET_VAR) set), [`TestRedis::start`] gives a
//! test its share of the shared cluster instead (`target.rs`).
//!
//! A [`TcpProxy`] sits between clients and a server for the network faults: replies held
//! back for a while, or the backend switched to another server (a managed failover, as
//! clients see it).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use super::target::{SharedSlot, cluster_target, private_only};
use crate::config::ClientConfig;

/// How long a server may take to start before the test gives up.
const START_DEADLINE: Duration = Duration::from_secs(15);

/// The Redis of one test: a private `redis-server`, or on the cluster target the test's
/// share of the shared cluster (see [`TestRedis::start`]).
#[derive(Debug)]
pub struct TestRedis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    tls: bool,
    extra_args: Vec<String>,
    /// Set on the cluster target: the test's master and prefixes there.
    shared: Option<SharedSlot>,
}

/// The `redis-server` binary: `$REDIS_SERVER`, else the one on `PATH`.
pub fn redis_server_binary() -> PathBuf {
    std::env::var_os("REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

impl TestRedis {
    /// The test's Redis: a private plain-TCP server, or, when
    /// [`CLUSTER_TARGET_VAR`](super::CLUSTER_TARGET_VAR) names a cluster, the test's share
    /// of it: [`TestRedis::config`] gives a cluster configuration with a prefix no other
    /// test uses, and the URL, port and commands go to the master of that prefix's slot.
    pub fn start() -> Self {
        match cluster_target() {
            Some(urls) => Self {
                child: None,
                port: 0,
                dir: tempfile::tempdir().expect("temp dir"),
                tls: false,
                extra_args: Vec::new(),
                shared: Some(SharedSlot::join(urls)),
            },
            None => Self::start_private(),
        }
    }

    /// Starts a private plain-TCP server whatever the target: for a test that stops,
    /// restarts or fills its server, or reads server-wide state (`DBSIZE`, `CLIENT LIST`).
    pub fn start_private() -> Self {
        Self::start_with(false, &[])
    }

    /// Starts a private plain-TCP server with extra `redis-server` arguments (e.g.
    /// `--maxmemory 2mb`), whatever the target.
    pub fn start_with_args(args: &[&str]) -> Self {
        Self::start_with(false, args)
    }

    /// Starts a private TLS-only server with a freshly generated self-signed certificate,
    /// whatever the target.
    pub fn start_tls() -> Self {
        Self::start_with(true, &[])
    }

    fn start_with(tls: bool, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        if tls {
            generate_self_signed_cert(dir.path());
        }
        let mut last_log = String::new();
        for _ in 0..5 {
            let mut server = Self {
                child: None,
                port: free_port(),
                dir: tempfile::tempdir().expect("temp dir"),
                tls,
                extra_args: args.iter().map(|s| (*s).to_owned()).collect(),
                shared: None,
            };
            if tls {
                for f in ["cert.pem", "key.pem"] {
                    std::fs::copy(dir.path().join(f), server.dir.path().join(f)).expect("copy");
                }
            }
            if server.spawn() {
                return server;
            }
            last_log = server.log();
        }
        panic!("redis-server did not start; last log:\n{last_log}");
    }

    /// Spawns the server on `self.port`; true once it accepts connections.
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let log = self.log_path();
        // On a restart the log already holds the previous run's "Ready" line: only what this
        // run appends counts.
        let log_start = self.log().len();
        let mut cmd = Command::new(redis_server_binary());
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(["--loglevel", "notice"]);
        if self.tls {
            let d = self.dir.path();
            cmd.args(["--port", "0", "--tls-port", &port])
                .arg("--tls-cert-file")
                .arg(d.join("cert.pem"))
                .arg("--tls-key-file")
                .arg(d.join("key.pem"))
                .arg("--tls-ca-cert-file")
                .arg(d.join("cert.pem"))
                .args(["--tls-auth-clients", "no"]);
        } else {
            cmd.args(["--port", &port]);
        }
        cmd.args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot run {:?} ({e}); run script/test, which installs redis-server",
                redis_server_binary()
            ),
        };
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            if self
                .log()
                .get(log_start..)
                .is_some_and(|new| new.contains("Ready to accept connections"))
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.kill();
        false
    }

    /// The port the server listens on (on the cluster target, the test's master's).
    pub fn port(&self) -> u16 {
        match &self.shared {
            Some(shared) => shared.port(),
            None => self.port,
        }
    }

    /// `redis://` URL of a plain server, `rediss://` of a TLS one (on the cluster target,
    /// the test's master's: every key under [`TestRedis::config`]'s prefix is there).
    pub fn url(&self) -> String {
        if let Some(shared) = &self.shared {
            return shared.url();
        }
        let scheme = if self.tls { "rediss" } else { "redis" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// A client configuration for this server with the key prefix `{test_name}:`; on the
    /// cluster target, a cluster configuration with the prefix `{test_name~<random>}:`.
    pub fn config(&self, test_name: &str) -> ClientConfig {
        match &self.shared {
            Some(shared) => shared.config(test_name),
            None => ClientConfig::new(self.url()).prefix(format!("{{{test_name}}}:")),
        }
    }

    /// Whether this is a share of the cluster target rather than a private server.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Whether `key` belongs to this test: every key of a private server does; on the
    /// cluster target, the keys under the prefixes [`TestRedis::config`] handed out.
    pub fn owns_key(&self, key: &str) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|shared| shared.owns_key(key))
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// The server's log so far (on the cluster target, where the nodes' logs are).
    pub fn log(&self) -> String {
        if self.shared.is_some() {
            return "(a share of the cluster target: script/cluster-target prints the nodes' \
                    logs when the run fails)"
                .to_owned();
        }
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The server's process id, while it runs (private servers only).
    pub fn pid(&self) -> Option<u32> {
        if self.shared.is_some() {
            private_only("the server's pid");
        }
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (as a crash would; private servers only).
    pub fn kill(&mut self) {
        if self.shared.is_some() {
            private_only("killing the server");
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (persistence is off; private
    /// servers only).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_DEADLINE;
        while Instant::now() < deadline {
            if self.spawn() {
                return;
            }
        }
        panic!("redis-server did not restart; log:\n{}", self.log());
    }

    /// Sends one command and returns its reply as text: a bulk or simple string as it is,
    /// an integer in decimal, an error as `ERR …` (plain servers only).
    pub fn command(&self, parts: &[&str]) -> String {
        command_at(&self.url(), parts)
    }

    /// Sends one command over a raw connection and returns the raw reply (plain servers only).
    pub fn raw_command(&self, parts: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port())).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut req = format!("*{}\r\n", parts.len());
        for p in parts {
            req.push_str(&format!("${}\r\n{p}\r\n", p.len()));
        }
        stream.write_all(req.as_bytes()).expect("write");
        let mut buf = [0u8; 65536];
        let n = stream.read(&mut buf).expect("read");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// Sends one command to the plain server at `url`, on a connection of its own; the reply as
/// [`TestRedis::command`] gives it.
pub(crate) fn command_at(url: &str, parts: &[&str]) -> String {
    let client = redis::Client::open(url).expect("url");
    let mut conn = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut cmd = redis::cmd(parts[0]);
    for p in &parts[1..] {
        cmd.arg(*p);
    }
    match cmd.query::<redis::Value>(&mut conn) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(redis::Value::SimpleString(s)) => s,
        Ok(redis::Value::VerbatimString { text, .. }) => text,
        Ok(redis::Value::Int(n)) => n.to_string(),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("ERR {e}"),
    }
}

/// A loopback TCP proxy in front of a plain server, for network faults.
///
/// Clients connect to [`TcpProxy::url`]; each connection gets its own connection to the
/// current backend. Bytes from the client pass at once; bytes from the server reach the
/// client `reply_delay` after they arrived (a delay, not a bandwidth limit: replies keep
/// their order and pipeline as before). [`TcpProxy::switch_to`] points new connections at
/// another port and closes the open ones, which is how a managed failover (an endpoint or
/// DNS switch) looks to a client. Threads, not tasks, so that the proxy keeps its timing
/// whatever the test's runtime is doing.
#[derive(Debug)]
pub struct TcpProxy {
    port: u16,
    shared: Arc<ProxyShared>,
    accept: Option<thread::JoinHandle<()>>,
}

#[derive(Debug)]
struct ProxyShared {
    backend: AtomicU16,
    delay_us: AtomicU64,
    closed: AtomicBool,
    /// Both ends of every open connection, so a switch or a drop can close them.
    open: Mutex<Vec<(TcpStream, TcpStream)>>,
}

impl ProxyShared {
    fn close_all(&self) {
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|e| e.into_inner()));
        for (client, server) in open {
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
        }
    }
}

impl TcpProxy {
    /// A proxy on a free loopback port that forwards to `127.0.0.1:backend_port`.
    pub fn start(backend_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let shared = Arc::new(ProxyShared {
            backend: AtomicU16::new(backend_port),
            delay_us: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let for_accept = Arc::clone(&shared);
        let accept = thread::spawn(move || accept_loop(&listener, &for_accept));
        Self {
            port,
            shared,
            accept: Some(accept),
        }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A client configuration through the proxy with the key prefix `{test_name}:`.
    pub fn config(&self, test_name: &str) -> ClientConfig {
        ClientConfig::new(self.url()).prefix(format!("{{{test_name}}}:"))
    }

    /// Holds every byte the server sends back for `delay` (bytes already in transit keep
    /// the delay they were read with).
    pub fn set_reply_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.shared.delay_us.store(us, Ordering::SeqCst);
    }

    /// Points new connections at `127.0.0.1:backend_port` and closes the open ones.
    pub fn switch_to(&self, backend_port: u16) {
        self.shared.backend.store(backend_port, Ordering::SeqCst);
        self.shared.close_all();
    }

    /// Connections open through the proxy right now.
    pub fn open_connections(&self) -> usize {
        self.shared
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<ProxyShared>) {
    for client in listener.incoming() {
        if shared.closed.load(Ordering::SeqCst) {
            break;
        }
        let Ok(client) = client else { continue };
        let backend = SocketAddr::from(([127, 0, 0, 1], shared.backend.load(Ordering::SeqCst)));
        // A backend that is down refuses the client too: it sees a reset, as it would
        // without the proxy.
        let Ok(server) = TcpStream::connect(backend) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
            client.try_clone(),
            server.try_clone(),
            client.try_clone(),
            server.try_clone(),
        ) else {
            continue;
        };
        {
            let mut open = shared.open.lock().unwrap_or_else(|e| e.into_inner());
            open.retain(|(c, _)| c.peer_addr().is_ok());
            open.push((c3, s3));
        }
        thread::spawn(move || pump(client, server));
        let for_replies = Arc::clone(shared);
        thread::spawn(move || pump_delayed(s2, c2, &for_replies));
    }
}

/// Copies `from` to `to` until either end closes, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Copies `from` to `to`, each chunk held until the delay set when it was read has passed.
fn pump_delayed(mut from: TcpStream, to: TcpStream, shared: &ProxyShared) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = thread::spawn(move || {
        let mut to = to;
        for (due, chunk) in rx {
            // The injected fault itself: holding the reply back.
            thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        let delay = Duration::from_micros(shared.delay_us.load(Ordering::SeqCst));
        if tx
            .send((Instant::now() + delay, buf[..n].to_vec()))
            .is_err()
        {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
    let _ = from.shutdown(Shutdown::Both);
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `closed`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        self.shared.close_all();
    }
}

fn generate_self_signed_cert(dir: &Path) {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl could not make a certificate");
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // A share of the cluster target has no server to stop; its keys stay until the
        // cluster is discarded at the end of the run.
        if self.shared.is_some() {
            return;
        }
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- redis-server log (port {}) ---", self.port);
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
        self.kill();
    }
}
