//! The typed formats (xlsx, parquet) and the csv options (BOM, quote styles,
//! formula guard), through the real binary and the built plugins, read back
//! by independent readers: Python's openpyxl, pyarrow and csv module. Also:
//! the host's gzip and zstd give back exactly the uncompressed bytes, and the
//! csv loader's typed columns (`types`, `infer`, `on_error`) reach Parquet
//! and Excel with their types and values.
//!
//! Needs `python3` with `openpyxl` and `pyarrow` (`pip install openpyxl
//! pyarrow`); the tests fail, never skip, without them.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const XLSX_LIB: &str = "libexport_xlsx.so";
const PARQUET_LIB: &str = "libexport_parquet.so";
/// Characters (UTF-16 units) Excel holds in one cell.
const EXCEL_CELL_LIMIT: usize = 32_767;

/// A sandbox with the csv, json, xlsx and parquet plugins and `data/hard.csv`.
fn hard_sandbox() -> (Sandbox, Table) {
    hard_sandbox_with(|sandbox| {
        vec![
            sandbox.json(),
            Entry::new("xlsx", XLSX_LIB),
            Entry::new("parquet", PARQUET_LIB),
        ]
    })
}

/// Exports `data/hard.csv` in `format` with `options` to `name` in the
/// sandbox; returns the file's path. Small batches, so rows cross batches.
fn export_to(sandbox: &Sandbox, format: &str, options: Value, name: &str) -> PathBuf {
    let path = sandbox.path().join(name);
    let output = sandbox.export(
        "csv",
        format,
        &json!({ "path": "hard.csv" }),
        &options,
        &[
            "--batch-size",
            "5",
            "-o",
            path.to_str().expect("UTF-8 path"),
        ],
    );
    succeeded(&output);
    path
}

/// Runs a Python script with `args`; returns what it printed as JSON.
fn python(script: &str, args: &[&Path]) -> Value {
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 must be installed to read the exports back");
    assert!(
        output.status.success(),
        "the Python reader failed (are openpyxl and pyarrow installed? pip install openpyxl \
         pyarrow)\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the Python reader prints JSON")
}

/// Reads every sheet of an xlsx file with openpyxl.
const READ_XLSX: &str = r#"
import json, sys, openpyxl
from openpyxl.utils.escape import unescape
book = openpyxl.load_workbook(sys.argv[1])
# Excel writes characters XML cannot keep (a carriage return) as _xHHHH_;
# openpyxl decodes them in shared strings only, so decode inline ones here.
def value(v):
    return unescape(v) if isinstance(v, str) else v
sheets = []
for sheet in book.worksheets:
    rows = [[{"type": type(c.value).__name__, "value": value(c.value)} for c in row]
            for row in sheet.iter_rows()]
    first = sheet["A1"]
    sheets.append({
        "name": sheet.title,
        "freeze": sheet.freeze_panes,
        "header_bold": bool(first.font.bold),
        "header_fill": first.fill.fill_type,
        "widths": {k: d.width for k, d in sheet.column_dimensions.items()},
        "rows": rows,
    })
json.dump(sheets, sys.stdout)
"#;

/// The first `limit` UTF-16 units of `text`, never splitting a character.
fn excel_truncated(text: &str, limit: usize) -> String {
    let mut units = 0;
    text.chars()
        .take_while(|c| {
            units += c.len_utf16();
            units <= limit
        })
        .collect()
}

/// The text of an openpyxl cell: blank cells read as None, which is how
/// Excel keeps an empty text.
fn cell_text(cell: &Value) -> String {
    match (&cell["type"], &cell["value"]) {
        (Value::String(kind), Value::String(text)) if kind == "str" => text.clone(),
        (_, Value::Null) => String::new(),
        (kind, value) => panic!("a text cell came back as {kind} {value}"),
    }
}

/// Asserts that the sheets' rows (each sheet with its own header) carry `table`,
/// with text past Excel's cell limit truncated.
fn assert_sheets_carry(sheets: &[Value], table: &Table) {
    let mut rows = Vec::new();
    for sheet in sheets {
        let sheet_rows = sheet["rows"].as_array().expect("rows");
        let header: Vec<String> = sheet_rows[0]
            .as_array()
            .unwrap()
            .iter()
            .map(cell_text)
            .collect();
        assert_eq!(header, table.header, "sheet {}", sheet["name"]);
        assert_eq!(sheet["freeze"], "A2", "the header row is frozen");
        assert_eq!(sheet["header_bold"], true);
        assert_eq!(sheet["header_fill"], "solid");
        rows.extend(sheet_rows[1..].iter().cloned());
    }
    // A row of empty values at the very end is no row at all in Excel,
    // which keeps no empty text: such rows read back as missing.
    assert!(rows.len() <= table.rows.len(), "row count");
    let blank_row = json!([]);
    for (n, want) in table.rows.iter().enumerate() {
        let got = match rows.get(n) {
            Some(row) => row.as_array().unwrap(),
            None => {
                assert!(
                    want.iter().all(String::is_empty),
                    "row {n} is missing but not empty"
                );
                blank_row.as_array().unwrap()
            }
        };
        // openpyxl leaves out blank cells at the end of a row.
        assert!(got.len() <= want.len(), "row {n} is too wide");
        for (column, want) in want.iter().enumerate() {
            let got = got.get(column).map(cell_text).unwrap_or_default();
            let want = excel_truncated(want, EXCEL_CELL_LIMIT);
            assert!(
                got == want,
                "row {n}, column {column}: {got:.200?} != {want:.200?}"
            );
        }
    }
}

#[test]
fn xlsx_keeps_every_text_value_as_text() {
    let (sandbox, table) = hard_sandbox();
    let path = export_to(
        &sandbox,
        "xlsx",
        json!({ "long_text": "truncate" }),
        "hard.xlsx",
    );
    let sheets = python(READ_XLSX, &[&path]);
    let sheets = sheets.as_array().unwrap();
    assert_eq!(sheets.len(), 1);
    assert_eq!(sheets[0]["name"], "Sheet1");
    // Columns have widths (openpyxl groups neighbours of the same width),
    // within 8 to 60 characters; the text column is wider than the ids.
    let widths = sheets[0]["widths"].as_object().unwrap();
    assert!(widths.len() >= table.header.len() / 2, "{widths:?}");
    assert!(
        widths
            .values()
            .all(|w| w.as_f64().is_some_and(|w| (8.0..=62.0).contains(&w))),
        "{widths:?}"
    );
    assert!(widths["J"].as_f64() > widths["A"].as_f64(), "{widths:?}");
    assert_sheets_carry(sheets, &table);
    // `007`, `1.50`, `+1`, `=SUM(A1)`, `NaN` and the like stay text, not numbers or formulas.
    let cells: Vec<&Value> = sheets[0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .collect();
    for special in ["007", "1.50", "=SUM(A1)", "+1", "NaN", "1e5"] {
        assert!(
            cells
                .iter()
                .any(|c| c["type"] == "str" && c["value"] == special),
            "{special} is not a text cell"
        );
    }
    assert!(cells
        .iter()
        .all(|c| c["type"] == "str" || c["type"] == "NoneType"));
}

#[test]
fn xlsx_refuses_text_beyond_the_cell_limit_by_default() {
    let (sandbox, _) = hard_sandbox();
    let path = sandbox.path().join("hard.xlsx");
    let output = sandbox.export(
        "csv",
        "xlsx",
        &json!({ "path": "hard.csv" }),
        &json!({}),
        &["-o", path.to_str().unwrap()],
    );
    refused(&output, Exit::Failure, &["32767", "long_text", "truncate"]);
    assert!(!path.exists(), "a failed export leaves no file");
}

#[test]
fn xlsx_continues_on_new_sheets_past_rows_per_sheet() {
    let (sandbox, table) = hard_sandbox();
    let path = export_to(
        &sandbox,
        "xlsx",
        json!({ "long_text": "truncate", "rows_per_sheet": 10, "sheet_name": "Chats" }),
        "sheets.xlsx",
    );
    let sheets = python(READ_XLSX, &[&path]);
    let sheets = sheets.as_array().unwrap();
    let names: Vec<&str> = sheets.iter().map(|s| s["name"].as_str().unwrap()).collect();
    let expected = table.rows.len().div_ceil(10);
    let mut want = vec!["Chats".to_owned()];
    want.extend((2..=expected).map(|n| format!("Chats ({n})")));
    assert_eq!(names, want);
    assert_sheets_carry(sheets, &table);
    // With overflow "error", the same export fails and says how to fix it.
    let output = sandbox.export(
        "csv",
        "xlsx",
        &json!({ "path": "hard.csv" }),
        &json!({ "long_text": "truncate", "rows_per_sheet": 10, "overflow": "error" }),
        &["-o", sandbox.path().join("none.xlsx").to_str().unwrap()],
    );
    refused(&output, Exit::Failure, &["more than 10 rows", "new_sheet"]);
}

/// Reads a Parquet file with pyarrow: its schema, rows and codecs.
const READ_PARQUET: &str = r#"
import json, sys, pyarrow.parquet as pq
file = pq.ParquetFile(sys.argv[1])
table = file.read()
meta = file.metadata
codecs = sorted({meta.row_group(g).column(c).compression
                 for g in range(meta.num_row_groups) for c in range(meta.num_columns)})
json.dump({
    "schema": [[f.name, str(f.type)] for f in table.schema],
    "rows": table.to_pylist(),
    "row_groups": meta.num_row_groups,
    "codecs": codecs,
}, sys.stdout)
"#;

#[test]
fn parquet_keeps_every_value_with_each_codec() {
    let (sandbox, table) = hard_sandbox();
    for (codec, want_codec) in [
        ("none", "UNCOMPRESSED"),
        ("snappy", "SNAPPY"),
        ("zstd", "ZSTD"),
        ("gzip", "GZIP"),
        // pyarrow names the LZ4_RAW codec "LZ4" (the old framed one is "LZ4_HADOOP").
        ("lz4", "LZ4"),
    ] {
        let path = export_to(
            &sandbox,
            "parquet",
            json!({ "codec": codec, "row_group_size": 7 }),
            &format!("hard-{codec}.parquet"),
        );
        let read = python(READ_PARQUET, &[&path]);
        assert_eq!(read["codecs"], json!([want_codec]), "{codec}");
        assert_eq!(read["row_groups"], table.rows.len().div_ceil(7), "{codec}");
        let schema: Vec<(String, String)> = serde_json::from_value(read["schema"].clone()).unwrap();
        let names: Vec<&str> = schema.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, table.header, "{codec}");
        assert!(
            schema.iter().all(|(_, t)| t == "string"),
            "text columns stay text: {schema:?}"
        );
        let rows = read["rows"].as_array().unwrap();
        assert_eq!(rows.len(), table.rows.len(), "{codec}: row count");
        for (n, (got, want)) in rows.iter().zip(&table.rows).enumerate() {
            for (name, want) in table.header.iter().zip(want) {
                let got = got[name].as_str().unwrap_or_else(|| {
                    panic!("{codec}: row {n}, {name}: not a string: {}", got[name])
                });
                assert!(
                    got == want,
                    "{codec}: row {n}, {name}: {got:.200?} != {want:.200?}"
                );
            }
        }
    }
}

/// Reads a CSV file with Python's csv module: `sys.argv[2]` is the
/// encoding, `sys.argv[3]` the quoting (`minimal` or `nonnumeric`).
const READ_CSV: &str = r#"
import csv, json, sys
quoting = {"minimal": csv.QUOTE_MINIMAL, "nonnumeric": csv.QUOTE_NONNUMERIC}[sys.argv[3]]
with open(sys.argv[1], newline="", encoding=sys.argv[2]) as f:
    rows = list(csv.reader(f, quoting=quoting))
json.dump([[{"type": type(v).__name__, "value": v} for v in row] for row in rows], sys.stdout)
"#;

/// Reads `path` with Python's csv module and checks every value is text.
fn python_csv(path: &Path, encoding: &str, quoting: &str) -> Table {
    let rows = python(READ_CSV, &[path, Path::new(encoding), Path::new(quoting)]);
    let mut rows: Vec<Vec<String>> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|cell| {
                    assert_eq!(cell["type"], "str", "{cell}");
                    cell["value"].as_str().unwrap().to_owned()
                })
                .collect()
        })
        .collect();
    let header = rows.remove(0);
    Table { header, rows }
}

#[test]
fn csv_with_bom_reads_back_in_python() {
    let (sandbox, table) = hard_sandbox();
    let path = export_to(&sandbox, "csv", json!({ "bom": true }), "bom.csv");
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBFmessage_id,"));
    assert_eq!(python_csv(&path, "utf-8-sig", "minimal"), table);
    // The bytes after the BOM are the plain export's.
    let plain = std::fs::read(export_to(&sandbox, "csv", json!({}), "plain.csv")).unwrap();
    assert_eq!(&bytes[3..], plain.as_slice());
}

#[test]
fn csv_quote_styles_read_back_in_python() {
    let (sandbox, table) = hard_sandbox();
    let always = export_to(
        &sandbox,
        "csv",
        json!({ "quote_style": "always" }),
        "always.csv",
    );
    let text = std::fs::read_to_string(&always).unwrap();
    assert!(
        text.starts_with("\"message_id\",\"conversation_id\","),
        "{text:.200}"
    );
    assert!(text.ends_with("\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\",\"\"\n"));
    assert_eq!(python_csv(&always, "utf-8", "minimal"), table);

    // Every value is text, so every field is quoted, and Python's
    // QUOTE_NONNUMERIC reader (unquoted fields become floats) gives back
    // strings only: `007` stays "007".
    let non_numeric = export_to(
        &sandbox,
        "csv",
        json!({ "quote_style": "non_numeric" }),
        "non_numeric.csv",
    );
    assert_eq!(python_csv(&non_numeric, "utf-8", "nonnumeric"), table);

    // The hard cases hold commas, quotes and line breaks: "never" refuses them.
    let output = sandbox.export(
        "csv",
        "csv",
        &json!({ "path": "hard.csv" }),
        &json!({ "quote_style": "never" }),
        &["-o", sandbox.path().join("never.csv").to_str().unwrap()],
    );
    refused(&output, Exit::Input, &["quote_style", "necessary"]);
    // Values that need no quotes are written bare.
    sandbox.put("safe.csv", "id,name\n007,ada lovelace\n-1.5,x\n");
    let path = sandbox.path().join("safe-never.csv");
    succeeded(&sandbox.export(
        "csv",
        "csv",
        &json!({ "path": "safe.csv" }),
        &json!({ "quote_style": "never", "delimiter": ";" }),
        &["-o", path.to_str().unwrap()],
    ));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "id;name\n007;ada lovelace\n-1.5;x\n"
    );
}

/// What the formula guard is specified to do, written independently of the plugin.
fn guarded(value: &str) -> String {
    let plain_signed_number = |v: &str| {
        let Some(rest) = v.strip_prefix(['+', '-']) else {
            return false;
        };
        let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
            Some((m, e)) => (m, Some(e)),
            None => (rest, None),
        };
        let mut parts = mantissa.splitn(2, '.');
        let int = parts.next().unwrap_or("");
        let frac = parts.next().unwrap_or("");
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        digits(int)
            && digits(frac)
            && !(int.is_empty() && frac.is_empty())
            && exponent.is_none_or(|e| {
                let e = e.strip_prefix(['+', '-']).unwrap_or(e);
                !e.is_empty() && digits(e)
            })
    };
    let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !plain_signed_number(value) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

#[test]
fn csv_formula_guard_matches_the_golden_file_and_reads_back() {
    let (sandbox, table) = hard_sandbox();
    let path = export_to(
        &sandbox,
        "csv",
        json!({ "formula_guard": true }),
        "guarded.csv",
    );
    let bytes = std::fs::read(&path).unwrap();
    assert_golden("hard_guarded.csv", &bytes, "formats_typed");

    let read = python_csv(&path, "utf-8", "minimal");
    let want = Table {
        header: table.header.iter().map(|v| guarded(v)).collect(),
        rows: table
            .rows
            .iter()
            .map(|row| row.iter().map(|v| guarded(v)).collect())
            .collect(),
    };
    assert_eq!(read, want);
    // The data has values on both sides of the rule.
    let values: Vec<&str> = read.rows.iter().flatten().map(String::as_str).collect();
    for present in ["'=SUM(A1)", "+1", "-2", "'@x"] {
        assert!(
            values.iter().any(|v| v.starts_with(present)),
            "no value starting {present:?}"
        );
    }
}

/// Compares two xlsx files entry by entry, except the creation time in
/// `docProps/core.xml`, which is the only part that changes between runs.
const SAME_XLSX: &str = r#"
import json, re, sys, zipfile
a, b = zipfile.ZipFile(sys.argv[1]), zipfile.ZipFile(sys.argv[2])
names = a.namelist()
same = names == b.namelist()
for name in names if same else []:
    x, y = a.read(name), b.read(name)
    if name == "docProps/core.xml":
        x, y = (re.sub(rb"<dcterms:(created|modified)[^<]*</dcterms:\w+>", b"", v) for v in (x, y))
    same = same and x == y
json.dump({"same": same, "entries": len(names)}, sys.stdout)
"#;

#[test]
fn compressed_outputs_decompress_to_the_uncompressed_bytes() {
    let (sandbox, _) = hard_sandbox();
    for (format, options) in [
        ("csv", json!({})),
        ("jsonl", json!({})),
        ("json", json!({ "pretty": true })),
        ("parquet", json!({})),
        ("xlsx", json!({ "long_text": "truncate" })),
    ] {
        let plain_path = export_to(
            &sandbox,
            format,
            options.clone(),
            &format!("plain.{format}"),
        );
        let plain = std::fs::read(&plain_path).unwrap();
        assert!(!plain.is_empty(), "{format}");
        for codec in ["gzip", "zstd"] {
            let mut options = options.clone();
            options["compression"] = json!(codec);
            let packed = export_to(
                &sandbox,
                format,
                options,
                &format!("packed.{format}.{codec}"),
            );
            let bytes = decompress(codec, &std::fs::read(&packed).unwrap());
            if format == "xlsx" {
                let unpacked = sandbox.path().join(format!("unpacked-{codec}.xlsx"));
                std::fs::write(&unpacked, &bytes).unwrap();
                let same = python(SAME_XLSX, &[&plain_path, &unpacked]);
                assert_eq!(same["same"], true, "{format} {codec}: {same}");
            } else {
                assert!(
                    bytes == plain,
                    "{format} {codec}: the decompressed bytes differ from the uncompressed export"
                );
            }
        }
    }
}

#[test]
fn time_zone_moves_timestamps_but_never_text() {
    // The csv loader hands over text only: a time zone must leave it alone.
    let (sandbox, table) = hard_sandbox();
    for format in ["csv", "jsonl", "json"] {
        let with_zone = export_to(
            &sandbox,
            format,
            json!({ "time_zone": "Europe/Paris" }),
            &format!("zoned.{format}"),
        );
        let without = export_to(&sandbox, format, json!({}), &format!("unzoned.{format}"));
        assert!(
            std::fs::read(with_zone).unwrap() == std::fs::read(without).unwrap(),
            "{format}: time_zone changed text"
        );
    }
    let created_at = table.header.iter().position(|h| h == "created_at").unwrap();
    assert!(table.rows.iter().any(|r| r[created_at].ends_with("+02:00")));
    let output = sandbox.export(
        "csv",
        "jsonl",
        &json!({ "path": "hard.csv" }),
        &json!({ "time_zone": "Mars/Olympus" }),
        &[],
    );
    refused(&output, Exit::Input, &["time_zone", "Mars/Olympus"]);
}

#[test]
fn the_new_formats_are_listed() {
    let (sandbox, _) = hard_sandbox();
    for (plugin, components) in [("xlsx", "formats: xlsx"), ("parquet", "formats: parquet")] {
        let listed = sandbox.listed();
        let entry = listed
            .iter()
            .find(|p| p["plugin"] == plugin)
            .unwrap_or_else(|| panic!("{plugin} is not listed: {listed:?}"));
        assert_eq!(entry["status"], "loaded", "{entry}");
        assert_eq!(entry["components"], components, "{entry}");
    }
}

// ---------------------------------------------------------------------------
// Typed columns: the csv loader's `types` and `infer` selectors

/// Exports `data/<file>` with `selector` (`path` added) in `format` to `name`
/// in the sandbox, in batches of `batch_size` rows; returns the file's path.
fn export_typed(
    sandbox: &Sandbox,
    file: &str,
    selector: Value,
    format: &str,
    options: Value,
    name: &str,
) -> PathBuf {
    let mut selector = selector;
    selector["path"] = json!(file);
    let path = sandbox.path().join(name);
    let output = sandbox.export(
        "csv",
        format,
        &selector,
        &options,
        &[
            "--batch-size",
            "4",
            "-o",
            path.to_str().expect("UTF-8 path"),
        ],
    );
    succeeded(&output);
    path
}

/// Reads a Parquet file with pyarrow: its schema and each column's values as
/// text (integers, decimals, strings), ISO 8601 (dates, timestamps), JSON
/// numbers (floats) or booleans; nulls as null.
const READ_PARQUET_TYPED: &str = r#"
import json, sys, pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
def cell(v):
    if v is None or isinstance(v, (bool, float)):
        return v
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return str(v)
json.dump({
    "schema": {f.name: str(f.type) for f in table.schema},
    "names": table.column_names,
    "columns": {n: [cell(v) for v in table.column(n).to_pylist()] for n in table.column_names},
}, sys.stdout)
"#;

/// Reads the first sheet of an xlsx file with openpyxl: each cell's Python
/// type and value (dates and times in ISO 8601).
const READ_XLSX_TYPED: &str = r#"
import json, sys, openpyxl
sheet = openpyxl.load_workbook(sys.argv[1]).worksheets[0]
def cell(v):
    return v.isoformat() if hasattr(v, "isoformat") else v
json.dump([[{"type": type(c.value).__name__, "value": cell(c.value)} for c in row]
           for row in sheet.iter_rows()], sys.stdout)
"#;

/// One row of the typed table: each column's CSV text, and the timestamp as
/// pyarrow gives it back (UTC) and as openpyxl reads the Excel cell (the UTC
/// wall clock, which Excel shows to the millisecond).
struct TypedRow {
    csv: [String; 7],
    at_utc: Option<&'static str>,
    at_excel: Option<String>,
}

const TYPED_HEADER: [&str; 7] = ["id", "price", "ok", "day", "at", "score", "note"];

fn typed_types() -> Value {
    json!({
        "id": "int64",
        "price": "decimal(10,2)",
        "ok": "bool",
        "day": "date",
        "at": "timestamp",
        "score": "float64",
        "note": "text",
    })
}

/// About twenty rows with every type's awkward values and empty cells.
fn typed_rows() -> Vec<TypedRow> {
    let row = |csv: [&str; 7], at_utc: Option<&'static str>, at_excel: Option<&str>| TypedRow {
        csv: csv.map(str::to_owned),
        at_utc,
        at_excel: at_excel.map(str::to_owned),
    };
    let mut rows = vec![
        row(
            [
                "1",
                "12.34",
                "true",
                "2024-05-01",
                "2024-05-01T08:00:00Z",
                "1.5",
                "plain",
            ],
            Some("2024-05-01T08:00:00+00:00"),
            Some("2024-05-01T08:00:00"),
        ),
        row(
            [
                "2",
                "0.05",
                "false",
                "2024-02-29",
                "2024-05-01T10:00:00+02:00",
                "-0.25",
                "a, \"quoted\"\nnote",
            ],
            Some("2024-05-01T08:00:00+00:00"),
            Some("2024-05-01T08:00:00"),
        ),
        row(
            [
                "3",
                "-3.10",
                "true",
                "1999-12-31",
                "2024-01-01T00:00:00.5Z",
                "0",
                "007",
            ],
            Some("2024-01-01T00:00:00.500000+00:00"),
            Some("2024-01-01T00:00:00.500000"),
        ),
        row(["-4", "7", "", "2000-01-01", "", "1e3", ""], None, None),
        row(
            [
                "",
                "99999999.99",
                "false",
                "",
                "2023-06-15T12:34:56.123Z",
                "",
                "=SUM(A1)",
            ],
            Some("2023-06-15T12:34:56.123000+00:00"),
            Some("2023-06-15T12:34:56.123000"),
        ),
        row(
            [
                "9007199254740992",
                "-99999999.99",
                "true",
                "2024-12-31",
                "2024-03-31T01:30:00-05:00",
                "3.14159",
                "日本語 👋🏽",
            ],
            Some("2024-03-31T06:30:00+00:00"),
            Some("2024-03-31T06:30:00"),
        ),
        row(
            [
                "7",
                "1.00",
                "false",
                "1970-01-01",
                "2024-05-01T08:00:00.123456Z",
                "1e-7",
                "1.50",
            ],
            // Excel keeps the millisecond: .123456 is shown as .123.
            Some("2024-05-01T08:00:00.123456+00:00"),
            Some("2024-05-01T08:00:00.123000"),
        ),
    ];
    for i in 8..=20u32 {
        let empty_at = i % 7 == 0;
        rows.push(TypedRow {
            csv: [
                (i64::from(i) * -1000).to_string(),
                format!("{i}.{:02}", i * 3),
                if i % 2 == 0 { "true" } else { "false" }.to_owned(),
                format!("2024-01-{i:02}"),
                if empty_at {
                    String::new()
                } else {
                    format!("2024-01-{i:02}T{i:02}:15:00Z")
                },
                if i % 5 == 0 {
                    String::new()
                } else {
                    format!("{i}.25")
                },
                format!("row {i}"),
            ],
            at_utc: None,
            at_excel: (!empty_at).then(|| format!("2024-01-{i:02}T{i:02}:15:00")),
        });
    }
    rows
}

/// The pyarrow text of a row's timestamp: given for the hand-written rows,
/// derived from the Excel wall clock (whole seconds, UTC) for the others.
fn at_utc(row: &TypedRow) -> Option<String> {
    match row.at_utc {
        Some(at) => Some(at.to_owned()),
        None => row.at_excel.as_ref().map(|at| format!("{at}+00:00")),
    }
}

fn typed_csv(rows: &[TypedRow]) -> Vec<u8> {
    write_csv(&Table {
        header: TYPED_HEADER.map(str::to_owned).to_vec(),
        rows: rows.iter().map(|r| r.csv.to_vec()).collect(),
    })
}

/// `text` as a decimal with scale 2, as Python's `Decimal` prints it.
fn scale_2(text: &str) -> String {
    match text.split_once('.') {
        Some((int, frac)) => format!("{int}.{frac:0<2}"),
        None => format!("{text}.00"),
    }
}

/// `None` for an empty CSV cell, else `Some(f(text))`.
fn unless_empty<T>(text: &str, f: impl FnOnce(&str) -> T) -> Option<T> {
    (!text.is_empty()).then(|| f(text))
}

#[test]
fn typed_csv_columns_reach_parquet_with_their_arrow_types() {
    let (sandbox, _) = hard_sandbox();
    let rows = typed_rows();
    sandbox.put("typed.csv", typed_csv(&rows));
    let path = export_typed(
        &sandbox,
        "typed.csv",
        json!({ "types": typed_types() }),
        "parquet",
        json!({}),
        "typed.parquet",
    );
    let read = python(READ_PARQUET_TYPED, &[&path]);
    assert_eq!(read["names"], json!(TYPED_HEADER));
    assert_eq!(
        read["schema"],
        json!({
            "id": "int64",
            "price": "decimal128(10, 2)",
            "ok": "bool",
            "day": "date32[day]",
            "at": "timestamp[us, tz=UTC]",
            "score": "double",
            "note": "string",
        })
    );
    let column = |name: &str| read["columns"][name].as_array().unwrap().clone();
    let texts = |name: &str| -> Vec<Option<String>> {
        column(name)
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let want = |index: usize, f: &dyn Fn(&str) -> String| -> Vec<Option<String>> {
        rows.iter()
            .map(|r| unless_empty(&r.csv[index], f))
            .collect()
    };
    assert_eq!(texts("id"), want(0, &str::to_owned), "id");
    assert_eq!(texts("price"), want(1, &scale_2), "price");
    let ok: Vec<Option<bool>> = column("ok").iter().map(Value::as_bool).collect();
    let want_ok: Vec<Option<bool>> = rows
        .iter()
        .map(|r| unless_empty(&r.csv[2], |t| t == "true"))
        .collect();
    assert_eq!(ok, want_ok, "ok");
    assert_eq!(texts("day"), want(3, &str::to_owned), "day");
    let want_at: Vec<Option<String>> = rows.iter().map(at_utc).collect();
    assert_eq!(texts("at"), want_at, "at");
    let score: Vec<Option<f64>> = column("score").iter().map(Value::as_f64).collect();
    let want_score: Vec<Option<f64>> = rows
        .iter()
        .map(|r| unless_empty(&r.csv[5], |t| t.parse::<f64>().unwrap()))
        .collect();
    assert_eq!(score, want_score, "score");
    // An empty value is a null in every type but text, which keeps it.
    let notes: Vec<Option<String>> = rows.iter().map(|r| Some(r.csv[6].clone())).collect();
    assert_eq!(texts("note"), notes, "note");
    assert_eq!(column("id").len(), rows.len());
}

#[test]
fn typed_csv_columns_become_typed_excel_cells() {
    let (sandbox, _) = hard_sandbox();
    let rows = typed_rows();
    sandbox.put("typed.csv", typed_csv(&rows));
    let path = export_typed(
        &sandbox,
        "typed.csv",
        json!({ "types": typed_types() }),
        "xlsx",
        json!({}),
        "typed.xlsx",
    );
    let sheet = python(READ_XLSX_TYPED, &[&path]);
    let sheet = sheet.as_array().unwrap();
    let header: Vec<&str> = sheet[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(header, TYPED_HEADER);
    assert_eq!(sheet.len(), rows.len() + 1, "row count");
    for (n, (got, want)) in sheet[1..].iter().zip(&rows).enumerate() {
        let got = got.as_array().unwrap();
        let cell = |column: usize| -> (&str, &Value) {
            let cell = &got[column];
            (cell["type"].as_str().unwrap(), &cell["value"])
        };
        let at = |column: usize| format!("row {n}, {}: {:?}", TYPED_HEADER[column], got[column]);
        for (column, text) in want.csv.iter().enumerate() {
            if text.is_empty() {
                assert_eq!(cell(column), ("NoneType", &Value::Null), "{}", at(column));
            }
        }
        // Numbers are numeric cells of the same value, never text.
        for column in [0, 1, 5] {
            let text = &want.csv[column];
            if text.is_empty() {
                continue;
            }
            let (kind, value) = cell(column);
            assert!(kind == "int" || kind == "float", "{}", at(column));
            assert_eq!(value.as_f64(), text.parse::<f64>().ok(), "{}", at(column));
        }
        if !want.csv[0].is_empty() {
            assert_eq!(
                cell(0).1.as_i64(),
                want.csv[0].parse::<i64>().ok(),
                "{}",
                at(0)
            );
        }
        if !want.csv[2].is_empty() {
            assert_eq!(
                cell(2),
                ("bool", &json!(want.csv[2] == "true")),
                "{}",
                at(2)
            );
        }
        if !want.csv[3].is_empty() {
            let day = json!(format!("{}T00:00:00", want.csv[3]));
            assert_eq!(cell(3), ("datetime", &day), "{}", at(3));
        }
        if let Some(excel) = &want.at_excel {
            assert_eq!(cell(4), ("datetime", &json!(excel)), "{}", at(4));
        }
        if !want.csv[6].is_empty() {
            assert_eq!(cell(6), ("str", &json!(want.csv[6])), "{}", at(6));
        }
    }
}

/// One column of the inference file: its name, its CSV cells, and the
/// pyarrow type it must get.
struct Guess {
    name: &'static str,
    cells: [&'static str; 6],
    arrow: &'static str,
}

/// Columns whose text no type keeps exactly (each with its awkward value
/// late, past the first batches), and clean columns.
const GUESSES: [Guess; 11] = [
    Guess {
        name: "zeros",
        cells: ["1", "2", "", "4", "00123", "007"],
        arrow: "string",
    },
    Guess {
        name: "big",
        cells: [
            "1",
            "-2",
            "",
            "3",
            "12345678901234567890",
            "-99999999999999999999",
        ],
        arrow: "string",
    },
    Guess {
        name: "money",
        cells: ["1.5", "2.25", "", "3.75", "4.5", "1.50"],
        arrow: "string",
    },
    Guess {
        name: "nan",
        cells: ["1.5", "-0.25", "", "2.5", "3.5", "NaN"],
        arrow: "string",
    },
    Guess {
        name: "offsets",
        cells: [
            "2024-01-01T00:00:00Z",
            "2024-05-01T08:00:00Z",
            "",
            "2024-06-01T12:00:00Z",
            "2024-07-01T00:00:00Z",
            "2024-01-01T00:00:00+02:00",
        ],
        arrow: "string",
    },
    Guess {
        name: "int",
        cells: ["1", "-20", "", "300", "0", "9223372036854775807"],
        arrow: "int64",
    },
    Guess {
        name: "float",
        cells: ["1.5", "-0.25", "", "2.75", "0.1", "1234.5"],
        arrow: "double",
    },
    Guess {
        name: "flag",
        cells: ["true", "false", "", "true", "false", "true"],
        arrow: "bool",
    },
    Guess {
        name: "at",
        cells: [
            "2024-01-01T00:00:00Z",
            "2024-05-01T08:00:00Z",
            "",
            "2023-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z",
            "2024-02-29T12:30:00Z",
        ],
        arrow: "timestamp[us, tz=UTC]",
    },
    Guess {
        name: "words",
        cells: ["alpha", "beta", "", "gamma, delta", "\"q\"", "007"],
        arrow: "string",
    },
    Guess {
        name: "spaced",
        cells: ["1", "2", "", "3", "4", " 5"],
        arrow: "string",
    },
];

#[test]
fn inferred_types_never_lose_a_value() {
    let (sandbox, _) = hard_sandbox();
    let table = Table {
        header: GUESSES.iter().map(|g| g.name.to_owned()).collect(),
        rows: (0..6)
            .map(|row| GUESSES.iter().map(|g| g.cells[row].to_owned()).collect())
            .collect(),
    };
    sandbox.put("guess.csv", write_csv(&table));
    let path = export_typed(
        &sandbox,
        "guess.csv",
        json!({ "infer": true }),
        "parquet",
        json!({}),
        "guess.parquet",
    );
    let read = python(READ_PARQUET_TYPED, &[&path]);
    assert_eq!(read["names"], json!(table.header));
    for guess in &GUESSES {
        let name = guess.name;
        assert_eq!(read["schema"][name], guess.arrow, "{name}");
        let got = read["columns"][name].as_array().unwrap();
        assert_eq!(got.len(), 6, "{name}");
        for (row, (got, text)) in got.iter().zip(guess.cells).enumerate() {
            let at = format!("{name}, row {row}: {got} for {text:?}");
            if text.is_empty() {
                // A null in a typed column; text keeps its empty value.
                let want = if guess.arrow == "string" {
                    json!("")
                } else {
                    Value::Null
                };
                assert_eq!(got, &want, "{at}: an empty cell");
                continue;
            }
            match guess.arrow {
                "string" | "int64" => assert_eq!(got, &json!(text), "{at}"),
                "double" => assert_eq!(got.as_f64(), text.parse::<f64>().ok(), "{at}"),
                "bool" => assert_eq!(got, &json!(text == "true"), "{at}"),
                "timestamp[us, tz=UTC]" => {
                    let want = text.replace('Z', "+00:00");
                    assert_eq!(got, &json!(want), "{at}");
                }
                other => panic!("no check for {other}"),
            }
        }
    }
}

/// `id,price,note`, row 3's id not an integer.
const BAD_INT_CSV: &str = "id,price,note\n1,1.50,a\n2,2.50,b\n12x,3.50,c\n4,4.50,d\n";

#[test]
fn a_value_that_does_not_fit_its_type_fails_or_becomes_null() {
    let (sandbox, _) = hard_sandbox();
    sandbox.put("bad.csv", BAD_INT_CSV);
    let types = json!({ "id": "int64", "price": "decimal(10,2)" });
    for on_error in [None, Some("fail")] {
        let mut selector = json!({ "path": "bad.csv", "types": types });
        if let Some(on_error) = on_error {
            selector["on_error"] = json!(on_error);
        }
        let out = sandbox.path().join("bad.csv");
        let output = sandbox.export(
            "csv",
            "csv",
            &selector,
            &json!({}),
            &["--batch-size", "2", "-o", out.to_str().unwrap()],
        );
        // The row, the column and the value that did not fit.
        refused(&output, Exit::Refused, &["row 3", "\"id\"", "12x"]);
        assert!(!out.exists(), "a failed export leaves no file");
    }
    let output = sandbox.export(
        "csv",
        "csv",
        &json!({ "path": "bad.csv", "types": types, "on_error": "null" }),
        &json!({}),
        &["--batch-size", "2"],
    );
    assert_eq!(
        String::from_utf8(succeeded(&output)).unwrap(),
        "id,price,note\n1,1.50,a\n2,2.50,b\n,3.50,c\n4,4.50,d\n"
    );
    // The count of nulled values reaches the user (and the record's metadata).
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(r#"the loader notes: {"nulled_values":{"id":1}}"#),
        "{stderr}"
    );
}

/// Timestamps in several zones and precisions, and an empty cell.
const TIMESTAMPS_CSV: &str = "n,at\n\
    1,2024-05-01T08:00:00.123456Z\n\
    2,2024-05-01T10:00:00+02:00\n\
    3,\n\
    4,1969-12-31T23:59:59.999999Z\n\
    5,2024-01-01T00:00:00.5-05:00\n";

#[test]
fn xlsx_timestamps_as_text_keep_the_csv_spelling() {
    let (sandbox, _) = hard_sandbox();
    sandbox.put("at.csv", TIMESTAMPS_CSV);
    let selector = json!({ "types": { "n": "int64", "at": "timestamp" } });
    for (zone, want) in [
        (
            None,
            [
                Some("2024-05-01T08:00:00.123456Z"),
                Some("2024-05-01T08:00:00Z"),
                None,
                Some("1969-12-31T23:59:59.999999Z"),
                Some("2024-01-01T05:00:00.500Z"),
            ],
        ),
        (
            Some("Europe/Paris"),
            [
                Some("2024-05-01T10:00:00.123456+02:00"),
                Some("2024-05-01T10:00:00+02:00"),
                None,
                Some("1970-01-01T00:59:59.999999+01:00"),
                Some("2024-01-01T06:00:00.500+01:00"),
            ],
        ),
    ] {
        let mut options = json!({});
        if let Some(zone) = zone {
            options["time_zone"] = json!(zone);
        }
        let name = zone.unwrap_or("own").replace('/', "-");
        let csv = export_typed(
            &sandbox,
            "at.csv",
            selector.clone(),
            "csv",
            options.clone(),
            &format!("at-{name}.csv"),
        );
        let csv = read_csv(&std::fs::read(csv).unwrap());
        let csv_at: Vec<Option<&str>> = csv
            .rows
            .iter()
            .map(|r| Some(r[1].as_str()).filter(|t| !t.is_empty()))
            .collect();
        assert_eq!(csv_at, want, "the csv export, time_zone {zone:?}");

        options["timestamps"] = json!("text");
        let xlsx = export_typed(
            &sandbox,
            "at.csv",
            selector.clone(),
            "xlsx",
            options,
            &format!("at-{name}.xlsx"),
        );
        let sheet = python(READ_XLSX_TYPED, &[&xlsx]);
        let sheet = sheet.as_array().unwrap();
        assert_eq!(sheet.len(), 6, "{sheet:?}");
        for (row, want) in sheet[1..].iter().zip(want) {
            let cell = &row[1];
            match want {
                Some(text) => assert_eq!(cell, &json!({ "type": "str", "value": text })),
                None => assert_eq!(cell["value"], Value::Null),
            }
            // The other columns keep their types.
            assert_eq!(row[0]["type"], "int", "{row}");
        }
    }
    // By default they are Excel dates: the UTC wall clock, to the millisecond.
    let xlsx = export_typed(
        &sandbox,
        "at.csv",
        selector,
        "xlsx",
        json!({}),
        "dates.xlsx",
    );
    let sheet = python(READ_XLSX_TYPED, &[&xlsx]);
    assert_eq!(
        sheet[1][1],
        json!({ "type": "datetime", "value": "2024-05-01T08:00:00.123000" })
    );
}
