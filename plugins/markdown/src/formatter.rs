//! The `markdown` formatter: a GitHub-flavoured Markdown table, bare or
//! inside a report.

use crate::report::{Report, TemplateOption};
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::{DataType, SchemaRef};
use export_plugin_api::escape::markdown::{escape_inline, escaped};
use export_plugin_api::report::{
    self as stats, format_number, Audience, ChartOption, ReportBuilder, SUMMARY_HEADERS,
};
use export_plugin_api::rows::{Cell, Rows};
use export_plugin_api::{FormatWriter, Formatter, JsonSchema, NoConfig, PluginError, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

pub mod report;

/// Options of the `markdown` formatter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct MarkdownOptions {
    /// Write a report around the table: `"report"` for the built-in one (a
    /// title, the columns, the table, the row count), or
    /// `{"before": "...", "after": "..."}` with minijinja templates of your
    /// own. Default: none, just the table.
    #[serde(default)]
    pub template: Option<TemplateOption>,

    /// The report's title, shown by the built-in report as its heading.
    /// Only with `template` or an `audience` other than `"table"`.
    /// Default: `"Export"`.
    #[serde(default)]
    pub title: Option<String>,

    /// Who the document is for: `"table"` (default: the table alone, as
    /// without this option), `"analyst"` (the table, then a summary of
    /// every column and the charts, computed while the rows stream by) or
    /// `"executive"` (the title, the summary and the charts; no table).
    /// Without `template`, a report starts with `# title`.
    #[serde(default)]
    pub audience: Audience,

    /// Charts, each written as a table of its points:
    /// `{"x": COLUMN, "y": COLUMN or [COLUMNS], "kind": "line" | "bar"}`,
    /// or a list of them; see the README for `agg`, `points` and `title`.
    /// Needs `audience` `"analyst"` or `"executive"`.
    #[serde(default)]
    pub chart: Option<ChartOption>,
}

/// The `markdown` formatter: one GitHub-flavoured Markdown table, a header
/// row naming the columns, then a row per record; numeric columns are
/// right-aligned. Every value is escaped so that it stays in its cell and a
/// GFM reader gives back exactly its text (see [`crate::escape`]); nulls are
/// empty cells. With no columns there is no table (GFM has no table without
/// columns).
pub struct MarkdownFormatter;

impl Formatter for MarkdownFormatter {
    type Config = NoConfig;
    type Options = MarkdownOptions;
    const NAME: &'static str = "markdown";
    const DESCRIPTION: &'static str =
        "A GitHub-flavoured Markdown table, optionally inside a templated report";
    const MIME_TYPE: &'static str = "text/markdown; charset=utf-8";
    const EXTENSION: &'static str = "md";

    fn start(
        &self,
        _config: NoConfig,
        options: MarkdownOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        // Refuse column types that cannot be shown as text before any output exists.
        Rows::new(&RecordBatch::new_empty(schema.clone()))?;
        let charts = stats::check_options(options.audience, options.chart.as_ref())?;
        let insights = if options.audience.shows_report() {
            Some(ReportBuilder::new(&schema, &charts)?)
        } else {
            None
        };
        let heading = match (&options.template, &insights) {
            (None, Some(_)) => Some(format!(
                "# {}",
                escaped(
                    options
                        .title
                        .as_deref()
                        .unwrap_or(crate::report::DEFAULT_TITLE)
                )
            )),
            _ => None,
        };
        let report = match (&options.template, options.title) {
            (Some(template), title) => Some(Report::new(template, title, &schema)?),
            (None, Some(_)) if insights.is_some() => None,
            (None, Some(_)) => {
                return Err(PluginError::invalid_input(
                    "option \"title\" is only used by a report: add \"template\": \"report\" \
                     (or your own template) or an \"audience\", or leave the title out",
                ))
            }
            (None, None) => None,
        };
        // Rendered now so that a mistake fails the export before any output.
        let before = match (&report, heading) {
            (Some(report), _) => separated_before(&report.render_before()?),
            (None, Some(heading)) => separated_before(&heading),
            (None, None) => String::new(),
        };
        Ok(Box::new(MarkdownWriter {
            schema,
            show_table: options.audience.shows_table(),
            insights,
            report,
            pending_start: Some(before),
            row_count: 0,
            line: String::new(),
            text: String::new(),
        }))
    }
}

/// One running Markdown export.
struct MarkdownWriter {
    schema: SchemaRef,
    /// Whether rows are written (not for the executive audience).
    show_table: bool,
    /// The summary and charts being computed, when the audience wants them.
    insights: Option<ReportBuilder>,
    report: Option<Report>,
    /// The report's text before the table and the table's header, until the
    /// first output is written.
    pending_start: Option<String>,
    row_count: u64,
    /// Reused for each row.
    line: String,
    /// Reused for cells that are not text already (numbers, dates, ...).
    text: String,
}

impl MarkdownWriter {
    /// Writes the report's opening and the table header, once.
    fn write_start(&mut self, out: &mut Vec<u8>) {
        let Some(before) = self.pending_start.take() else {
            return;
        };
        out.extend_from_slice(before.as_bytes());
        let fields = self.schema.fields();
        if fields.is_empty() || !self.show_table {
            return;
        }
        let line = &mut self.line;
        line.clear();
        line.push('|');
        for field in fields {
            line.push(' ');
            escape_inline(field.name(), line);
            line.push_str(" |");
        }
        line.push_str("\n|");
        for field in fields {
            line.push_str(if is_numeric(field.data_type()) {
                " ---: |"
            } else {
                " --- |"
            });
        }
        line.push('\n');
        out.extend_from_slice(line.as_bytes());
    }
}

impl FormatWriter for MarkdownWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        check_schema(&self.schema, batch)?;
        self.write_start(out);
        if let Some(insights) = &mut self.insights {
            insights.add(batch)?;
        }
        let rows = Rows::new(batch)?;
        let columns = rows.num_columns();
        self.row_count += rows.len() as u64;
        if columns == 0 || !self.show_table {
            return Ok(());
        }
        for row in 0..rows.len() {
            let line = &mut self.line;
            line.clear();
            line.push('|');
            for column in 0..columns {
                // The space before each pipe also keeps a trailing `\\` of a
                // value from escaping the pipe that ends the cell.
                line.push(' ');
                match rows.cell(row, column) {
                    Cell::Text(value) => escape_inline(value, line),
                    Cell::Null => {}
                    other => {
                        self.text.clear();
                        // Writing into a String cannot fail.
                        let _ = write!(self.text, "{other}");
                        escape_inline(&self.text, line);
                    }
                }
                line.push_str(" |");
            }
            line.push('\n');
            out.extend_from_slice(line.as_bytes());
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.write_start(out);
        let wrote_insights = self.insights.is_some();
        if let Some(insights) = self.insights.take() {
            // A blank line ends the table; without it the text would be a row.
            if self.show_table && !self.schema.fields().is_empty() {
                out.push(b'\n');
            }
            out.extend_from_slice(render_insights(&insights.finish()).as_bytes());
        }
        if let Some(report) = &self.report {
            let after = report.render_after(self.row_count)?;
            let after = after.trim_start_matches(['\n', '\r']);
            if !after.is_empty() {
                // A blank line ends the table; without it the text would be a row.
                if !self.schema.fields().is_empty() || wrote_insights {
                    out.push(b'\n');
                }
                out.extend_from_slice(after.as_bytes());
                if !after.ends_with('\n') {
                    out.push(b'\n');
                }
            }
        }
        Ok(())
    }
}

/// The summary, then each chart as a table of its points, as Markdown
/// ending in a line break.
fn render_insights(report: &stats::Report) -> String {
    let mut text = String::new();
    let summary = &report.summary;
    let _ = write!(
        text,
        "## Summary\n\n{} row{}.\n",
        summary.row_count,
        if summary.row_count == 1 { "" } else { "s" }
    );
    if !summary.columns.is_empty() {
        text.push('\n');
        table_row(&mut text, SUMMARY_HEADERS.iter().copied());
        text.push_str("| --- |");
        for _ in 1..SUMMARY_HEADERS.len() {
            text.push_str(" ---: |");
        }
        text.push('\n');
        for column in &summary.columns {
            let cells = column.cells();
            table_row(&mut text, cells.iter().map(String::as_str));
        }
    }
    for chart in &report.charts {
        text.push_str("\n## ");
        escape_inline(&chart.title, &mut text);
        text.push_str("\n\n");
        escape_inline(&chart.caption(), &mut text);
        text.push_str(".\n\n");
        table_row(
            &mut text,
            std::iter::once(chart.x.as_str()).chain(chart.series.iter().map(String::as_str)),
        );
        text.push_str("| --- |");
        for _ in &chart.series {
            text.push_str(" ---: |");
        }
        text.push('\n');
        if chart.points.is_empty() {
            text.push_str("\nNo points.\n");
        }
        for point in &chart.points {
            let values: Vec<String> = point
                .values
                .iter()
                .map(|v| v.map(format_number).unwrap_or_default())
                .collect();
            table_row(
                &mut text,
                std::iter::once(point.label.as_str()).chain(values.iter().map(String::as_str)),
            );
        }
    }
    text
}

/// One table row of `cells`, escaped.
fn table_row<'c>(text: &mut String, cells: impl Iterator<Item = &'c str>) {
    text.push('|');
    for cell in cells {
        text.push(' ');
        escape_inline(cell, text);
        text.push_str(" |");
    }
    text.push('\n');
}

/// The report's opening, ending in a blank line so that the table starts a
/// block of its own (or empty when the template wrote nothing).
fn separated_before(before: &str) -> String {
    let before = before.trim_end_matches(['\n', '\r']);
    if before.is_empty() {
        String::new()
    } else {
        format!("{before}\n\n")
    }
}

fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_numeric()
}

/// Refuses a batch whose columns are not the ones the export started with.
fn check_schema(schema: &SchemaRef, batch: &RecordBatch) -> Result<()> {
    let expected = schema.fields();
    let got = batch.schema_ref().fields();
    let same = expected.len() == got.len()
        && expected
            .iter()
            .zip(got.iter())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if same {
        Ok(())
    } else {
        Err(PluginError::internal(format!(
            "a batch has columns ({}) that differ from the export's ({})",
            describe(got),
            describe(expected)
        )))
    }
}

fn describe(fields: &export_plugin_api::arrow_schema::Fields) -> String {
    fields
        .iter()
        .map(|f| format!("{:?} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin;
    use export_plugin_api::arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, NullArray,
        RecordBatchOptions, StringArray, UInt8Array,
    };
    use export_plugin_api::arrow_schema::{Field, Schema};
    use export_plugin_api::json::json_field;
    use export_plugin_api::testing::{run_formatter_text, text_columns};
    use export_plugin_api::ErrorKind;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn format_all(options: Value, schema: SchemaRef, batches: &[RecordBatch]) -> Result<String> {
        run_formatter_text(
            &plugin(),
            "markdown",
            "{}",
            &options.to_string(),
            schema,
            batches,
        )
    }

    fn table(batch: &RecordBatch) -> String {
        format_all(json!({}), batch.schema(), std::slice::from_ref(batch)).unwrap()
    }

    /// Splits a table row into its raw cells the way GFM does: at pipes
    /// that no backslash escapes.
    fn raw_cells(line: &str) -> Vec<String> {
        let inner = line
            .strip_prefix("| ")
            .and_then(|l| l.strip_suffix(" |"))
            .unwrap_or_else(|| panic!("not a row: {line:?}"));
        let mut cells = vec![String::new()];
        let mut escaped = false;
        for c in inner.chars() {
            if c == '|' && !escaped {
                let cell = cells.last_mut().unwrap();
                assert!(cell.ends_with(' '), "{line:?}");
                cell.pop();
                cells.push(String::new());
                continue;
            }
            escaped = c == '\\' && !escaped;
            cells.last_mut().unwrap().push(c);
        }
        for cell in &mut cells[1..] {
            assert!(cell.starts_with(' '), "{line:?}");
            cell.remove(0);
        }
        cells
    }

    #[test]
    fn a_table_has_a_header_a_delimiter_row_and_a_row_per_record() {
        let batch = text_columns(&[
            ("id", vec![Some("1"), Some("2")]),
            ("name", vec![Some("ada"), None]),
        ]);
        assert_eq!(
            table(&batch),
            "| id | name |\n| --- | --- |\n| 1 | ada |\n| 2 |  |\n"
        );
    }

    #[test]
    fn every_value_stays_in_its_row_and_column() {
        let hard = [
            "a|b",
            "a\\|b",
            "ends with \\",
            "\\",
            "|",
            "multi\nline",
            "crlf\r\ninside",
            "lone\rcr",
            "\n",
            "  padded  ",
            "*x* _y_ `z` ~w~ [l](u) <b> &amp;",
            "",
        ];
        let batch = text_columns(&[
            ("v", hard.iter().map(|s| Some(*s)).collect()),
            ("w", hard.iter().rev().map(|s| Some(*s)).collect()),
        ]);
        let out = table(&batch);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2 + hard.len(), "{out}");
        for (row, line) in lines[2..].iter().enumerate() {
            let cells = raw_cells(line);
            assert_eq!(cells.len(), 2, "row {row}: {line:?}");
            assert_eq!(
                cells[0],
                export_plugin_api::escape::markdown::escaped(hard[row])
            );
        }
    }

    #[test]
    fn an_empty_header_cell_and_a_table_without_rows_are_valid() {
        let batch = text_columns(&[("", vec![]), ("b", vec![])]);
        assert_eq!(table(&batch), "|  | b |\n| --- | --- |\n");
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
        for batches in [vec![], vec![RecordBatch::new_empty(schema.clone())]] {
            assert_eq!(
                format_all(json!({}), schema.clone(), &batches).unwrap(),
                "| a |\n| --- |\n"
            );
        }
    }

    #[test]
    fn without_columns_there_is_no_table() {
        let schema = Arc::new(Schema::empty());
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(2)),
        )
        .unwrap();
        assert_eq!(
            format_all(json!({}), schema.clone(), std::slice::from_ref(&batch)).unwrap(),
            ""
        );
        let report = format_all(json!({"template": "report"}), schema, &[batch]).unwrap();
        assert_eq!(report, "# Export\n\n0 columns\n\n2 rows.\n");
    }

    #[test]
    fn rows_of_several_batches_form_one_table() {
        let first = text_columns(&[("id", vec![Some("1"), Some("2")])]);
        let second = text_columns(&[("id", vec![Some("3")])]);
        let empty = RecordBatch::new_empty(first.schema());
        let out = format_all(
            json!({}),
            first.schema(),
            &[empty.clone(), first, empty, second],
        )
        .unwrap();
        assert_eq!(out, "| id |\n| --- |\n| 1 |\n| 2 |\n| 3 |\n");
    }

    #[test]
    fn every_column_type_is_written_and_numbers_align_right() {
        let columns: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new("i", DataType::Int64, true),
                Arc::new(Int64Array::from(vec![Some(-7), None])),
            ),
            (
                Field::new("u", DataType::UInt8, true),
                Arc::new(UInt8Array::from(vec![255, 0])),
            ),
            (
                Field::new("f", DataType::Float64, true),
                Arc::new(Float64Array::from(vec![1.5, f64::NAN])),
            ),
            (
                Field::new("b", DataType::Boolean, true),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
            ),
            (
                Field::new("n", DataType::Null, true),
                Arc::new(NullArray::new(2)),
            ),
            (
                Field::new("d", DataType::Date32, true),
                Arc::new(Date32Array::from(vec![Some(19_844), None])),
            ),
            (
                Field::new("dec", DataType::Decimal128(10, 2), true),
                Arc::new(
                    Decimal128Array::from(vec![150, -5])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
            (
                json_field("raw"),
                Arc::new(StringArray::from(vec![
                    Some(r#""a|b""#),
                    Some(r#"{"k":[1]}"#),
                ])),
            ),
        ];
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
        assert_eq!(
            table(&batch),
            "| i | u | f | b | n | d | dec | raw |\n\
             | ---: | ---: | ---: | --- | --- | --- | ---: | --- |\n\
             | -7 | 255 | 1.5 | true |  | 2024-05-01 | 1.50 | a\\|b |\n\
             |  | 0 | NaN |  |  |  | -0.05 | {\"k\":\\[1\\]} |\n"
        );
    }

    #[test]
    fn the_report_surrounds_the_table_with_blank_lines() {
        let batch = text_columns(&[("id", vec![Some("1"), Some("2")])]);
        let out = format_all(
            json!({"template": "report", "title": "Weekly"}),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert_eq!(
            out,
            "# Weekly\n\n1 column: id\n\n| id |\n| --- |\n| 1 |\n| 2 |\n\n2 rows.\n"
        );
        let out = format_all(
            json!({"template": {"before": "Intro", "after": "Outro"}}),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert_eq!(out, "Intro\n\n| id |\n| --- |\n| 1 |\n| 2 |\n\nOutro\n");
        let out = format_all(
            json!({"template": {"after": "{{ row_count }}"}}),
            batch.schema(),
            &[],
        )
        .unwrap();
        assert_eq!(out, "| id |\n| --- |\n\n0\n");
    }

    #[test]
    fn audiences_add_a_summary_and_chart_tables() {
        let batch = text_columns(&[
            (
                "day",
                vec![Some("2024-05-01"), Some("2024-05-01"), Some("2024-05-02")],
            ),
            ("n", vec![Some("2"), Some("3"), Some("|4")]),
        ]);
        let out = format_all(
            json!({"audience": "executive", "title": "Q|2"}),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert!(
            out.starts_with("# Q\\|2\n\n## Summary\n\n3 rows.\n"),
            "{out}"
        );
        assert!(!out.contains("| 2024-05-01 | 2 |"), "no table: {out}");
        assert!(out.contains("| n | 0 |  |  |  |  | 3 |"), "{out}");
        let numbers = text_columns(&[
            (
                "day",
                vec![Some("2024-05-01"), Some("2024-05-01"), Some("2024-05-02")],
            ),
            ("n", vec![Some("2"), Some("3"), Some("4")]),
        ]);
        let out = format_all(
            json!({"audience": "analyst", "chart": [{"x": "day", "y": "n", "kind": "bar"}]}),
            numbers.schema(),
            std::slice::from_ref(&numbers),
        )
        .unwrap();
        assert!(out.starts_with("# Export\n\n| day | n |\n"), "{out}");
        assert!(out.contains("| 2024-05-02 | 4 |\n\n## Summary"), "{out}");
        assert!(out.contains("| n | 0 | 2 | 4 | 9 | 3 | 3 |"), "{out}");
        assert!(
            out.ends_with(
                "## sum of n by day\n\nsum of n per day.\n\n| day | n |\n| --- | ---: |\n\
                 | 2024-05-01 | 5 |\n| 2024-05-02 | 4 |\n"
            ),
            "{out}"
        );
        // The default audience is the table alone, byte for byte.
        assert_eq!(
            format_all(
                json!({"audience": "table"}),
                numbers.schema(),
                std::slice::from_ref(&numbers)
            )
            .unwrap(),
            format_all(json!({}), numbers.schema(), std::slice::from_ref(&numbers)).unwrap()
        );
        let err = format_all(
            json!({"chart": {"x": "day", "y": "n"}}),
            numbers.schema(),
            &[],
        )
        .unwrap_err();
        assert!(err.message.contains("audience"), "{}", err.message);
    }

    #[test]
    fn invalid_options_are_refused() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
        for (options, needle) in [
            (json!({"title": "no template"}), "title"),
            (json!({"template": "fancy"}), "options"),
            (
                json!({"template": {"before": "x", "middle": "y"}}),
                "options",
            ),
            (json!({"template": {"before": "{% if %}"}}), "syntax error"),
            (
                json!({"template": {"before": "{{ row_count }}"}}),
                "undefined",
            ),
            (json!({"template": {"after": "{{ nope }}"}}), "undefined"),
            (json!({"align": "left"}), "align"),
            (json!({"title": 3, "template": "report"}), "options"),
        ] {
            let err = plugin()
                .start_formatter("markdown", "{}", &options.to_string(), schema.clone())
                .err()
                .unwrap_or_else(|| panic!("{options} was accepted"));
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{options}");
            assert!(
                err.message.contains(needle),
                "{options}: {needle} not in {}",
                err.message
            );
        }
        assert_eq!(
            serde_json::from_str::<MarkdownOptions>("{}").unwrap(),
            MarkdownOptions::default()
        );
        let schema = export_plugin_api::schemars::schema_for!(MarkdownOptions).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema.get("required").is_none(), "{schema}");
    }

    #[test]
    fn a_batch_that_does_not_match_the_schema_is_an_error() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("a", DataType::Utf8, true)]));
        let other =
            RecordBatch::try_from_iter([("a", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        let err = format_all(json!({}), schema, &[other]).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Internal);
        assert!(err.message.contains("\"a\""), "{}", err.message);
    }

    #[test]
    fn manifest_declares_the_formatter() {
        let plugin = plugin();
        let manifest = plugin.manifest();
        assert_eq!(manifest.name, "markdown");
        assert!(manifest.loaders.is_empty());
        let formats: Vec<(&str, &str, &str)> = manifest
            .formatters
            .iter()
            .map(|f| (f.name.as_str(), f.mime_type.as_str(), f.extension.as_str()))
            .collect();
        assert_eq!(
            formats,
            [("markdown", "text/markdown; charset=utf-8", "md")]
        );
    }
}
