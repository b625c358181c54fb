//! Plain-text tables: columns padded to their widest cell, as `asynq` and `kubectl` print.

/// A table with a header row.
#[derive(Debug)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
}

/// Longest cell printed; job arguments and errors can be long (the JSON output is whole).
const MAX_CELL_CHARS: usize = 60;

impl Table {
    pub(crate) fn new(header: &[&str]) -> Self {
        Self {
            rows: vec![header.iter().map(|h| (*h).to_owned()).collect()],
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(clean).collect());
    }

    pub(crate) fn print(&self) {
        print!("{}", self.render());
    }

    fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in &self.rows {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

/// One line, control characters shown as `?` (a job's fields are anyone's input and must
/// not move the terminal's cursor), cut to [`MAX_CELL_CHARS`].
fn clean(cell: String) -> String {
    let mut out: String = cell
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(MAX_CELL_CHARS)
        .collect();
    if cell.chars().count() > MAX_CELL_CHARS {
        out.pop();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_control_characters_are_neutralised() {
        let mut t = Table::new(&["QUEUE", "SIZE"]);
        t.row(vec!["default".into(), "3".into()]);
        t.row(vec!["a\u{1b}[2J".into(), "12".into()]);
        assert_eq!(t.render(), "QUEUE    SIZE\ndefault  3\na?[2J    12\n");
        let long = clean("x".repeat(100));
        assert_eq!(long.chars().count(), MAX_CELL_CHARS);
        assert!(long.ends_with('…'));
    }
}
