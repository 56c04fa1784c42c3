//! The `html` and `pdf` formatters through the real binary and the built
//! plugin libraries, on the hard cases of `common::hard_table()` (written as
//! CSV, read by the csv loader).
//!
//! - Golden file: `tests/golden/hard.html` is the html export with default
//!   options. After an intended change of output, regenerate it with
//!   `UPDATE_GOLDEN=1 cargo test --release -p export-host --test formats_report`
//!   and review the diff.
//! - HTML read-back: the page is parsed by Python's standard `html.parser`
//!   (run through `python3`), and every header and data cell must come back
//!   as the input value, character for character (CRLF included).
//! - PDF read-back: `pdftotext` from poppler-utils
//!   (`apt-get install poppler-utils`), in its reading-order mode, must find
//!   every *short* value of the input, compared with all whitespace removed
//!   on both sides (a cell may wrap, and pdftotext keeps a wrapped cell's
//!   lines together but puts a line break between them); see
//!   [`short_value`] for exactly which values those are. Long values are
//!   cut after `max_cell_lines` lines, so for them only their first word is
//!   looked for. Both tools must be installed: the tests fail, never skip,
//!   without them.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::Write as _;
use std::process::{Command, Stdio};

/// File names of the libraries these tests load.
const HTML_LIB: &str = "libexport_html.so";
const PDF_LIB: &str = "libexport_pdf.so";

/// A sandbox with the csv, html and pdf plugins and `data/hard.csv`; the
/// html plugin's `templates_dir` is the sandbox's `templates/`.
fn hard_sandbox() -> (Sandbox, Table) {
    hard_sandbox_with(|sandbox| {
        let templates = sandbox.path().join("templates");
        std::fs::create_dir(&templates).expect("creating templates/");
        let mut config = toml::Table::new();
        config.insert(
            "templates_dir".into(),
            toml::Value::String(templates.to_str().expect("UTF-8 path").to_owned()),
        );
        vec![
            Entry::new("html", HTML_LIB).set("config", config),
            Entry::new("pdf", PDF_LIB),
        ]
    })
}

// ---------------------------------------------------------------------------
// HTML

/// Parses an HTML page with Python's `html.parser`: every table's header
/// cells and body rows (cell texts with character references decoded), and
/// the set of tag names seen.
const PARSE_HTML: &str = r#"
import json, sys
from html.parser import HTMLParser

class Tables(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.tags = [], set()
        self.row = self.cell = None
        self.in_head = False
    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        if tag == "table":
            self.tables.append({"header": None, "rows": []})
        elif tag == "thead":
            self.in_head = True
        elif tag == "tbody":
            self.in_head = False
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = []
    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.row.append("".join(self.cell))
            self.cell = None
        elif tag == "tr":
            table = self.tables[-1]
            if self.in_head:
                table["header"] = self.row
            else:
                table["rows"].append(self.row)
            self.row = None
    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)

parser = Tables()
parser.feed(sys.stdin.buffer.read().decode("utf-8"))
parser.close()
json.dump({"tables": parser.tables, "tags": sorted(parser.tags)}, sys.stdout)
"#;

/// Runs a Python script with `input` on standard input; returns its output
/// as JSON. Fails (never skips) when `python3` is missing.
fn python(script: &str, input: &[u8]) -> Value {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 must be installed to read the HTML back");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("feeding python3");
    let output = child.wait_with_output().expect("python3 ran");
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the script prints JSON")
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

#[test]
fn html_matches_the_golden_file() {
    let (sandbox, _) = hard_sandbox();
    let page = export_hard(&sandbox, "html", json!({}), &[]);
    assert_golden("hard.html", &page, "formats_report");
}

#[test]
fn html_reads_back_cell_by_cell() {
    let (sandbox, table) = hard_sandbox();
    // Small batches, so rows cross batch boundaries.
    let page = export_hard(
        &sandbox,
        "html",
        json!({"title": "Hard <cases> & \"more\""}),
        &["--batch-size", "4"],
    );
    let text = std::str::from_utf8(&page).expect("UTF-8");
    assert!(text.starts_with("<!DOCTYPE html>"), "a standalone page");
    assert!(text.contains("<title>Hard &lt;cases&gt; &amp; &quot;more&quot;</title>"));
    for external in ["<link", "<script", "src=", "@import", "url("] {
        assert!(
            !text.contains(external),
            "the page loads nothing: {external}"
        );
    }
    let parsed = python(PARSE_HTML, &page);
    let tags = strings(&parsed["tags"]);
    assert!(!tags.contains(&"script".to_owned()), "{tags:?}");
    let tables = parsed["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 1, "one table without section_by");
    assert_eq!(strings(&tables[0]["header"]), table.header, "header");
    let rows = tables[0]["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), table.rows.len(), "row count");
    for (n, (got, want)) in rows.iter().zip(&table.rows).enumerate() {
        let got = strings(got);
        assert_eq!(got.len(), want.len(), "row {n}: cell count");
        for (column, (got, want)) in got.iter().zip(want).enumerate() {
            assert!(
                got == want,
                "row {n}, column {column}: {got:.200?} != {want:.200?}"
            );
        }
    }
}

#[test]
fn html_sections_and_user_templates() {
    let (sandbox, table) = hard_sandbox();
    let page = export_hard(
        &sandbox,
        "html",
        json!({"section_by": "conversation_id"}),
        &[],
    );
    let parsed = python(PARSE_HTML, &page);
    let tables = parsed["tables"].as_array().expect("tables");
    // One table per run of equal conversation ids.
    let mut runs = 0;
    let mut previous: Option<&String> = None;
    for row in &table.rows {
        if previous != Some(&row[1]) {
            runs += 1;
        }
        previous = Some(&row[1]);
    }
    assert_eq!(tables.len(), runs);
    let rows: usize = tables
        .iter()
        .map(|t| t["rows"].as_array().expect("rows").len())
        .sum();
    assert_eq!(rows, table.rows.len());

    // A user template from the configured folder, extending the built-in one.
    std::fs::write(
        sandbox.path().join("templates/brand.html"),
        "{% extends \"report\" %}\n{% block header %}<h1 class=\"brand\">ACME: {{ title }}</h1>{% endblock %}\n",
    )
    .expect("writing the template");
    let page = export_hard(
        &sandbox,
        "html",
        json!({"template": "brand.html", "title": "<Q3>"}),
        &[],
    );
    let text = String::from_utf8(page.clone()).expect("UTF-8");
    assert!(
        text.contains("<h1 class=\"brand\">ACME: &lt;Q3&gt;</h1>"),
        "{text:.2000}"
    );
    let parsed = python(PARSE_HTML, &page);
    assert_eq!(
        parsed["tables"][0]["rows"].as_array().expect("rows").len(),
        table.rows.len()
    );
}

#[test]
fn html_template_names_are_checked() {
    let (sandbox, _) = hard_sandbox();
    std::fs::write(sandbox.path().join("secret.html"), "secret").expect("writing");
    let selector = json!({"path": "hard.csv"});
    for name in ["../secret.html", "/etc/passwd", "sub/x.html"] {
        let output = sandbox.export("csv", "html", &selector, &json!({"template": name}), &[]);
        refused(&output, Exit::Input, &["template"]);
    }
    let output = sandbox.export(
        "csv",
        "html",
        &selector,
        &json!({"template": "nope.html"}),
        &[],
    );
    refused(&output, Exit::Refused, &["nope.html", "report, table"]);
    let output = sandbox.export("csv", "html", &selector, &json!({"colour": "red"}), &[]);
    refused(&output, Exit::Input, &["colour"]);
}

#[test]
fn html_config_is_validated_by_its_schema() {
    let sandbox = Sandbox::empty();
    let mut config = toml::Table::new();
    config.insert("templates_folder".into(), toml::Value::String("x".into()));
    sandbox.register(&[
        sandbox.csv(),
        Entry::new("html", HTML_LIB).set("config", config),
    ]);
    sandbox.put("hard.csv", write_csv(&hard_table()));
    let output = sandbox.export("csv", "html", &json!({"path": "hard.csv"}), &json!({}), &[]);
    refused(&output, Exit::Refused, &["templates_folder"]);
}

#[test]
fn compressed_html_decompresses_to_the_plain_bytes() {
    let (sandbox, _) = hard_sandbox();
    assert_compression_round_trips(&sandbox, "html");
}

// ---------------------------------------------------------------------------
// PDF

/// `pdftotext` of a PDF in reading order, pages separated by form feeds.
/// Fails (never skips) when pdftotext is missing.
fn pdftotext(sandbox: &Sandbox, pdf: &[u8]) -> String {
    let path = sandbox.path().join("read-back.pdf");
    std::fs::write(&path, pdf).expect("writing the PDF");
    let output = Command::new("pdftotext")
        .args(["-enc", "UTF-8"])
        .arg(&path)
        .arg("-")
        .output()
        .expect("pdftotext must be installed: apt-get install poppler-utils");
    assert!(
        output.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("pdftotext -enc UTF-8 prints UTF-8")
}

/// `text` without any whitespace.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect()
}

/// Whether the PDF test looks for `value` whole: it is not empty, one line
/// (no CR or LF), at most 32 characters, written left to right (no Hebrew
/// or Arabic letters, which pdftotext may put in another order), and drawn
/// by the embedded fonts (no emoji). Every other value is long (or may be
/// cut), so only its first word is looked for.
fn short_value(value: &str) -> bool {
    let rtl = |c: char| ('\u{0590}'..='\u{08FF}').contains(&c);
    let emoji =
        |c: char| c >= '\u{1F000}' || ('\u{2600}'..='\u{27BF}').contains(&c) || c == '\u{200D}';
    !value.trim().is_empty()
        && !value.contains(['\r', '\n'])
        && value.chars().count() <= 32
        && !value.chars().any(|c| rtl(c) || emoji(c))
}

#[test]
fn a_pdf_past_the_configured_max_rows_fails_and_leaves_no_file() {
    let sandbox = Sandbox::empty();
    let mut config = toml::Table::new();
    config.insert("max_rows".into(), toml::Value::Integer(2));
    sandbox.register(&[
        sandbox.csv(),
        Entry::new("pdf", PDF_LIB).set("config", config),
    ]);
    sandbox.put("hard.csv", write_csv(&hard_table()));
    let output = sandbox.export(
        "csv",
        "pdf",
        &json!({"path": "hard.csv"}),
        &json!({}),
        &["-o", "big.pdf"],
    );
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("more than 2 rows"), "{stderr}");
    assert!(stderr.contains("[plugins.pdf.config] max_rows"), "{stderr}");
    assert!(!sandbox.path().join("big.pdf").exists(), "no file is left");
}

#[test]
fn pdf_text_holds_the_values() {
    let (sandbox, table) = hard_sandbox();
    let title = "Hard cases — Ελληνικά, Кириллица, 日本語";
    let pdf = export_hard(&sandbox, "pdf", json!({ "title": title }), &[]);
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("/FontFile2"), "the font is embedded");
    let text = pdftotext(&sandbox, &pdf);
    let pages: Vec<String> = text
        .split('\u{c}')
        .map(squeeze)
        .filter(|page| !page.is_empty())
        .collect();
    assert!(
        pages.len() >= 2,
        "the 70 KB cell's row goes to its own page"
    );
    for (n, page) in pages.iter().enumerate() {
        assert!(page.contains(&squeeze(title)), "title on page {}", n + 1);
        assert!(
            page.contains(&format!("Page{}", n + 1)),
            "number on page {}",
            n + 1
        );
        for name in &table.header {
            assert!(
                page.contains(name.as_str()),
                "header {name} on page {}",
                n + 1
            );
        }
    }
    let all = squeeze(&text);
    let mut short = 0;
    for value in table.rows.iter().flatten() {
        let wanted = if short_value(value) {
            short += 1;
            squeeze(value)
        } else {
            match value.split_whitespace().next() {
                Some(word) if short_value(word) => word.to_owned(),
                _ => continue,
            }
        };
        assert!(all.contains(&wanted), "{wanted:?} is not in the PDF's text");
    }
    assert!(short > 150, "most values are short: {short}");
}

#[test]
fn pdf_pages_follow_batches() {
    // Batches of 4 rows: pages fill across batch boundaries, and every row
    // is on exactly one page.
    let (sandbox, table) = hard_sandbox();
    let pdf = export_hard(&sandbox, "pdf", json!({}), &["--batch-size", "4"]);
    let text = squeeze(&pdftotext(&sandbox, &pdf));
    for created_at in table
        .rows
        .iter()
        .map(|row| &row[3])
        .filter(|v| !v.is_empty())
    {
        assert_eq!(text.matches(created_at.as_str()).count(), 1, "{created_at}");
    }
}

#[test]
fn pdf_options_reach_the_formatter() {
    let (sandbox, _) = hard_sandbox();
    let pdf = export_hard(
        &sandbox,
        "pdf",
        json!({"page_size": "letter", "orientation": "portrait", "font_size": 6, "max_cell_lines": 2}),
        &[],
    );
    let raw = String::from_utf8_lossy(&pdf);
    assert!(raw.contains("/MediaBox [0 0 612 792]"), "letter portrait");
    let selector = json!({"path": "hard.csv"});
    for options in [
        json!({"page_size": "a5"}),
        json!({"font_size": 100}),
        json!({"max_cell_lines": 0}),
        json!({"margins": 3}),
    ] {
        let output = sandbox.export("csv", "pdf", &selector, &options, &[]);
        refused(&output, Exit::Input, &[]);
    }
}
