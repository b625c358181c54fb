//! `signal.lua`: an operator quiets or stops a worker process from outside.

use crate::client::Client;
use crate::error::{Error, Result};
use crate::scripts::lua;

lua!(SIGNAL, "signal.lua");

/// The wake-channel notice that process `<identity>` (which follows it) has a signal waiting.
/// It cannot be a queue name (`:` is not allowed in one).
pub const SIGNAL_NOTICE: &str = ":signal ";

/// How long an unread signal waits for its process (Sidekiq's 60 s).
const SIGNAL_TTL_SECS: u64 = 60;

/// Longest process identity accepted (ours are `host:pid:nonce:generation`).
const MAX_IDENTITY_BYTES: usize = 255;

/// What an operator asks a worker process to do. The wire names are Sidekiq's, so its Web UI
/// can signal our workers and our tools can signal Sidekiq's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// Stop fetching; running jobs finish (`TSTP`).
    Quiet,
    /// Shut down as on SIGTERM (`TERM`).
    Stop,
    /// A signal this library does not act on (Sidekiq's `TTIN`, say); kept to be logged.
    Other(String),
}

impl Signal {
    /// The name stored in the signals list.
    ///
    /// ```
    /// use queue_core::scripts::Signal;
    /// assert_eq!(Signal::Quiet.as_str(), "TSTP");
    /// assert_eq!(Signal::from_wire("TERM"), Signal::Stop);
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            Signal::Quiet => "TSTP",
            Signal::Stop => "TERM",
            Signal::Other(name) => name,
        }
    }

    /// Reads a name popped from a signals list.
    pub fn from_wire(name: &str) -> Self {
        match name {
            "TSTP" => Signal::Quiet,
            "TERM" => Signal::Stop,
            other => Signal::Other(other.chars().take(32).collect()),
        }
    }
}

/// Sends `signal` to process `identity`. `Ok(false)` when there is no such process.
pub async fn signal(client: &Client, identity: &str, signal: &Signal) -> Result<bool> {
    if identity.is_empty() || identity.len() > MAX_IDENTITY_BYTES {
        return Err(Error::InvalidIdentity);
    }
    let keys = client.keys();
    let mut inv = SIGNAL.invocation();
    inv.key(keys.process(identity))
        .key(keys.signals(identity))
        .arg(signal.as_str())
        .arg(SIGNAL_TTL_SECS)
        .arg(keys.wake_channel())
        .arg(format!("{SIGNAL_NOTICE}{identity}"));
    let reply: redis::Value = SIGNAL.call(client, inv).await?;
    match SIGNAL.int(reply)? {
        1 => Ok(true),
        0 => Ok(false),
        other => Err(SIGNAL.unexpected(other)),
    }
}
