//! Round trips through the real binary and the built csv and json plugins:
//! every value must come out exactly as it went in.

mod common;

use common::*;
use serde_json::json;

/// The hard cases as `data/hard.csv` in a sandbox with both plugins.
fn hard_sandbox() -> (Sandbox, Table) {
    let sandbox = Sandbox::with_csv_and_json();
    let table = hard_table();
    sandbox.put("hard.csv", write_csv(&table));
    (sandbox, table)
}

#[test]
fn canonical_number_rule() {
    for yes in [
        "0",
        "42",
        "-1.5",
        "0.25",
        "0.000125",
        "-2",
        "9223372036854775807",
    ] {
        assert!(canonical_number(yes), "{yes}");
    }
    for no in [
        "007",
        "1.50",
        "1e5",
        "NaN",
        "12345678901234567890123",
        "-0",
        "+1",
        "",
        "1.",
        ".5",
        "0.0100",
        "3.14159265358979323846",
        "Infinity",
        " 1",
        "00",
        "99999999999999999999",
    ] {
        assert!(!canonical_number(no), "{no}");
    }
    // The test data keeps to values where this rule and plugin-api's agree.
    for value in hard_table().rows.iter().flatten() {
        assert_eq!(
            canonical_number(value),
            export_plugin_api::json::is_number_spelling(value),
            "{value:.200?}"
        );
    }
}

#[test]
fn example_csv_covers_every_hard_case() {
    let table = example_conversations();
    assert!((15..=30).contains(&table.rows.len()), "about 20 rows");
    let values: Vec<&str> = table.rows.iter().flatten().map(String::as_str).collect();
    for exact in [
        "007",
        "12345678901234567890123",
        "1.50",
        "NaN",
        "=SUM(A1)",
        "+1",
        "-2",
        "",
        "1e5",
    ] {
        assert!(values.contains(&exact), "no value {exact:?}");
    }
    type Has = fn(&str) -> bool;
    let cases: [(&str, Has); 10] = [
        ("UTC offset", |v| v.ends_with("+02:00") && v.contains('T')),
        ("@mention", |v| v.starts_with("@x")),
        ("newline", |v| v.contains('\n') && !v.contains('\r')),
        ("CRLF", |v| v.contains("\r\n")),
        ("quote", |v| v.contains('"')),
        ("tab", |v| v.contains('\t')),
        ("emoji", |v| {
            v.chars().any(|c| ('\u{1F300}'..='\u{1FAFF}').contains(&c))
        }),
        ("CJK", |v| {
            v.chars().any(|c| ('\u{4E00}'..='\u{9FFF}').contains(&c))
        }),
        ("RTL", |v| {
            v.chars().any(|c| ('\u{0590}'..='\u{06FF}').contains(&c))
        }),
        ("combining mark", |v| {
            v.chars().any(|c| ('\u{0300}'..='\u{036F}').contains(&c))
        }),
    ];
    for (what, has) in cases {
        assert!(values.iter().any(|v| has(v)), "no value with {what}");
    }
}

#[test]
fn example_jsonl_is_json_lines_of_one_shape() {
    let bytes = std::fs::read(examples_dir().join("conversations.jsonl")).unwrap();
    let rows = read_jsonl(&bytes);
    assert!(rows.len() >= 5);
    let keys = rows[0].keys();
    for row in &rows {
        assert_eq!(
            row.keys(),
            keys,
            "every line has the same members in the same order"
        );
    }
    let raw: Vec<&str> = rows
        .iter()
        .flat_map(|r| r.0.iter().map(|(_, v)| v.get()))
        .collect();
    for spelling in ["1.50", "12345678901234567890123", "\"007\""] {
        assert!(raw.contains(&spelling), "no raw value {spelling}");
    }
    assert!(
        raw.iter().any(|v| v.starts_with('{') && v.len() > 2),
        "no nested object"
    );
}

#[test]
fn csv_to_csv_keeps_every_value() {
    let (sandbox, table) = hard_sandbox();
    // Small batches, so rows cross batch boundaries.
    let output = sandbox.export(
        "csv",
        "csv",
        &json!({"path": "hard.csv"}),
        &json!({}),
        &["--batch-size", "4"],
    );
    let got = read_csv(&succeeded(&output));
    assert_eq!(got.header, table.header);
    assert_eq!(got.rows.len(), table.rows.len(), "row count");
    for (n, (got, want)) in got.rows.iter().zip(&table.rows).enumerate() {
        for (column, (got, want)) in got.iter().zip(want).enumerate() {
            assert!(
                got == want,
                "row {n}, column {column}: {got:.200?} != {want:.200?}"
            );
        }
    }
}

#[test]
fn csv_to_jsonl_keeps_text_and_canonical_numbers() {
    let (sandbox, table) = hard_sandbox();
    let rows = read_jsonl(&sandbox.convert("csv", "hard.csv", "jsonl"));
    assert_json_rows_match_csv(&rows, &table);
}

#[test]
fn csv_to_json_keeps_text_and_canonical_numbers() {
    let (sandbox, table) = hard_sandbox();
    let rows = read_json_array(&sandbox.convert("csv", "hard.csv", "json"));
    assert_json_rows_match_csv(&rows, &table);
}

/// One JSON Lines row: (member name, raw JSON value) pairs.
type Line = Vec<(&'static str, String)>;

/// JSON Lines with strings, raw numbers in spellings a float would lose, and
/// nested values; returns the file and, per line, (column, raw JSON) pairs.
fn hard_jsonl() -> (Vec<u8>, Vec<Line>) {
    let text = |s: &str| serde_json::to_string(s).unwrap();
    let lines: Vec<Line> = vec![
        vec![
            ("id", text("007")),
            ("amount", "1.50".into()),
            ("big", "12345678901234567890123".into()),
            ("text", text("=SUM(A1)")),
            ("nested", r#"{"a":1,"b":[true,null,"x"]}"#.into()),
        ],
        vec![
            ("id", text("NaN")),
            ("amount", "-1.5".into()),
            ("big", "42".into()),
            // Escapes in the input: \r\n, \", \t and a combining mark.
            (
                "text",
                r#""line\r\nbreak \"q\"\tend 🙂 你好 مرحبا e\u0301""#.into(),
            ),
            ("nested", r#"{"k":{"deep":"v","n":-2}}"#.into()),
        ],
        vec![
            ("id", text("+1")),
            ("amount", "1e5".into()),
            ("big", "-9223372036854775808".into()),
            ("text", text(&big_cell())),
            ("nested", "{}".into()),
        ],
        vec![
            ("id", text("42")),
            ("amount", "2.5E-3".into()),
            ("big", "0".into()),
            ("text", text("")),
            ("nested", r#"{"list":[1,2.25,"3"]}"#.into()),
        ],
    ];
    let mut file = String::new();
    for line in &lines {
        let members: Vec<String> = line
            .iter()
            .map(|(k, v)| format!("{}:{v}", text(k)))
            .collect();
        file.push_str(&format!("{{{}}}\n", members.join(",")));
    }
    (file.into_bytes(), lines)
}

#[test]
fn jsonl_to_csv_keeps_strings_and_number_spelling() {
    let sandbox = Sandbox::with_csv_and_json();
    let (file, lines) = hard_jsonl();
    sandbox.put("hard.jsonl", file);
    let table = read_csv(&sandbox.convert("jsonl", "hard.jsonl", "csv"));
    let names: Vec<&str> = lines[0].iter().map(|(k, _)| *k).collect();
    assert_eq!(table.header, names);
    assert_eq!(table.rows.len(), lines.len(), "row count");
    for (n, (row, line)) in table.rows.iter().zip(&lines).enumerate() {
        for (cell, (name, raw)) in row.iter().zip(line) {
            // Strings unchanged; numbers and nested values as their JSON text.
            let want = match raw.strip_prefix('"') {
                Some(_) => serde_json::from_str::<String>(raw).unwrap(),
                None => raw.clone(),
            };
            assert!(
                *cell == want,
                "row {n}, {name}: {cell:.200?} != {want:.200?}"
            );
        }
    }
}

#[test]
fn jsonl_to_jsonl_keeps_raw_values() {
    let sandbox = Sandbox::with_csv_and_json();
    let (file, _) = hard_jsonl();
    sandbox.put("hard.jsonl", &file);
    let example = std::fs::read(examples_dir().join("conversations.jsonl")).unwrap();
    sandbox.put("conversations.jsonl", &example);
    for (path, input) in [("hard.jsonl", file), ("conversations.jsonl", example)] {
        let want = read_jsonl(&input);
        let got = read_jsonl(&sandbox.convert("jsonl", path, "jsonl"));
        assert_eq!(got.len(), want.len(), "{path}: row count");
        for (n, (got, want)) in got.iter().zip(&want).enumerate() {
            assert_eq!(got.keys(), want.keys(), "{path}: line {n}: members");
            for ((name, got), (_, want)) in got.0.iter().zip(&want.0) {
                assert_same_json(got, want, &format!("{path}: line {n}, {name}"));
            }
        }
    }
}
