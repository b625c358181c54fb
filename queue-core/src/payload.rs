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
    /// Queue the job runs in (`default` when missing, `null` or empty, as `promote.lua`
    /// reads it).
    #[serde(default = "default_queue", deserialize_with = "queue_or_default")]
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
    /// How often this job was stopped while it ran and handed back to its queue, at a
    /// shutdown or when its worker lost its lease (our field; a job that never finishes
    /// within the shutdown window shows here instead of cycling unseen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_back: Option<u32>,
    /// The processes (`host:pid:nonce`) whose recovery [`recovered`](Self::recovered)
    /// counts, so that a process that only stalled past its lease, and is alive again, is
    /// not counted as one this job killed (our field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_from: Option<Vec<String>>,
    /// Every other field, round-tripped unchanged.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_queue() -> String {
    "default".to_owned()
}

/// Reads `queue`. Sidekiq's client refuses to push a `null` or empty queue, but its processor
/// runs whatever it fetched from a queue list without looking at the field, so a foreign job
/// with `"queue": null` runs. Reading it as `default`, as `promote.lua` does, runs it too,
/// instead of burying a job that Lua already marked running.
fn queue_or_default<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|q| !q.is_empty())
        .unwrap_or_else(default_queue))
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

    /// The `jid` of an entry that [`JobPayload::from_json`] refuses, when it has one: the
    /// first string value of a top-level `"jid"` key, found without parsing the rest.
    ///
    /// Lua reads more than serde does (nesting deeper than serde's 128 levels, `NaN`, a
    /// valid prefix before garbage), so `ack_fetch.lua` may have marked such an entry's
    /// status record `running`; whoever buries the entry finds that record with this id.
    /// The scan is linear and keeps no stack, whatever the nesting.
    ///
    /// ```
    /// # use queue_core::JobPayload;
    /// let deep = format!(r#"{{"args":{}{},"jid":"j1","n":NaN}}"#, "[".repeat(500), "]".repeat(500));
    /// assert_eq!(JobPayload::recover_jid(deep.as_bytes()).unwrap().as_str(), "j1");
    /// assert!(JobPayload::recover_jid(br#"{"jid":12,"args":{"jid":"inner"}}"#).is_none());
    /// ```
    pub fn recover_jid(raw: &[u8]) -> Option<JobId> {
        top_level_string(raw, "jid").map(JobId::from_stored)
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

/// The first string value of top-level key `key` in the JSON-like object `raw`, scanning
/// tokens only: strings (with escapes) are skipped whole, brackets counted. Anything that
/// stops the scan (not an object, an unterminated string, unbalanced brackets) gives `None`.
fn top_level_string(raw: &[u8], key: &str) -> Option<String> {
    let mut i = skip_whitespace(raw, 0);
    if raw.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    // Depth of the container the scan is in: 1 is the job object itself.
    let mut depth: usize = 1;
    let mut at_key = true;
    while let Some(&b) = raw.get(i) {
        match b {
            b'"' => {
                let end = string_end(raw, i)?;
                if depth == 1 && at_key {
                    at_key = false;
                    let colon = skip_whitespace(raw, end + 1);
                    if raw.get(colon) != Some(&b':') {
                        return None;
                    }
                    let value = skip_whitespace(raw, colon + 1);
                    let name = serde_json::from_slice::<String>(&raw[i..=end]).ok();
                    if name.as_deref() == Some(key) && raw.get(value) == Some(&b'"') {
                        let value_end = string_end(raw, value)?;
                        if let Ok(s) = serde_json::from_slice::<String>(&raw[value..=value_end]) {
                            return Some(s);
                        }
                    }
                    i = value;
                } else {
                    i = end + 1;
                }
            }
            b'{' | b'[' => {
                depth = depth.checked_add(1)?;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1).filter(|d| *d > 0)?;
                i += 1;
            }
            b',' => {
                at_key = depth == 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

fn skip_whitespace(raw: &[u8], mut i: usize) -> usize {
    while raw.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Index of the quote that closes the string opening at `raw[start]`.
fn string_end(raw: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    loop {
        match raw.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
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
    fn a_null_or_empty_queue_reads_as_default() {
        for queue in ["null", r#""""#] {
            let raw = format!(r#"{{"class":"X","args":[],"jid":"a","queue":{queue}}}"#);
            assert_eq!(
                JobPayload::from_json(raw.as_bytes()).unwrap().queue,
                "default"
            );
        }
        assert!(JobPayload::from_json(br#"{"class":"X","args":[],"jid":"a","queue":5}"#).is_err());
    }

    #[test]
    fn the_jid_of_an_entry_serde_refuses_is_recovered_from_the_top_level_only() {
        let deep = format!(
            r#"{{"class":"X","args":[{}1{}],"jid":"deep"}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(JobPayload::from_json(deep.as_bytes()).is_err());
        let cases: Vec<(Vec<u8>, Option<&str>)> = vec![
            (deep.into_bytes(), Some("deep")),
            (br#"{"jid":"a","retry_count":NaN}"#.to_vec(), Some("a")),
            (
                br#" { "x" : "}\"jid\":\"no\"", "jid" : "b\u0041" } "#.to_vec(),
                Some("bA"),
            ),
            (br#"{"jid":"c", truncated"#.to_vec(), Some("c")),
            (b"{\"x\":\"\xff\xfe\",\"jid\":\"d\"}".to_vec(), Some("d")),
            (br#"{"args":[{"jid":"inner"}],"jid":7}"#.to_vec(), None),
            (br#"{"args":{"jid":"inner"}}"#.to_vec(), None),
            (br#"{"jid":null,"jid":"second"}"#.to_vec(), Some("second")),
            (br#"["jid","x"]"#.to_vec(), None),
            (br#"{"x":"unterminated, "jid":"e"}"#.to_vec(), None),
            (br#"{"x":]]], "jid":"f"}"#.to_vec(), None),
            (b"not json".to_vec(), None),
            (Vec::new(), None),
            (b"{\"jid\":\"\xff\"}".to_vec(), None),
        ];
        for (raw, jid) in cases {
            let got = JobPayload::recover_jid(&raw);
            assert_eq!(
                got.as_ref().map(JobId::as_str),
                jid,
                "{}",
                String::from_utf8_lossy(&raw)
            );
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
