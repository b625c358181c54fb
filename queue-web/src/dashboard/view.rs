//! What a page shows of one stored entry: text only, cut to a bounded length. Escaping is
//! the templates' job (askama escapes every `{{ }}` of an HTML template).

use queue_core::JobId;
use queue_core::inspect::{Entry, ScoredEntry};
use serde_json::Value;

use super::clock;

/// Longest argument list, error message or raw preview shown in a listing, in characters.
pub const MAX_FIELD_CHARS: usize = 500;
/// Longest backtrace shown, in characters.
pub const MAX_BACKTRACE_CHARS: usize = 8_000;
/// Largest malformed entry the dashboard offers to delete: its bytes travel hex-encoded in
/// the delete form (a malformed entry has no id to name it by).
pub const MAX_DELETABLE_RAW_BYTES: usize = 64 * 1024;

/// One listed entry, ready for a template.
#[derive(Debug, Clone, Default)]
pub(crate) struct EntryView {
    /// The job id when it is one the dashboard can put into a URL or form.
    pub(crate) jid: Option<String>,
    /// The id as stored, for display (may be anything a foreign client wrote).
    pub(crate) jid_text: String,
    pub(crate) class: String,
    pub(crate) queue: String,
    pub(crate) args: String,
    pub(crate) attempt: u32,
    /// The set's score (run time, retry time, time of death), printed.
    pub(crate) at: String,
    pub(crate) at_relative: String,
    /// The score exactly as the listing read it, for the action forms.
    pub(crate) score: String,
    pub(crate) enqueued_at: String,
    pub(crate) error_class: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) failed_at: Option<String>,
    pub(crate) backtrace: Option<String>,
    /// Why the entry is not job JSON, when it is not.
    pub(crate) malformed: Option<String>,
    /// The first bytes of a malformed entry, lossily decoded.
    pub(crate) raw_preview: String,
    /// The entry's bytes as hex when the forms must name it by its bytes (no usable id).
    pub(crate) raw_hex: Option<String>,
}

impl EntryView {
    /// The view of a sorted-set entry, with times relative to `now` (epoch seconds).
    pub(crate) fn scored(e: &ScoredEntry, now: f64) -> Self {
        let at = e.at.as_secs_f64();
        Self {
            at: clock::utc(at),
            at_relative: clock::relative(at, now),
            score: format!("{at}"),
            ..Self::of(&e.entry, now)
        }
    }

    /// The view of a list entry (queue or in-flight).
    pub(crate) fn of(entry: &Entry, now: f64) -> Self {
        match entry {
            Entry::Job { job, raw } => {
                let jid = JobId::parse(job.jid.as_str())
                    .ok()
                    .map(|j| j.as_str().to_owned());
                let raw_hex = jid.is_none().then(|| deletable_hex(raw)).flatten();
                Self {
                    jid,
                    jid_text: cut(job.jid.as_str(), 80),
                    class: cut(&job.class, 200),
                    queue: cut(&job.queue, 200),
                    args: cut(
                        &serde_json::to_string(&job.args).unwrap_or_default(),
                        MAX_FIELD_CHARS,
                    ),
                    attempt: job.attempt(),
                    enqueued_at: job
                        .enqueued_at
                        .or(job.created_at)
                        .map(|t| clock::relative(t.as_secs_f64(), now))
                        .unwrap_or_default(),
                    error_class: job.error_class.as_deref().map(|c| cut(c, 200)),
                    error_message: job
                        .error_message
                        .as_deref()
                        .map(|m| cut(m, MAX_FIELD_CHARS)),
                    failed_at: job.failed_at.map(|t| clock::utc(t.as_secs_f64())),
                    backtrace: job.extra.get("error_backtrace").and_then(backtrace),
                    raw_hex,
                    ..Self::default()
                }
            }
            Entry::Malformed(m) => Self {
                jid_text: queue_core::JobPayload::recover_jid(&m.raw)
                    .map(|j| cut(j.as_str(), 80))
                    .unwrap_or_default(),
                malformed: Some(cut(&m.reason, 200)),
                raw_preview: cut(
                    &String::from_utf8_lossy(&m.raw[..m.raw.len().min(4 * MAX_FIELD_CHARS)]),
                    MAX_FIELD_CHARS,
                ),
                raw_hex: deletable_hex(&m.raw),
                ..Self::default()
            },
        }
    }

    /// Whether the action forms can name this entry (by id, or by its bytes).
    pub(crate) fn actionable(&self) -> bool {
        self.jid.is_some() || self.raw_hex.is_some()
    }
}

fn deletable_hex(raw: &[u8]) -> Option<String> {
    (raw.len() <= MAX_DELETABLE_RAW_BYTES).then(|| super::signing::hex(raw))
}

/// A backtrace as Sidekiq stores it: an array of lines (or, compressed, a string shown as is).
fn backtrace(v: &Value) -> Option<String> {
    let text = match v {
        Value::Array(lines) => lines
            .iter()
            .map(|l| l.as_str().map_or_else(|| l.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join("\n"),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    Some(cut(&text, MAX_BACKTRACE_CHARS))
}

/// `text` cut to `max` characters, with `…` when something was cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_cut_on_char_boundaries() {
        assert_eq!(cut("héllo", 2), "hé…");
        assert_eq!(cut("hi", 2), "hi");
    }

    #[test]
    fn malformed_entries_keep_their_bytes_for_delete() {
        let v = EntryView::of(&Entry::parse(b"not json <b>".to_vec()), 0.0);
        assert!(v.malformed.is_some());
        assert_eq!(v.raw_preview, "not json <b>");
        assert_eq!(
            v.raw_hex.as_deref(),
            Some(super::super::signing::hex(b"not json <b>").as_str())
        );
        assert!(v.actionable());
        let job = Entry::parse(
            br#"{"jid":"a1","class":"X","args":[1],"queue":"q","error_backtrace":["l1","l2"]}"#
                .to_vec(),
        );
        let v = EntryView::of(&job, 0.0);
        assert_eq!(v.jid.as_deref(), Some("a1"));
        assert_eq!(v.backtrace.as_deref(), Some("l1\nl2"));
        assert!(v.raw_hex.is_none());
    }
}
