//! Every Lua script, one `.lua` file per state transition, each with its typed call in the
//! `.rs` file beside it.
//!
//! A wrapper is the only place that knows its script's KEYS, ARGV and replies: it builds
//! every key through [`Keys`](crate::Keys), sends `EVALSHA` under the client timeout (with
//! the `EVAL` fallback after `NOSCRIPT`, for example after Redis restarted), and turns the
//! reply into an enum. The worker, the web crate, the script tests and the benches all call
//! the same wrappers, so adding a state change touches one pair of files.
//!
//! One rule holds for every script that moves a job: reads and checks first, then the write
//! to the destination, and the removal from the source last, so that a script failing half
//! way (Redis does not roll back) leaves the job in at least one structure.
//!
//! The checks include the type of every key the script writes (`TYPE`) and every value a
//! command must parse (a counter for `INCR`, a record's `rev`), because under the default
//! empty prefix another app's key can sit at any of these names. A destination of another
//! type stops the script before any write, with the reply `{-1, key}`, which the wrappers
//! return as [`Error::WrongType`]; the job stays where it was. A status record, counter or
//! registry entry of another type is left as it is and skipped: the job still moves, since a
//! job stuck behind a broken record would never run.
//!
//! At `maxmemory` with `noeviction`, Redis refuses a script whose first write is a command
//! that may grow memory (`denyoom`: LPUSH, ZADD, HSET, INCR, ...), and once a script has
//! written it lets the script finish, since it cannot roll back. Scripts that only add
//! (enqueue, schedule, cancel, progress) start with such a write, so a full Redis refuses
//! them whole. Scripts that move a job out of a processing list (fail, requeue, defer, reap)
//! must still run when Redis is full, since draining jobs is what frees memory: after their
//! checks, their first write is one Redis allows (`LTRIM list 0 -1`, which changes nothing,
//! or the `PEXPIRE` of a lease), then the destination, then the removal.

use redis::{Cmd, FromRedisValue, Script, ScriptInvocation};
use std::sync::LazyLock;

use crate::client::Client;
use crate::error::{Error, Result};

mod ack_fetch;
mod cancel;
mod defer;
mod delete;
mod due;
mod enqueue;
mod enqueue_bulk;
mod enqueue_unique;
mod expire;
mod fail;
mod heartbeat;
mod kill;
mod limit_acquire;
mod limiter_acquire;
mod pause;
mod periodic_register;
mod periodic_tick;
mod prelude;
mod progress;
mod promote;
mod reap;
mod requeue;
mod retry_now;
mod schedule;
mod signal;
mod slot_renew;
mod start;
mod status_read;
mod unique_release;
mod unregister;

pub use ack_fetch::{Ack, AckFetch, AckFetched, AckTracking, Taken, ack_fetch};
pub use cancel::{CANCEL_NOTICE, Cancelled, cancel};
pub use defer::{Deferral, Deferred, defer};
pub use delete::delete;
pub use due::PromoteFrom;
pub(crate) use enqueue::{Enqueue, enqueue};
pub(crate) use enqueue_bulk::{BulkChunk, send as send_bulk_chunk};
pub use enqueue_unique::UniqueEnqueued;
pub(crate) use enqueue_unique::{EnqueueUnique, enqueue_unique};
pub use expire::{Expired, expire};
pub use fail::{FailTo, Failed, FailedAttempt, fail};
pub use heartbeat::{Beat, BeatMode, Heartbeat, heartbeat};
pub use kill::{DEAD_MAX_AGE, DEAD_MAX_JOBS, kill};
pub use limit_acquire::{Slot, limit_acquire, limit_release};
pub use limiter_acquire::{Admission, LimiterKind, limiter_acquire, limiter_release};
pub use pause::{PAUSED_CHANGED, pause};
pub(crate) use periodic_register::periodic_register;
pub(crate) use periodic_tick::{PeriodicTick, periodic_tick};
pub use progress::{ProgressRecorded, progress};
pub use promote::{Promoted, promote};
pub use reap::{Reaped, reap};
pub use requeue::{Requeue, Requeued, requeue};
pub use retry_now::retry_now;
pub(crate) use schedule::{Schedule, schedule};
pub use signal::{SIGNAL_NOTICE, Signal, signal};
pub use slot_renew::{HeldSlot, SlotSet, slot_renew};
pub use start::{StartJob, Started, start};
pub use status_read::{Watched, status_read, watch};
pub use unique_release::unique_release;
pub use unregister::unregister;

/// Lifetime of Sidekiq's daily counters (`stat:processed:<day>`): Sidekiq keeps five years.
pub(crate) const DAILY_STAT_TTL_SECS: u64 = 5 * 365 * 24 * 3600;

/// What an operator's verb (`retry_now`, `kill`, `delete`) did to one entry of a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acted {
    /// Done: queued, dead or deleted, with its status record saying so (or gone, for delete).
    Done,
    /// Not in the set any more (promoted, retried or removed meanwhile): nothing changed.
    Gone,
    /// Its status record says cancelled: the entry was dropped, as the scripts that meet a
    /// cancelled job do, instead of being queued or buried (the record keeps `cancelled`).
    Cancelled,
    /// Left in the set: where it would go holds a key of another type.
    Blocked,
    /// Left in the set: it is not job JSON, so it has no queue or id to act on.
    NotAJob,
}

/// Gives `holder`'s slot in the sorted set of slots at `key` back (one `ZREM`, no script
/// needed): how a class's concurrency slot and a concurrent limiter's slot are released.
pub(crate) async fn release_slot(client: &Client, key: String, holder: &str) -> Result<()> {
    let mut conn = client.connection();
    let _: i64 = client
        .bounded(
            redis::cmd("ZREM")
                .arg(key)
                .arg(holder)
                .query_async(&mut conn),
        )
        .await?;
    Ok(())
}

/// A script, loaded once per process, with the file name its errors report.
pub(crate) struct Lua {
    name: &'static str,
    script: LazyLock<Script, fn() -> Script>,
}

/// Declares a `Lua` static for the `.lua` file beside the wrapper, with the helpers of
/// `prelude.lua` it calls in front of it.
macro_rules! lua {
    ($static:ident, $file:literal) => {
        pub(crate) static $static: $crate::scripts::Lua = $crate::scripts::Lua::new($file, || {
            redis::Script::new(&$crate::scripts::prelude::with_prelude(include_str!($file)))
        });
    };
}
pub(crate) use lua;

impl Lua {
    pub(crate) const fn new(name: &'static str, load: fn() -> Script) -> Self {
        Self {
            name,
            script: LazyLock::new(load),
        }
    }

    /// A fresh invocation to add keys and arguments to.
    pub(crate) fn invocation(&self) -> ScriptInvocation<'_> {
        self.script.prepare_invoke()
    }

    /// Runs `inv` under the client timeout; `invoke_async` loads the script after `NOSCRIPT`.
    pub(crate) async fn call<T: FromRedisValue>(
        &self,
        client: &Client,
        inv: ScriptInvocation<'_>,
    ) -> Result<T> {
        let mut conn = client.connection();
        client.bounded(inv.invoke_async(&mut conn)).await
    }

    /// An `EVALSHA` with `numkeys` keys, to which keys and then arguments are added. For hot
    /// paths that size their command up front (enqueue).
    pub(crate) fn evalsha(&self, numkeys: usize, args: usize, bytes: usize) -> Cmd {
        let mut cmd = Cmd::with_capacity(args + 3, bytes + 64);
        cmd.arg("EVALSHA").arg(self.script.get_hash()).arg(numkeys);
        cmd
    }

    /// Runs `cmd`, an [`Lua::evalsha`] of this script, under the client timeout; loads the
    /// script and runs it again if Redis lost it (`NOSCRIPT`).
    pub(crate) async fn call_cmd<T: FromRedisValue>(&self, client: &Client, cmd: Cmd) -> Result<T> {
        let mut conn = client.connection();
        let script = &*self.script;
        client
            .bounded(async move {
                match cmd.query_async(&mut conn).await {
                    Err(e)
                        if e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                    {
                        script.load_async(&mut conn).await?;
                        cmd.query_async(&mut conn).await
                    }
                    reply => reply,
                }
            })
            .await
    }

    /// The error for a reply this script's wrapper does not understand.
    pub(crate) fn unexpected(&self, reply: impl std::fmt::Debug) -> Error {
        Error::UnexpectedScriptReply {
            script: self.name,
            reply: format!("{reply:?}"),
        }
    }

    /// [`Error::WrongType`] when `reply` is `{-1, key}`, the answer of every script that finds
    /// a key it must write holding another type (and so writes nothing).
    pub(crate) fn wrong_type(&self, reply: &redis::Value) -> Option<Error> {
        let redis::Value::Array(items) = reply else {
            return None;
        };
        match items.as_slice() {
            [redis::Value::Int(-1), redis::Value::BulkString(key)] => Some(Error::WrongType {
                script: self.name,
                key: String::from_utf8_lossy(key).into_owned(),
            }),
            _ => None,
        }
    }

    /// The integer of an integer reply; [`Error::WrongType`] for `{-1, key}`.
    pub(crate) fn int(&self, reply: redis::Value) -> Result<i64> {
        if let Some(e) = self.wrong_type(&reply) {
            return Err(e);
        }
        match reply {
            redis::Value::Int(n) => Ok(n),
            other => Err(self.unexpected(other)),
        }
    }

    /// The integer codes of a per-member reply, exactly `n` of them; [`Error::WrongType`] for
    /// `{-1, key}`.
    pub(crate) fn codes(&self, reply: redis::Value, n: usize) -> Result<Vec<i64>> {
        if let Some(e) = self.wrong_type(&reply) {
            return Err(e);
        }
        let redis::Value::Array(items) = reply else {
            return Err(self.unexpected(reply));
        };
        if items.len() != n {
            return Err(self.unexpected(items));
        }
        items
            .into_iter()
            .map(|item| match item {
                redis::Value::Int(code) => Ok(code),
                other => Err(self.unexpected(other)),
            })
            .collect()
    }

    fn script(&self) -> &Script {
        &self.script
    }
}

/// The scripts the enqueue client uses, for preloading at connect.
pub(crate) fn client_scripts() -> [&'static Lua; 6] {
    [
        &enqueue::ENQUEUE,
        &enqueue_unique::ENQUEUE_UNIQUE,
        &unique_release::UNIQUE_RELEASE,
        &enqueue_bulk::ENQUEUE_BULK,
        &schedule::SCHEDULE,
        &cancel::CANCEL,
    ]
}

/// The operators' scripts (`inspect`'s verbs): loaded on first use, listed for
/// [`script_hashes`].
fn operator_scripts() -> [&'static Lua; 4] {
    [
        &retry_now::RETRY_NOW,
        &kill::KILL,
        &delete::DELETE,
        &pause::PAUSE,
    ]
}

/// The scripts a worker process uses, for preloading at start.
fn worker_scripts() -> [&'static Lua; 17] {
    [
        &ack_fetch::ACK_FETCH,
        &start::START,
        &fail::FAIL,
        &requeue::REQUEUE,
        &due::DUE,
        &promote::PROMOTE,
        &heartbeat::HEARTBEAT,
        &reap::REAP,
        &unregister::UNREGISTER,
        &progress::PROGRESS,
        &limit_acquire::LIMIT_ACQUIRE,
        &limiter_acquire::LIMITER_ACQUIRE,
        &defer::DEFER,
        &expire::EXPIRE,
        &periodic_tick::PERIODIC_TICK,
        &periodic_register::PERIODIC_REGISTER,
        &slot_renew::SLOT_RENEW,
    ]
}

/// Every script's file name and SHA-1, as `EVALSHA` and the slowlog name it (for tools that
/// break Redis's time down by script).
pub fn script_hashes() -> Vec<(&'static str, String)> {
    client_scripts()
        .into_iter()
        .chain(worker_scripts())
        .chain(operator_scripts())
        .map(|lua| (lua.name, lua.script().get_hash().to_owned()))
        .collect()
}

/// Loads `scripts` into Redis so that their first use is a single `EVALSHA`.
pub(crate) async fn load(client: &Client, scripts: &[&Lua]) -> Result<()> {
    for lua in scripts {
        let mut conn = client.connection();
        let script = lua.script();
        client
            .bounded(async move { script.load_async(&mut conn).await })
            .await?;
    }
    Ok(())
}

/// Loads every script a worker process uses (call once at start).
pub async fn load_worker_scripts(client: &Client) -> Result<()> {
    load(client, &worker_scripts()).await
}

/// `"1"` / `"0"`, the scripts' booleans.
pub(crate) fn flag(on: bool) -> &'static str {
    if on { "1" } else { "0" }
}
