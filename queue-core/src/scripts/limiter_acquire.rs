//! `limiter_acquire.lua`: one admission from a named limiter shared by every process
//! (concurrent, window or bucket); and giving a concurrent slot back.

use std::time::Duration;

use crate::client::Client;
use crate::error::Result;
use crate::scripts::{lua, release_slot};

lua!(LIMITER_ACQUIRE, "limiter_acquire.lua");

/// A limiter's kind and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimiterKind {
    /// At most `limit` holders at once; a holder's slot expires after `lifetime` (a process
    /// that dies cannot leak it).
    Concurrent {
        /// Most holders at once.
        limit: u32,
        /// How long a slot lasts unless released first.
        lifetime: Duration,
    },
    /// At most `limit` admissions in any `interval` (a sliding window).
    Window {
        /// Most admissions per interval.
        limit: u32,
        /// The interval.
        interval: Duration,
    },
    /// `limit` admissions per `interval`, evenly spaced (one every `interval / limit`).
    Bucket {
        /// Admissions per interval.
        limit: u32,
        /// The interval.
        interval: Duration,
    },
}

/// What the limiter answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Admitted, at this time of Redis's clock (epoch ms).
    Admitted {
        /// Redis's clock at the admission.
        at_ms: u64,
    },
    /// Over the limit; an admission may be free after this long (`None`: unknown, e.g. a
    /// concurrent limiter waits for a holder to finish).
    Over(Option<Duration>),
}

/// Asks limiter `name` for one admission for `holder` (a concurrent limiter's slot is held
/// until [`limiter_release`] or its lifetime; other kinds ignore the holder's identity).
pub async fn limiter_acquire(
    client: &Client,
    name: &str,
    kind: LimiterKind,
    holder: &str,
) -> Result<Admission> {
    let keys = client.keys();
    let (kind_s, limit, span) = match kind {
        LimiterKind::Concurrent { limit, lifetime } => ("concurrent", limit, lifetime),
        LimiterKind::Window { limit, interval } => ("window", limit, interval),
        LimiterKind::Bucket { limit, interval } => ("bucket", limit, interval),
    };
    let mut inv = LIMITER_ACQUIRE.invocation();
    inv.key(keys.limiter(name))
        .key(keys.limiters())
        .arg(kind_s)
        .arg(limit.max(1))
        .arg(u64::try_from(span.as_millis()).unwrap_or(u64::MAX).max(1))
        .arg(name)
        .arg(holder);
    let reply: redis::Value = LIMITER_ACQUIRE.call(client, inv).await?;
    if let Some(e) = LIMITER_ACQUIRE.wrong_type(&reply) {
        return Err(e);
    }
    let redis::Value::Array(items) = &reply else {
        return Err(LIMITER_ACQUIRE.unexpected(reply));
    };
    match items.as_slice() {
        [redis::Value::Int(1), redis::Value::Int(at)] => Ok(Admission::Admitted {
            at_ms: u64::try_from(*at).unwrap_or(0),
        }),
        [redis::Value::Int(0), redis::Value::Int(wait)] => {
            Ok(Admission::Over((*wait > 0).then(|| {
                Duration::from_millis(u64::try_from(*wait).unwrap_or(0))
            })))
        }
        _ => Err(LIMITER_ACQUIRE.unexpected(reply)),
    }
}

/// Gives `holder`'s slot of concurrent limiter `name` back (one `ZREM`; no script needed).
pub async fn limiter_release(client: &Client, name: &str, holder: &str) -> Result<()> {
    release_slot(client, client.keys().limiter(name), holder).await
}
