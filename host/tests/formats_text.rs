//! The `markdown` and `txt` formatters through the real binary and the
//! built plugin libraries, on the hard cases of `common::hard_table()`
//! (written as CSV, read by the csv loader).
//!
//! - Golden files: `tests/golden/hard.md` and `tests/golden/hard.txt` are
//!   the exports with default options. After an intended change of output,
//!   regenerate them with
//!   `UPDATE_GOLDEN=1 cargo test --release -p export-host --test formats_text`
//!   and review the diff.
//! - Markdown read-back: the produced table is parsed by cmark-gfm, GitHub's
//!   own GFM implementation (Python package `cmarkgfm`, run through
//!   `python3`; `pip install cmarkgfm`), and every cell must come back as the
//!   input value, character for character.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;

/// File names of the libraries these tests load.
const MARKDOWN_LIB: &str = "libexport_markdown.so";
const TXT_LIB: &str = "libexport_txt.so";

/// A sandbox with the csv, markdown and txt plugins and `data/hard.csv`.
fn hard_sandbox() -> (Sandbox, Table) {
    hard_sandbox_with(|_| {
        vec![
            Entry::new("markdown", MARKDOWN_LIB),
            Entry::new("txt", TXT_LIB),
        ]
    })
}

// ---------------------------------------------------------------------------
// Markdown

/// Parses GFM with cmark-gfm and returns, per table, its rows of cell texts
/// (`<br>` read as a line feed), and the texts of the level-1 headings.
const READ_GFM: &str = r#"
import json, sys
from html.parser import HTMLParser
import cmarkgfm
from cmarkgfm.cmark import Options

class Reader(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.headings = [], []
        self.row = self.cell = self.heading = None
    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "br" and self.cell is not None:
            self.cell.append("\n")
        elif tag == "h1":
            self.heading = []
    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.row.append("".join(self.cell))
            self.cell = None
        elif tag == "tr":
            self.tables[-1].append(self.row)
            self.row = None
        elif tag == "h1":
            self.headings.append("".join(self.heading))
            self.heading = None
    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        elif self.heading is not None:
            self.heading.append(data)

with open(sys.argv[1], encoding="utf-8", newline="") as f:
    source = f.read()
html = cmarkgfm.github_flavored_markdown_to_html(source, options=Options.CMARK_OPT_UNSAFE)
reader = Reader()
reader.feed(html)
reader.close()
json.dump({"tables": reader.tables, "headings": reader.headings}, sys.stdout)
"#;

/// What cmark-gfm reads in a Markdown document.
struct Gfm {
    tables: Vec<Vec<Vec<String>>>,
    headings: Vec<String>,
}

fn read_gfm(sandbox: &Sandbox, markdown: &[u8]) -> Gfm {
    let path = sandbox.path().join("read-back.md");
    std::fs::write(&path, markdown).expect("writing the Markdown to read");
    let output = Command::new("python3")
        .arg("-c")
        .arg(READ_GFM)
        .arg(&path)
        .output()
        .expect("running python3 (install Python 3)");
    assert!(
        output.status.success(),
        "reading the Markdown with cmark-gfm failed (pip install cmarkgfm):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed: Value = serde_json::from_slice(&output.stdout).expect("the reader prints JSON");
    Gfm {
        tables: serde_json::from_value(parsed["tables"].clone()).expect("tables"),
        headings: serde_json::from_value(parsed["headings"].clone()).expect("headings"),
    }
}

/// Asserts that a table read back is the CSV table, cell by cell.
fn assert_table_is(read: &[Vec<String>], table: &Table) {
    let (header, rows) = read.split_first().expect("a header row");
    assert_eq!(header, &table.header, "header cells");
    assert_eq!(rows.len(), table.rows.len(), "row count");
    for (n, (got, want)) in rows.iter().zip(&table.rows).enumerate() {
        assert_eq!(got.len(), want.len(), "row {n}: cell count");
        for (column, (got, want)) in got.iter().zip(want).enumerate() {
            assert!(
                got == want,
                "row {n}, column {} ({column}): read back {got:.200?}, wrote {want:.200?}",
                table.header[column]
            );
        }
    }
}

#[test]
fn markdown_matches_the_golden_file() {
    let (sandbox, _) = hard_sandbox();
    let markdown = export_hard(&sandbox, "markdown", json!({}), &[]);
    assert_golden("hard.md", &markdown, "formats_text");
    // Rows are written as batches arrive: small batches give the same bytes.
    let small = export_hard(&sandbox, "markdown", json!({}), &["--batch-size", "3"]);
    assert!(small == markdown, "batch size changed the Markdown");
}

#[test]
fn markdown_reads_back_value_by_value() {
    let (sandbox, table) = hard_sandbox();
    let markdown = export_hard(&sandbox, "markdown", json!({}), &[]);
    let text = std::str::from_utf8(&markdown).expect("Markdown is UTF-8");
    // One line per row: header, delimiter row, then every record.
    assert_eq!(text.lines().count(), 2 + table.rows.len());
    assert!(!text.contains('\r'), "no raw carriage return");
    let read = read_gfm(&sandbox, &markdown);
    assert_eq!(read.tables.len(), 1, "exactly one table");
    assert_table_is(&read.tables[0], &table);
}

#[test]
fn markdown_report_reads_back_with_its_title() {
    let (sandbox, table) = hard_sandbox();
    let report = export_hard(
        &sandbox,
        "markdown",
        json!({"template": "report", "title": "Conversations | *May*"}),
        &["--batch-size", "5"],
    );
    let text = std::str::from_utf8(&report).expect("Markdown is UTF-8");
    assert!(
        text.ends_with(&format!("\n\n{} rows.\n", table.rows.len())),
        "{:.300}",
        &text[text.len().saturating_sub(300)..]
    );
    let read = read_gfm(&sandbox, &report);
    assert_eq!(read.headings, ["Conversations | *May*"]);
    assert_eq!(read.tables.len(), 1, "exactly one table");
    assert_table_is(&read.tables[0], &table);
}

#[test]
fn markdown_template_mistakes_are_refused_before_any_output() {
    let (sandbox, _) = hard_sandbox();
    let output = sandbox.export(
        "csv",
        "markdown",
        &json!({"path": "hard.csv"}),
        &json!({"template": {"after": "{{ rowcount }}"}}),
        &["-o", "never.md"],
    );
    refused(&output, Exit::Input, &["undefined", "row_count"]);
    assert!(!sandbox.path().join("never.md").exists());
}

// ---------------------------------------------------------------------------
// Plain text

#[test]
fn txt_matches_the_golden_file() {
    let (sandbox, table) = hard_sandbox();
    let txt = export_hard(&sandbox, "txt", json!({}), &[]);
    assert_golden("hard.txt", &txt, "formats_text");
    let text = std::str::from_utf8(&txt).expect("text is UTF-8");
    // Rules, header, one `|` line per row; continuations are `:` lines.
    let lines: Vec<&str> = text.lines().collect();
    let rule = lines[0];
    assert!(rule.starts_with("+-") && rule.ends_with("-+"), "{rule}");
    assert_eq!(lines[2], rule);
    assert_eq!(lines.last(), Some(&rule));
    let rows = lines[3..lines.len() - 1]
        .iter()
        .filter(|l| l.starts_with("| "))
        .count();
    assert_eq!(rows, table.rows.len(), "one |-line per row");
    for line in &lines[3..lines.len() - 1] {
        let (first, last) = (line.chars().next(), line.chars().last());
        assert!(
            matches!(
                (first, last),
                (Some('|'), Some('|')) | (Some(':'), Some(':'))
            ),
            "{line:.200}"
        );
        assert!(!line.contains(['\r', '\t', '\u{1b}']), "{line:.200?}");
    }
}

/// The text a `lines` layout cell shows for a value: line breaks as `↵`,
/// tabs as spaces to the next multiple of 4 (the test data keeps ASCII
/// before its tabs, so counting chars is counting columns).
fn one_line(value: &str) -> String {
    let mut out = String::new();
    let value = value.replace("\r\n", "\n").replace('\r', "\n");
    for (n, line) in value.split('\n').enumerate() {
        if n > 0 {
            out.push('↵');
        }
        let mut column = 0;
        let mut ascii = true;
        for c in line.chars() {
            if c == '\t' {
                assert!(ascii, "test data: only ASCII before a tab in {line:?}");
                let spaces = 4 - column % 4;
                out.extend(std::iter::repeat_n(' ', spaces));
                column += spaces;
            } else {
                out.push(c);
                column += 1;
                ascii &= c.is_ascii();
            }
        }
    }
    out
}

#[test]
fn txt_lines_layout_keeps_one_row_per_line() {
    let (sandbox, table) = hard_sandbox();
    let txt = export_hard(
        &sandbox,
        "txt",
        json!({"layout": "lines"}),
        &["--batch-size", "4"],
    );
    let text = std::str::from_utf8(&txt).expect("text is UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1 + table.rows.len(),
        "header and one line per row"
    );
    assert_eq!(lines[0], table.header.join("\t"));
    for (n, (line, row)) in lines[1..].iter().zip(&table.rows).enumerate() {
        let cells: Vec<&str> = line.split('\t').collect();
        let want: Vec<String> = row.iter().map(|v| one_line(v)).collect();
        assert_eq!(cells, want, "row {n}");
    }
}

// ---------------------------------------------------------------------------
// Compression

#[test]
fn compressed_exports_decompress_to_the_plain_bytes() {
    let (sandbox, _) = hard_sandbox();
    for format in ["markdown", "txt"] {
        assert_compression_round_trips(&sandbox, format);
    }
}
