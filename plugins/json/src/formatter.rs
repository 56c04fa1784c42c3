//! The `json` formatter (one array of objects) and the `jsonl` formatter
//! (one object per line).

use crate::encode::{Encoder, Layout};
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::{FormatWriter, Formatter, JsonSchema, NoConfig, Result};
use serde::{Deserialize, Serialize};

fn default_infer_numbers() -> bool {
    true
}

/// Options of the `json` formatter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct JsonOptions {
    /// Indent the output, one key per line.
    pub pretty: bool,

    /// Write text that is exactly how a number is spelled (`42`, `-1.5`) as
    /// a JSON number. Text such as `007`, `1.50` or `NaN` always stays a
    /// string, and so do values a JSON source held as strings.
    #[serde(default = "default_infer_numbers")]
    pub infer_numbers: bool,

    /// Write timestamp columns in this time zone, always with their UTC
    /// offset (RFC 3339: `"2024-05-01T10:00:00+02:00"`, `Z` for UTC): an IANA name such
    /// as `"Europe/Paris"`, or `"UTC"`. Timestamps without a zone are taken
    /// as UTC. Without it, timestamps keep their column's zone. Text is
    /// never touched.
    pub time_zone: Option<String>,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            pretty: false,
            infer_numbers: default_infer_numbers(),
            time_zone: None,
        }
    }
}

/// Options of the `jsonl` formatter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct JsonlOptions {
    /// Write text that is exactly how a number is spelled (`42`, `-1.5`) as
    /// a JSON number. Text such as `007`, `1.50` or `NaN` always stays a
    /// string, and so do values a JSON source held as strings.
    #[serde(default = "default_infer_numbers")]
    pub infer_numbers: bool,

    /// Write timestamp columns in this time zone, always with their UTC
    /// offset (RFC 3339: `"2024-05-01T10:00:00+02:00"`, `Z` for UTC): an IANA name such
    /// as `"Europe/Paris"`, or `"UTC"`. Timestamps without a zone are taken
    /// as UTC. Without it, timestamps keep their column's zone. Text is
    /// never touched.
    pub time_zone: Option<String>,
}

impl Default for JsonlOptions {
    fn default() -> Self {
        JsonlOptions {
            infer_numbers: default_infer_numbers(),
            time_zone: None,
        }
    }
}

/// The `json` formatter: one JSON array holding an object per row, `[]`
/// when there are no rows. Nulls are `null`; raw JSON (`arrow.json`)
/// columns are copied verbatim; numbers and booleans stay numbers and
/// booleans (NaN and infinities become the strings `"NaN"`, `"inf"`,
/// `"-inf"`); dates, timestamps, decimals and the like are strings.
pub struct JsonFormatter;

impl Formatter for JsonFormatter {
    type Config = NoConfig;
    type Options = JsonOptions;
    const NAME: &'static str = "json";
    const DESCRIPTION: &'static str = "One JSON array with an object per row";
    const MIME_TYPE: &'static str = "application/json";
    const EXTENSION: &'static str = "json";

    fn start(
        &self,
        _config: NoConfig,
        options: JsonOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        let layout = if options.pretty {
            Layout::Pretty
        } else {
            Layout::Compact
        };
        Ok(Box::new(JsonWriter {
            encoder: Encoder::new(
                &schema,
                layout,
                options.infer_numbers,
                options.time_zone.as_deref(),
            )?,
            pretty: options.pretty,
            opened: false,
        }))
    }
}

/// One running `json` export.
struct JsonWriter {
    encoder: Encoder,
    pretty: bool,
    /// Whether the opening bracket (and so at least one row) was written.
    opened: bool,
}

impl FormatWriter for JsonWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let (first, next): (&[u8], &[u8]) = if self.pretty {
            (b"[\n  ", b",\n  ")
        } else {
            (b"[", b",")
        };
        let opened = &mut self.opened;
        self.encoder.write_rows(
            batch,
            out,
            |out| {
                out.extend_from_slice(if *opened { next } else { first });
                *opened = true;
            },
            b"",
        )
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(match (self.opened, self.pretty) {
            (false, _) => b"[]".as_slice(),
            (true, false) => b"]",
            (true, true) => b"\n]",
        });
        Ok(())
    }
}

/// The `jsonl` formatter: one JSON object per line (newline-delimited
/// JSON), nothing at all when there are no rows. Values are written as by
/// the `json` formatter.
pub struct JsonlFormatter;

impl Formatter for JsonlFormatter {
    type Config = NoConfig;
    type Options = JsonlOptions;
    const NAME: &'static str = "jsonl";
    const DESCRIPTION: &'static str = "Newline-delimited JSON, one object per line";
    const MIME_TYPE: &'static str = "application/x-ndjson";
    const EXTENSION: &'static str = "jsonl";

    fn start(
        &self,
        _config: NoConfig,
        options: JsonlOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        Ok(Box::new(JsonlWriter {
            encoder: Encoder::new(
                &schema,
                Layout::Compact,
                options.infer_numbers,
                options.time_zone.as_deref(),
            )?,
        }))
    }
}

/// One running `jsonl` export.
struct JsonlWriter {
    encoder: Encoder,
}

impl FormatWriter for JsonlWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        self.encoder.write_rows(batch, out, |_| {}, b"\n")
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::EXACT_TEXT_KEY;
    use crate::plugin;
    use export_plugin_api::arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
        Float64Array, Int16Array, Int64Array, Int8Array, LargeStringArray, NullArray, StringArray,
        StringViewArray, TimestampSecondArray, UInt64Array, UInt8Array,
    };
    use export_plugin_api::arrow_schema::{DataType, Field, Schema};
    use export_plugin_api::json::json_field;
    use export_plugin_api::testing::{run_formatter_text, text_columns};
    use export_plugin_api::ErrorKind;
    use serde_json::{json, Value};
    use std::collections::HashMap;
    use std::sync::Arc;

    /// Formats `batches` (all of `schema`) with formatter `name`.
    fn format_all(
        name: &str,
        options: Value,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<String> {
        run_formatter_text(&plugin(), name, "{}", &options.to_string(), schema, batches)
    }

    fn jsonl_lines(text: &str) -> Vec<Value> {
        assert!(text.is_empty() || text.ends_with('\n'), "{text:?}");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn big_cell() -> String {
        let mut cell = "ab€ç日🌍 \"q\"\t\\".repeat(5_000);
        cell.push_str("end");
        assert!(cell.len() > 70_000);
        cell
    }

    /// Text as the csv loader would hand it over, and what each value becomes.
    fn csv_cases() -> Vec<(String, Value)> {
        let mut cases: Vec<(String, Value)> = [
            "007",
            "12345678901234567890123",
            "1.50",
            "1e5",
            "-0",
            "+1",
            "2024-05-01T10:00:00+02:00",
            "NaN",
            "inf",
            "=SUM(A1)",
            "",
            " 42",
            "42 ",
            "multi\nline",
            "crlf\r\ninside",
            "say \"hi\"",
            "tab\there",
            "héllo 🌍 日本",
            "back\\slash",
            "null",
            "true",
        ]
        .into_iter()
        .map(|text| (text.to_owned(), Value::String(text.to_owned())))
        .collect();
        cases.push((big_cell(), Value::String(big_cell())));
        cases.push(("42".to_owned(), json!(42)));
        cases.push(("-1.5".to_owned(), json!(-1.5)));
        cases.push(("0".to_owned(), json!(0)));
        cases.push(("0.25".to_owned(), json!(0.25)));
        cases
    }

    #[test]
    fn text_survives_and_only_number_spellings_become_numbers() {
        let cases = csv_cases();
        let batch = text_columns(&[(
            "v",
            cases.iter().map(|(text, _)| Some(text.as_str())).collect(),
        )]);
        for name in ["json", "jsonl"] {
            for infer in [true, false] {
                let out = format_all(
                    name,
                    json!({ "infer_numbers": infer }),
                    batch.schema(),
                    std::slice::from_ref(&batch),
                )
                .unwrap();
                let got: Vec<Value> = if name == "json" {
                    serde_json::from_str::<Vec<Value>>(&out).unwrap()
                } else {
                    jsonl_lines(&out)
                };
                assert_eq!(got.len(), cases.len());
                for ((text, want), got) in cases.iter().zip(&got) {
                    let want = if infer {
                        want.clone()
                    } else {
                        Value::String(text.clone())
                    };
                    assert_eq!(got, &json!({ "v": want }), "{name} infer={infer} {text:?}");
                }
            }
        }
        // Numbers are written exactly as the text spelled them.
        let out = format_all("jsonl", json!({}), batch.schema(), &[batch]).unwrap();
        assert!(
            out.ends_with("{\"v\":42}\n{\"v\":-1.5}\n{\"v\":0}\n{\"v\":0.25}\n"),
            "{out}"
        );
        assert!(out.starts_with(
            "{\"v\":\"007\"}\n{\"v\":\"12345678901234567890123\"}\n{\"v\":\"1.50\"}\n"
        ));
    }

    #[test]
    fn control_characters_are_escaped() {
        let text = "nul\u{0}bell\u{7}bs\u{8}ff\u{c}unit\u{1f}del\u{7f}\n\r\t\"\\/ \u{2028}é";
        let batch = text_columns(&[("k\"\n\u{1}", vec![Some(text)])]);
        let out = format_all("jsonl", json!({}), batch.schema(), &[batch]).unwrap();
        assert_eq!(
            out,
            "{\"k\\\"\\n\\u0001\":\"nul\\u0000bell\\u0007bs\\bff\\funit\\u001fdel\u{7f}\\n\\r\\t\\\"\\\\/ \u{2028}é\"}\n"
        );
        assert_eq!(jsonl_lines(&out), [json!({ "k\"\n\u{1}": text })]);
    }

    #[test]
    fn no_batches_or_empty_batches_give_an_empty_document() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
        let empty = RecordBatch::new_empty(schema.clone());
        for batches in [vec![], vec![empty.clone(), empty]] {
            assert_eq!(
                format_all("json", json!({}), schema.clone(), &batches).unwrap(),
                "[]"
            );
            assert_eq!(
                format_all("json", json!({ "pretty": true }), schema.clone(), &batches).unwrap(),
                "[]"
            );
            assert_eq!(
                format_all("jsonl", json!({}), schema.clone(), &batches).unwrap(),
                ""
            );
        }
    }

    #[test]
    fn rows_of_several_batches_form_one_array() {
        let first = text_columns(&[
            ("id", vec![Some("1"), Some("2")]),
            ("name", vec![Some("ada"), None]),
        ]);
        let second = text_columns(&[("id", vec![Some("3")]), ("name", vec![Some("bob")])]);
        let empty = RecordBatch::new_empty(first.schema());
        let batches = [empty.clone(), first, empty, second];
        let schema = batches[0].schema();
        let out = format_all("json", json!({}), schema.clone(), &batches).unwrap();
        assert_eq!(
            out,
            r#"[{"id":1,"name":"ada"},{"id":2,"name":null},{"id":3,"name":"bob"}]"#
        );
        let out = format_all("jsonl", json!({}), schema.clone(), &batches).unwrap();
        assert_eq!(
            out,
            "{\"id\":1,\"name\":\"ada\"}\n{\"id\":2,\"name\":null}\n{\"id\":3,\"name\":\"bob\"}\n"
        );
        let pretty = format_all("json", json!({ "pretty": true }), schema, &batches).unwrap();
        assert_eq!(
            pretty,
            "[\n  {\n    \"id\": 1,\n    \"name\": \"ada\"\n  },\n  {\n    \"id\": 2,\n    \"name\": null\n  },\n  {\n    \"id\": 3,\n    \"name\": \"bob\"\n  }\n]"
        );
        let parsed: Vec<Value> = serde_json::from_str(&pretty).unwrap();
        assert_eq!(parsed, jsonl_lines(&out));
    }

    #[test]
    fn pretty_output_with_every_kind_of_value_is_valid_json() {
        let batch = typed_batch();
        let compact = format_all(
            "json",
            json!({}),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        let pretty =
            format_all("json", json!({ "pretty": true }), batch.schema(), &[batch]).unwrap();
        let compact: Value = serde_json::from_str(&compact).unwrap();
        let pretty: Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(compact, pretty);
    }

    fn typed_batch() -> RecordBatch {
        let raw: ArrayRef = Arc::new(StringArray::from(vec![
            Some("1.50"),
            Some(r#"{"a": [1, "x"]}"#),
            None,
        ]));
        let columns: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new("bool", DataType::Boolean, true),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ),
            (
                Field::new("i8", DataType::Int8, true),
                Arc::new(Int8Array::from(vec![-128, 0, 127])),
            ),
            (
                Field::new("i16", DataType::Int16, true),
                Arc::new(Int16Array::from(vec![Some(-1), None, Some(300)])),
            ),
            (
                Field::new("i64", DataType::Int64, true),
                Arc::new(Int64Array::from(vec![i64::MIN, 0, i64::MAX])),
            ),
            (
                Field::new("u8", DataType::UInt8, true),
                Arc::new(UInt8Array::from(vec![0, 1, 255])),
            ),
            (
                Field::new("u64", DataType::UInt64, true),
                Arc::new(UInt64Array::from(vec![0, 1, u64::MAX])),
            ),
            (
                Field::new("f64", DataType::Float64, true),
                Arc::new(Float64Array::from(vec![1.5, f64::NAN, f64::NEG_INFINITY])),
            ),
            (
                Field::new("f32", DataType::Float32, true),
                Arc::new(Float32Array::from(vec![0.1, f32::INFINITY, -0.0])),
            ),
            (
                Field::new("null", DataType::Null, true),
                Arc::new(NullArray::new(3)),
            ),
            (json_field("raw"), raw),
            (
                Field::new("large", DataType::LargeUtf8, true),
                Arc::new(LargeStringArray::from(vec!["42", "007", "x\ny"])),
            ),
            (
                Field::new("view", DataType::Utf8View, true),
                Arc::new(StringViewArray::from(vec![
                    "-1.5",
                    "a string longer than twelve bytes",
                    "",
                ])),
            ),
            (
                Field::new("date", DataType::Date32, true),
                Arc::new(Date32Array::from(vec![Some(19_844), None, Some(0)])),
            ),
            (
                Field::new(
                    "ts",
                    DataType::Timestamp(
                        export_plugin_api::arrow_schema::TimeUnit::Second,
                        Some("+02:00".into()),
                    ),
                    true,
                ),
                Arc::new(
                    TimestampSecondArray::from(vec![1_714_550_400, 0, 1]).with_timezone("+02:00"),
                ),
            ),
            (
                Field::new("dec", DataType::Decimal128(10, 2), true),
                Arc::new(
                    Decimal128Array::from(vec![150, -5, 4200])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
            (
                Field::new("bin", DataType::Binary, true),
                Arc::new(BinaryArray::from(vec![b"\x00\xff".as_slice(), b"", b"ab"])),
            ),
        ];
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    #[test]
    fn every_column_type_is_written() {
        let batch = typed_batch();
        let out = format_all("jsonl", json!({}), batch.schema(), &[batch]).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"bool":true,"i8":-128,"i16":-1,"i64":-9223372036854775808,"u8":0,"u64":0,"f64":1.5,"f32":0.1,"null":null,"raw":1.50,"large":42,"view":-1.5,"date":"2024-05-01","ts":"2024-05-01T10:00:00+02:00","dec":"1.50","bin":"00ff"}"#
        );
        assert_eq!(
            lines[1],
            r#"{"bool":false,"i8":0,"i16":null,"i64":0,"u8":1,"u64":1,"f64":"NaN","f32":"inf","null":null,"raw":{"a": [1, "x"]},"large":"007","view":"a string longer than twelve bytes","date":null,"ts":"1970-01-01T02:00:00+02:00","dec":"-0.05","bin":""}"#
        );
        assert_eq!(
            lines[2],
            r#"{"bool":null,"i8":127,"i16":300,"i64":9223372036854775807,"u8":255,"u64":18446744073709551615,"f64":"-inf","f32":-0.0,"null":null,"raw":null,"large":"x\ny","view":"","date":"1970-01-01","ts":"1970-01-01T02:00:01+02:00","dec":"42.00","bin":"6162"}"#
        );
        for line in lines {
            serde_json::from_str::<Value>(line).unwrap();
        }
    }

    #[test]
    fn strings_from_a_json_source_never_become_numbers() {
        let exact = Field::new("s", DataType::Utf8, true).with_metadata(HashMap::from([(
            EXACT_TEXT_KEY.to_owned(),
            "true".to_owned(),
        )]));
        let schema = Arc::new(Schema::new(vec![
            exact,
            Field::new("t", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["42"])),
                Arc::new(StringArray::from(vec!["42"])),
            ],
        )
        .unwrap();
        let out = format_all("jsonl", json!({}), schema, &[batch]).unwrap();
        assert_eq!(out, "{\"s\":\"42\",\"t\":42}\n");
    }

    #[test]
    fn an_empty_raw_json_value_is_refused() {
        let schema = Arc::new(Schema::new(vec![json_field("raw")]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(StringArray::from(vec![""]))])
                .unwrap();
        let err = format_all("json", json!({}), schema, &[batch]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("\"raw\""), "{}", err.message);
    }

    #[test]
    fn rows_without_columns_are_empty_objects() {
        let schema = Arc::new(Schema::empty());
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            vec![],
            &export_plugin_api::arrow_array::RecordBatchOptions::new().with_row_count(Some(2)),
        )
        .unwrap();
        let batches = std::slice::from_ref(&batch);
        assert_eq!(
            format_all("json", json!({}), schema.clone(), batches).unwrap(),
            "[{},{}]"
        );
        assert_eq!(
            format_all("json", json!({ "pretty": true }), schema.clone(), batches).unwrap(),
            "[\n  {},\n  {}\n]"
        );
        assert_eq!(
            format_all("jsonl", json!({}), schema, batches).unwrap(),
            "{}\n{}\n"
        );
    }

    #[test]
    fn a_batch_that_does_not_match_the_schema_is_an_error() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
        let other =
            RecordBatch::try_from_iter([("a", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        let err = format_all("jsonl", json!({}), schema, &[other]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.message.contains("\"a\""), "{}", err.message);
    }

    #[test]
    fn options_are_checked() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
        for (name, options) in [
            ("json", json!({ "pretty": true, "indent": 2 })),
            ("jsonl", json!({ "pretty": true })),
            ("json", json!({ "infer_numbers": "yes" })),
        ] {
            let err = plugin()
                .start_formatter(name, "{}", &options.to_string(), schema.clone())
                .err()
                .unwrap();
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{name} {options}");
        }
        assert_eq!(
            serde_json::from_str::<JsonOptions>("{}").unwrap(),
            JsonOptions::default()
        );
        assert!(JsonOptions::default().infer_numbers);
        assert!(!JsonOptions::default().pretty);
        assert!(JsonlOptions::default().infer_numbers);
        let schema = export_plugin_api::schemars::schema_for!(JsonOptions).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema.get("required").is_none(), "{schema}");
    }

    fn timestamps() -> RecordBatch {
        use export_plugin_api::arrow_array::TimestampMillisecondArray;
        // 2024-05-01T08:00:00Z and 2024-01-01T00:00:00Z.
        let columns: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new(
                    "utc",
                    DataType::Timestamp(
                        export_plugin_api::arrow_schema::TimeUnit::Second,
                        Some("UTC".into()),
                    ),
                    true,
                ),
                Arc::new(
                    TimestampSecondArray::from(vec![
                        Some(1_714_550_400),
                        Some(1_704_067_200),
                        None,
                    ])
                    .with_timezone("UTC"),
                ),
            ),
            (
                Field::new(
                    "naive",
                    DataType::Timestamp(
                        export_plugin_api::arrow_schema::TimeUnit::Millisecond,
                        None,
                    ),
                    true,
                ),
                Arc::new(TimestampMillisecondArray::from(vec![
                    Some(1_714_550_400_250),
                    Some(1_704_067_200_000),
                    Some(0),
                ])),
            ),
            (
                Field::new("text", DataType::Utf8, true),
                Arc::new(StringArray::from(vec![
                    "2024-05-01T08:00:00Z",
                    "2024-01-01 00:00",
                    "42",
                ])),
            ),
        ];
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    #[test]
    fn time_zone_renders_timestamps_with_their_offset_and_leaves_text_alone() {
        let batch = timestamps();
        let want = [
            r#"{"utc":"2024-05-01T10:00:00+02:00","naive":"2024-05-01T10:00:00.250+02:00","text":"2024-05-01T08:00:00Z"}"#,
            r#"{"utc":"2024-01-01T01:00:00+01:00","naive":"2024-01-01T01:00:00+01:00","text":"2024-01-01 00:00"}"#,
            r#"{"utc":null,"naive":"1970-01-01T01:00:00+01:00","text":42}"#,
        ];
        let jsonl = format_all(
            "jsonl",
            json!({ "time_zone": "Europe/Paris" }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert_eq!(jsonl, want.map(|line| format!("{line}\n")).concat());
        let array = format_all(
            "json",
            json!({ "time_zone": "Europe/Paris" }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert_eq!(array, format!("[{}]", want.join(",")));
        let pretty = format_all(
            "json",
            json!({ "time_zone": "Europe/Paris", "pretty": true }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        let pretty: Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(pretty, serde_json::from_str::<Value>(&array).unwrap());
        let utc = format_all(
            "jsonl",
            json!({ "time_zone": "UTC" }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert!(
            utc.starts_with(r#"{"utc":"2024-05-01T08:00:00Z","naive":"2024-05-01T08:00:00.250Z","#),
            "{utc}"
        );
        // Without the option, timestamps keep their own zone (none for naive ones).
        let own = format_all("jsonl", json!({}), batch.schema(), &[batch]).unwrap();
        assert!(
            own.starts_with(r#"{"utc":"2024-05-01T08:00:00Z","naive":"2024-05-01T08:00:00.250","#),
            "{own}"
        );
    }

    #[test]
    fn a_bad_time_zone_is_refused() {
        let schema = timestamps().schema();
        for name in ["json", "jsonl"] {
            for zone in ["Mars/Olympus", "", "+25:00"] {
                let err = plugin()
                    .start_formatter(
                        name,
                        "{}",
                        &json!({ "time_zone": zone }).to_string(),
                        schema.clone(),
                    )
                    .err()
                    .unwrap_or_else(|| panic!("{zone:?} was accepted"));
                assert_eq!(err.kind, ErrorKind::InvalidInput);
                assert!(err.message.contains("time_zone"), "{}", err.message);
            }
        }
        assert_eq!(JsonOptions::default().time_zone, None);
        assert_eq!(JsonlOptions::default().time_zone, None);
    }

    #[test]
    fn manifest_declares_mime_types_and_extensions() {
        let plugin = plugin();
        let manifest = plugin.manifest();
        assert_eq!(manifest.name, "json");
        let formats: Vec<(&str, &str, &str)> = manifest
            .formatters
            .iter()
            .map(|f| (f.name.as_str(), f.mime_type.as_str(), f.extension.as_str()))
            .collect();
        assert_eq!(
            formats,
            [
                ("json", "application/json", "json"),
                ("jsonl", "application/x-ndjson", "jsonl"),
            ]
        );
        let loaders: Vec<&str> = manifest.loaders.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(loaders, ["jsonl"]);
    }
}
