//! The README's Middleware, Testing and Tracing examples are copies of doc tests (which
//! compile and run): every line of their Rust blocks must appear in those doc tests, so the
//! README cannot drift from code that compiles.

use std::collections::HashSet;

const README: &str = include_str!("../../README.md");
const SOURCES: [&str; 4] = [
    include_str!("../src/middleware.rs"),
    include_str!("../src/hooks.rs"),
    include_str!("../src/testing.rs"),
    include_str!("../../queue-core/src/otel.rs"),
];

#[test]
fn readme_examples_are_doc_tests() {
    let doc_lines: HashSet<&str> = SOURCES
        .iter()
        .flat_map(|s| s.lines())
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .map(|l| l.trim().trim_start_matches("# ").trim())
        .collect();
    let start = README.find("## Middleware\n").unwrap();
    let end = start + README[start..].find("### Worker metrics").unwrap();
    let mut checked = 0;
    let mut in_rust = false;
    for line in README[start..end].lines() {
        match line.trim() {
            "```rust" => in_rust = true,
            "```" => in_rust = false,
            l if in_rust && !l.is_empty() => {
                assert!(
                    doc_lines.contains(l),
                    "README line not in any doc test: {l}"
                );
                checked += 1;
            }
            _ => {}
        }
    }
    assert!(checked > 60, "only {checked} lines checked");
}
