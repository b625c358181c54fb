//! The logfmt line of a dyno: `at=info target=… msg="job failed" job_id=… error="…"`, the
//! keys the platform's own logs use (`at=`, `msg=`), so log-drain alerts and searches that
//! match them keep working. No timestamp: the platform's log router stamps every line.
//!
//! Written here rather than taken from `tracing-logfmt`: that crate is maintained, but its
//! keys are fixed (`level=`, `message=`), which would change every line apps already parse.

use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// `at=info msg="job failed" job_id=… error="…"`: one line per event, followed by the
/// fields of the spans it happened in, outermost first (a job's `job.id=… job.class=…`).
/// Span fields are written in logfmt too when the subscriber formats them with
/// [`LogfmtFields`], as [`init_logging`](crate::platform::init_logging) sets it up.
#[derive(Debug, Clone, Copy)]
pub struct Logfmt;

/// Formats span fields as logfmt pairs, quoted where needed (a job id from a foreign
/// client may hold spaces or quotes); use it with [`Logfmt`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LogfmtFields;

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut pairs = String::new();
        fields.record(&mut Pairs(&mut pairs));
        write!(writer, "{}", pairs.trim_start())
    }
}

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = format!(
            "at={} target={}",
            meta.level().as_str().to_ascii_lowercase(),
            meta.target()
        );
        event.record(&mut Pairs(&mut line));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(fields) = ext.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    line.push(' ');
                    line.push_str(fields);
                }
            }
        }
        writeln!(writer, "{line}")
    }
}

struct Pairs<'a>(&'a mut String);

impl Visit for Pairs<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        push_pair(self.0, field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        push_pair(self.0, field.name(), &format!("{value:?}"));
    }
}

fn push_pair(line: &mut String, key: &str, value: &str) {
    let key = if key == "message" { "msg" } else { key };
    let needs_quotes = value.is_empty()
        || value
            .chars()
            .any(|c| c == '"' || c == '=' || unsafe_char(c) || c == ' ');
    if !needs_quotes {
        let _ = write!(line, " {key}={value}");
        return;
    }
    let _ = write!(line, " {key}=\"");
    for c in value.chars() {
        let _ = match c {
            '\\' => line.write_str("\\\\"),
            '"' => line.write_str("\\\""),
            '\n' => line.write_str("\\n"),
            '\r' => line.write_str("\\r"),
            '\t' => line.write_str("\\t"),
            c if unsafe_char(c) => write!(line, "\\u{:04x}", u32::from(c)),
            c => line.write_char(c),
        };
    }
    line.push('"');
}

/// A character no log line may hold raw: a control character (a carriage return that some
/// shippers split lines on, the ESC of a terminal escape) or a separator other than the
/// plain space (a tab splits a logfmt pair; U+2028 breaks lines in some viewers). Values
/// come from jobs, which are untrusted.
fn unsafe_char(c: char) -> bool {
    c.is_control() || (c.is_whitespace() && c != ' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_values_that_need_it() {
        let mut line = String::new();
        push_pair(&mut line, "message", "job failed");
        push_pair(&mut line, "job_id", "abc");
        push_pair(&mut line, "error", "say \"hi\"");
        assert_eq!(line, r#" msg="job failed" job_id=abc error="say \"hi\"""#);
    }

    #[test]
    fn control_characters_from_a_job_cannot_forge_a_line_or_a_terminal_escape() {
        // A foreign client's job id or a handler's error text is untrusted: a carriage
        // return starts a new line for some log shippers, ESC drives the terminal of
        // whoever tails the logs, a tab splits a pair for logfmt parsers.
        let mut line = String::new();
        push_pair(&mut line, "job_id", "abc\rat=error");
        push_pair(&mut line, "class", "X\u{1b}[2J\u{7}");
        push_pair(&mut line, "error", "a\tb\u{2028}c");
        assert_eq!(
            line,
            r#" job_id="abc\rat=error" class="X\u001b[2J\u0007" error="a\tb\u2028c""#
        );
        assert!(!line.chars().any(|c| c.is_control() || c == '\u{2028}'));
    }
}
