//! Typed jobs: the [`Job`] trait and how its value maps to Sidekiq's `args` array.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::payload::Retry;

/// A typed job: its value is the job's arguments.
///
/// # Arguments mapping
/// The value is serialized with serde. If it serializes to a JSON array (a tuple or tuple
/// struct), that array is Sidekiq's `args`, so `struct Add(i64, i64)` is `perform(a, b)` in
/// Ruby. Anything else (a struct with named fields, a number, a string) becomes the single
/// argument: `args = [value]`, so a Ruby job receives one hash with string keys. Reading
/// reverses this: a one-element `args` is read as the value first, then as an array.
///
/// ```
/// use queue_core::Job;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct SendEmail { to: String }
///
/// impl Job for SendEmail {
///     const NAME: &'static str = "SendEmail";
///     const QUEUE: &'static str = "mailers";
/// }
///
/// let args = SendEmail { to: "a@example.com".into() }.to_args().unwrap();
/// assert_eq!(args, vec![serde_json::json!({"to": "a@example.com"})]);
/// let back = SendEmail::from_args("SendEmail", &args).unwrap();
/// assert_eq!(back.to, "a@example.com");
/// ```
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stable job type name, stored as Sidekiq's `class`. Renaming it orphans queued jobs.
    const NAME: &'static str;
    /// Queue used when the enqueue options name none.
    const QUEUE: &'static str = "default";
    /// Retry policy used when the enqueue options name none.
    const RETRY: Retry = Retry::Default;
    /// Whether jobs of this type keep a status record (turn off for high-volume fire-and-forget work).
    const TRACK_STATUS: bool = true;

    /// Most jobs of this type running at once across every worker process, or `None` for no
    /// limit. Use it for jobs that each hold a database connection: a per-process pool cannot
    /// protect a database whose plan allows 20 connections when many dynos run workers.
    const CONCURRENCY_LIMIT: Option<u32> = None;

    /// Makes every job of this type unique by class, queue and arguments (`unique.rs`): an
    /// enqueue while an equal job holds the key returns that job's id and pushes nothing.
    const UNIQUE: Option<crate::unique::Unique> = None;

    /// Jobs of this type not started within this long after they are due are dropped with
    /// status `expired` (Sidekiq Pro's `expires_in`); `None`: they never expire.
    const EXPIRES_IN: Option<Duration> = None;

    /// How long the status record of a job of this type is kept once it succeeded; `None`
    /// uses the client's [`StatusRetention::finished`](crate::status::StatusRetention::finished)
    /// (24 h by default). `Some(Duration::ZERO)` keeps none: the record is deleted when the
    /// job succeeds, for work whose outcome nobody polls. Whole seconds; the record may
    /// outlive it by up to a twenty-fourth of it ([`crate::finished_store`]).
    const STATUS_RETENTION: Option<Duration> = None;

    /// Longest a single attempt may run before it is cancelled and failed as `timeout`;
    /// `None` uses the worker's default.
    fn timeout() -> Option<Duration> {
        None
    }

    /// This job's value as Sidekiq `args`.
    fn to_args(&self) -> Result<Vec<Value>> {
        match serde_json::to_value(self).map_err(Error::Serialize)? {
            Value::Array(items) => Ok(items),
            other => Ok(vec![other]),
        }
    }

    /// Reads a job of this type back from Sidekiq `args`.
    fn from_args(class: &str, args: &[Value]) -> Result<Self> {
        if let [single] = args
            && let Ok(job) = serde_json::from_value(single.clone())
        {
            return Ok(job);
        }
        serde_json::from_value(Value::Array(args.to_vec())).map_err(|source| {
            Error::ArgumentMismatch {
                class: class.to_owned(),
                source,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Add(i64, i64);
    impl Job for Add {
        const NAME: &'static str = "Add";
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Only(i64);
    impl Job for Only {
        const NAME: &'static str = "Only";
    }

    #[test]
    fn tuple_structs_are_positional_args() {
        assert_eq!(Add(1, 2).to_args().unwrap(), vec![json!(1), json!(2)]);
        assert_eq!(
            Add::from_args("Add", &[json!(3), json!(4)]).unwrap(),
            Add(3, 4)
        );
    }

    #[test]
    fn newtypes_are_one_arg() {
        assert_eq!(Only(7).to_args().unwrap(), vec![json!(7)]);
        assert_eq!(Only::from_args("Only", &[json!(7)]).unwrap(), Only(7));
    }

    #[test]
    fn mismatched_args_are_a_typed_error() {
        let err = Add::from_args("Add", &[json!("x")]).unwrap_err();
        assert!(matches!(err, Error::ArgumentMismatch { .. }));
    }
}
