//! `prelude.lua`: the helpers scripts share. A script gets only the helpers it calls, and
//! what those need, in front of its own text: Redis runs a script's whole text on every call,
//! and each `local function` it defines costs that call (about 0.03 µs each; all of them,
//! 0.45 µs, a tenth of a single enqueue's Redis time).

use std::collections::BTreeSet;

/// The helpers' source.
const PRELUDE: &str = include_str!("prelude.lua");
/// The line that starts each helper: `-- @helper NAME [needs NAME ...]`.
const MARK: &str = "-- @helper ";

/// One helper of the prelude.
struct Helper<'a> {
    name: &'a str,
    needs: Vec<&'a str>,
    text: &'a str,
}

/// The prelude's helpers, in file order (a helper only needs ones above it).
fn helpers() -> Vec<Helper<'static>> {
    let mut helpers = Vec::new();
    let mut rest = PRELUDE;
    // Everything before the first mark is the file's own comment.
    let Some(first) = rest.find(&format!("\n{MARK}")) else {
        return helpers;
    };
    rest = &rest[first + 1..];
    while !rest.is_empty() {
        let end = rest[1..]
            .find(&format!("\n{MARK}"))
            .map_or(rest.len(), |i| i + 2);
        let text = &rest[..end];
        let mark = text.lines().next().unwrap_or_default();
        let mut words = mark.trim_start_matches(MARK).split_whitespace();
        let name = words.next().unwrap_or_default();
        let needs = words.filter(|w| *w != "needs").collect();
        helpers.push(Helper { name, needs, text });
        rest = &rest[end..];
    }
    helpers
}

/// Whether `body` calls `name(` (not as the end of a longer name).
fn calls(body: &str, name: &str) -> bool {
    let call = format!("{name}(");
    body.match_indices(&call).any(|(at, _)| {
        !body[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// `body` with the helpers it calls (and theirs) in front, in the prelude's order.
pub(crate) fn with_prelude(body: &str) -> String {
    let helpers = helpers();
    let mut wanted: BTreeSet<&str> = helpers
        .iter()
        .filter(|h| calls(body, h.name))
        .map(|h| h.name)
        .collect();
    // Needs point upwards, so one pass from the bottom closes the set.
    for helper in helpers.iter().rev() {
        if wanted.contains(helper.name) {
            wanted.extend(helper.needs.iter().copied());
        }
    }
    let mut script = String::with_capacity(body.len() + PRELUDE.len());
    for helper in helpers.iter().filter(|h| wanted.contains(h.name)) {
        script.push_str(helper.text);
        if !helper.text.ends_with('\n') {
            script.push('\n');
        }
    }
    script.push_str(body);
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_helper_is_found_and_needs_only_helpers_above_it() {
        let helpers = helpers();
        let names: Vec<&str> = helpers.iter().map(|h| h.name).collect();
        assert!(names.len() >= 12, "{names:?}");
        for (i, h) in helpers.iter().enumerate() {
            assert!(
                h.text.contains(&format!("local function {}(", h.name)),
                "{}",
                h.name
            );
            for need in &h.needs {
                assert!(
                    names[..i].contains(need),
                    "{} needs {need} from below",
                    h.name
                );
            }
        }
    }

    #[test]
    fn a_script_gets_what_it_calls_and_what_that_needs() {
        let script = with_prelude("local r = refused_unless(KEYS[1], 'list')\nreturn r\n");
        for name in ["refused_unless", "holds", "kind"] {
            assert!(
                script.contains(&format!("local function {name}(")),
                "{name}"
            );
        }
        for name in ["announce", "now_ms", "held_job", "known_id"] {
            assert!(
                !script.contains(&format!("local function {name}(")),
                "{name}"
            );
        }
        assert!(script.ends_with("return r\n"));
        // A longer name that ends like a helper's is not a call of it.
        let plain = with_prelude("local x = my_kind(1)\n");
        assert!(!plain.contains("local function kind("));
    }

    #[test]
    fn a_script_that_calls_nothing_gets_nothing() {
        assert_eq!(with_prelude("return 1\n"), "return 1\n");
    }
}
