//! The stored job: Sidekiq's job JSON, field for field.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job_id::JobId;
use crate::timestamp::Timestamp;

/// Sidekiq's default number of retries when `retry` is `true` or missing.
pub const DEFAULT_MAX_RETRIES: u32 = 25;

/// A job as stored in Redis: Sidekiq's job JSON.
///
/// Known fields are typed; every other field (`tags`, `wrapped`, `bid`, …) is kept in
/// [`JobPayload::extra`] and written back unchanged whenever the job is rewritten (on
/// retry, death or recovery), so jobs of other tools survive a pass through our worker.
///
/// ```
/// use queue_core::JobPayload;
/// let raw = r#"{"class":"HardJob","args":[1],"jid":"b4a577edbccf1d805744efa9",
///     "queue":"default","retry":true,"created_at":1760000000.1,"tags":["a"]}"#;
/// let job = JobPayload::from_json(raw.as_bytes()).unwrap();
/// assert_eq!(job.class, "HardJob");
/// assert_eq!(job.extra["tags"], serde_json::json!(["a"]));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPayload {
    // `jid` and `retry_count` come first in the JSON: a stable order, which the stored
    // format keeps (a test pins it).
    /// Job id.
    pub jid: JobId,
    /// Failures so far minus one (Sidekiq writes 0 on the first failure).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "retry_count_from_sidekiq"
    )]
    pub retry_count: Option<u32>,
    /// Job type name (Sidekiq's `class`).
    pub class: String,
    /// Positional arguments; JSON-native values only.
    pub args: Vec<Value>,
    /// Queue the job runs in.
    #[serde(default = "default_queue")]
    pub queue: String,
    /// Retry policy (`true`, `false` or a maximum count).
    #[serde(default)]
    pub retry: Retry,
    /// When the job was first created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// When the job was last pushed into a queue list; absent while scheduled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_at: Option<Timestamp>,
    /// Message of the last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Kind of the last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_class: Option<String>,
    /// Time of the first failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<Timestamp>,
    /// Time of the last retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_at: Option<Timestamp>,
    /// How often the reaper returned this job from a dead worker (our field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<u32>,
    /// How often this job was put back for later because its class was at its concurrency
    /// limit (our field; it sets the delay of the next deferral and uses up no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred: Option<u32>,
    /// How often a worker that did not know this job's class put it back for later (our
    /// field; it sets the delay of the next attempt and uses up no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_class: Option<u32>,
    /// Every other field, round-tripped unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_queue() -> String {
    "default".to_owned()
}

/// Reads `retry_count`. Sidekiq's "Retry Now" (`SortedEntry#retry`) lowers it by one before
/// pushing the job back, so a job retried by hand after its first failure carries -1; like
/// Sidekiq (which adds one on the next failure), read that as "no failure counted yet".
fn retry_count_from_sidekiq<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<u32>, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.and_then(|n| u32::try_from(n).ok()))
}

impl JobPayload {
    /// Parses stored job JSON.
    pub fn from_json(raw: &[u8]) -> Result<Self> {
        serde_json::from_slice(raw).map_err(Error::MalformedPayload)
    }

    /// Encodes the job as stored JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(Error::Serialize)
    }

    /// Maximum number of retries this job allows.
    pub fn max_retries(&self) -> u32 {
        self.retry.max_retries()
    }

    /// The attempt number of the next run: 1 on the first (Sidekiq's `retry_count` is 0
    /// after the first failure). Saturates on a crafted count.
    ///
    /// ```
    /// # use queue_core::JobPayload;
    /// let mut job: JobPayload = serde_json::from_str(r#"{"class":"A","args":[],"jid":"j1"}"#).unwrap();
    /// assert_eq!(job.attempt(), 1);
    /// job.retry_count = Some(0);
    /// assert_eq!(job.attempt(), 2);
    /// ```
    pub fn attempt(&self) -> u32 {
        self.retry_count.map_or(1, |c| c.saturating_add(2))
    }
}

/// Sidekiq's `retry` field: `true` (25 retries), `false` (none, straight to dead) or a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retry {
    /// `true`: [`DEFAULT_MAX_RETRIES`] retries.
    #[default]
    Default,
    /// An explicit maximum number of retries.
    Max(u32),
    /// `false`: no retry; a failure goes straight to the dead set.
    Disabled,
}

impl Retry {
    /// The maximum number of retries this setting allows.
    ///
    /// ```
    /// use queue_core::Retry;
    /// assert_eq!(Retry::Default.max_retries(), 25);
    /// assert_eq!(Retry::Disabled.max_retries(), 0);
    /// ```
    pub fn max_retries(self) -> u32 {
        match self {
            Retry::Default => DEFAULT_MAX_RETRIES,
            Retry::Max(n) => n,
            Retry::Disabled => 0,
        }
    }
}

impl Serialize for Retry {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Retry::Default => s.serialize_bool(true),
            Retry::Disabled => s.serialize_bool(false),
            Retry::Max(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Retry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Bool(false) => Retry::Disabled,
            Value::Number(n) => match n.as_u64() {
                Some(0) => Retry::Disabled,
                Some(n) => Retry::Max(u32::try_from(n).unwrap_or(u32::MAX)),
                None => Retry::Disabled,
            },
            // `true`, `null` and anything else Sidekiq would treat as truthy.
            _ => Retry::Default,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_round_trip_unchanged() {
        let raw = json!({"class":"X","args":[{"k":"v"}],"jid":"abc","queue":"q","retry":3,
            "created_at":1760000000.25,"tags":["t"],"wrapped":"W","bid":"b1","cattr":{"u":1}});
        let job: JobPayload = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(job.retry, Retry::Max(3));
        let back: Value = serde_json::from_str(&job.to_json().unwrap()).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn reads_sidekiq_8_millisecond_timestamps() {
        let job = JobPayload::from_json(
            br#"{"class":"X","args":[],"jid":"a","created_at":1760000000123,"enqueued_at":1760000000456}"#,
        )
        .unwrap();
        assert_eq!(job.created_at.unwrap().as_secs_f64(), 1_760_000_000.123);
        assert_eq!(job.queue, "default");
        assert_eq!(job.retry, Retry::Default);
    }

    #[test]
    fn retry_now_in_sidekiq_leaves_retry_count_at_minus_one() {
        let job = JobPayload::from_json(
            br#"{"class":"X","args":[],"jid":"a","retry_count":-1,"failed_at":1760000000.5}"#,
        )
        .unwrap();
        assert_eq!(job.retry_count, None);
        assert!(job.failed_at.is_some());
    }

    /// The stored format starts `{"jid":"…",` then, on a retry, `"retry_count":n,`.
    #[test]
    fn to_json_writes_jid_then_retry_count_first() {
        let mut job = JobPayload::from_json(
            br#"{"class":"X","args":[1],"queue":"q","retry_count":null,"tags":["t"],"jid":"ab_c-1"}"#,
        )
        .unwrap();
        assert_eq!(job.retry_count, None);
        let json = job.to_json().unwrap();
        assert!(
            json.starts_with(r#"{"jid":"ab_c-1","class":"X","#),
            "{json}"
        );
        assert!(!json.contains("retry_count"), "{json}");

        for n in [0, 7, u32::MAX] {
            job.retry_count = Some(n);
            let json = job.to_json().unwrap();
            let prefix = format!(r#"{{"jid":"ab_c-1","retry_count":{n},"class":"X","#);
            assert!(json.starts_with(&prefix), "{json}");
            assert_eq!(JobPayload::from_json(json.as_bytes()).unwrap(), job);
        }
    }

    #[test]
    fn non_json_is_a_typed_error() {
        assert!(matches!(
            JobPayload::from_json(b"not json"),
            Err(Error::MalformedPayload(_))
        ));
    }
}
