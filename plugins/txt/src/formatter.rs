//! The `txt` formatter: an aligned plain-text table, or plain lines.

use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::{Fields, SchemaRef};
use export_plugin_api::rows::{Cell, Rows};
use export_plugin_api::{FormatWriter, Formatter, NoConfig, PluginError, Result};
use std::fmt::Write as _;
use table::{Fit, Grid};
use text::{single_line, truncate};

mod options;
mod table;
pub mod text;

pub use options::{Layout, Overflow, TxtOptions, DEFAULT_SEPARATOR, MAX_MAX_WIDTH, MIN_MAX_WIDTH};

/// The `txt` formatter: text for people. See the crate docs for the layouts
/// and how columns are sized without reading every row first.
pub struct TxtFormatter;

impl Formatter for TxtFormatter {
    type Config = NoConfig;
    type Options = TxtOptions;
    const NAME: &'static str = "txt";
    const DESCRIPTION: &'static str =
        "Plain text for people: an aligned table (Unicode-width aware) or one line per row";
    const MIME_TYPE: &'static str = "text/plain; charset=utf-8";
    const EXTENSION: &'static str = "txt";

    fn start(
        &self,
        _config: NoConfig,
        options: TxtOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        if !(MIN_MAX_WIDTH..=MAX_MAX_WIDTH).contains(&options.max_width) {
            return Err(PluginError::invalid_input(format!(
                "option \"max_width\" is {}; use a number of columns from {MIN_MAX_WIDTH} to \
                 {MAX_MAX_WIDTH}",
                options.max_width
            )));
        }
        // Refuse column types that cannot be shown as text before any output exists.
        Rows::new(&RecordBatch::new_empty(schema.clone()))?;
        let fit = Fit {
            overflow: options.overflow,
            max_width: options.max_width as usize,
        };
        let values = Values {
            null: options.null,
            text: String::new(),
        };
        match options.layout {
            Layout::Table => {
                if options.separator.is_some() {
                    return Err(PluginError::invalid_input(
                        "option \"separator\" is only used by the lines layout: add \"layout\": \
                         \"lines\", or leave the separator out",
                    ));
                }
                Ok(Box::new(TableWriter {
                    grid: None,
                    right: schema
                        .fields()
                        .iter()
                        .map(|f| f.data_type().is_numeric())
                        .collect(),
                    schema,
                    header: options.header,
                    fit,
                    values,
                    rows_written: 0,
                    text: String::new(),
                }))
            }
            Layout::Lines => {
                let separator = options
                    .separator
                    .unwrap_or_else(|| DEFAULT_SEPARATOR.to_owned());
                if separator.is_empty() || separator.contains(['\n', '\r']) {
                    return Err(PluginError::invalid_input(format!(
                        "option \"separator\" is {separator:?}; use some text without line \
                         breaks, e.g. \"\\t\" or \" | \""
                    )));
                }
                Ok(Box::new(LinesWriter {
                    header_pending: options.header,
                    schema,
                    cells: LineCells {
                        separator,
                        truncate_to: (options.overflow == Overflow::Truncate)
                            .then_some(options.max_width as usize),
                        cell: String::new(),
                    },
                    values,
                    line: String::new(),
                }))
            }
        }
    }
}

/// Turns cells into text, reusing one buffer.
struct Values {
    null: String,
    text: String,
}

impl Values {
    fn text<'v>(&'v mut self, cell: Cell<'v>) -> &'v str {
        match cell {
            Cell::Text(value) => value,
            Cell::Null => &self.null,
            other => {
                self.text.clear();
                // Writing into a String cannot fail.
                let _ = write!(self.text, "{other}");
                &self.text
            }
        }
    }
}

/// One running export in the table layout.
struct TableWriter {
    schema: SchemaRef,
    header: bool,
    fit: Fit,
    /// Set from the first batch with rows (or the header alone at the end).
    grid: Option<Grid>,
    right: Vec<bool>,
    values: Values,
    rows_written: u64,
    /// Reused output text.
    text: String,
}

impl TableWriter {
    /// Sizes the columns from the header and `rows`, then writes the top
    /// rule and the header.
    fn start(&mut self, rows: Option<&Rows>, out: &mut Vec<u8>) {
        let fields = self.schema.fields();
        let mut natural: Vec<usize> = if self.header {
            fields
                .iter()
                .map(|f| self.fit.natural_width(f.name()))
                .collect()
        } else {
            vec![0; fields.len()]
        };
        if let Some(rows) = rows {
            for row in 0..rows.len() {
                for (column, widest) in natural.iter_mut().enumerate() {
                    let width = self
                        .fit
                        .natural_width(self.values.text(rows.cell(row, column)));
                    *widest = (*widest).max(width);
                }
            }
        }
        let grid = Grid {
            widths: natural.iter().map(|&w| self.fit.column_width(w)).collect(),
            right: self.right.clone(),
        };
        self.text.clear();
        grid.rule(&mut self.text);
        if self.header {
            let cells: Vec<Vec<String>> = fields
                .iter()
                .zip(&grid.widths)
                .map(|(field, &width)| self.fit.lines(field.name(), width))
                .collect();
            // Names are left-aligned even over numbers.
            let names = Grid {
                widths: grid.widths.clone(),
                right: vec![false; fields.len()],
            };
            names.row(&cells, &mut self.text);
            grid.rule(&mut self.text);
        }
        out.extend_from_slice(self.text.as_bytes());
        self.grid = Some(grid);
    }
}

impl FormatWriter for TableWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        check_schema(self.schema.fields(), batch)?;
        if batch.num_rows() == 0 || self.schema.fields().is_empty() {
            return Ok(());
        }
        let rows = Rows::new(batch)?;
        if self.grid.is_none() {
            self.start(Some(&rows), out);
        }
        let Some(grid) = &self.grid else {
            return Err(PluginError::internal("the table was not sized"));
        };
        let mut cells: Vec<Vec<String>> = Vec::with_capacity(rows.num_columns());
        for row in 0..rows.len() {
            cells.clear();
            for (column, &width) in grid.widths.iter().enumerate() {
                let value = self.values.text(rows.cell(row, column));
                cells.push(self.fit.lines(value, width));
            }
            self.text.clear();
            grid.row(&cells, &mut self.text);
            out.extend_from_slice(self.text.as_bytes());
        }
        self.rows_written += rows.len() as u64;
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.schema.fields().is_empty() {
            return Ok(());
        }
        if self.grid.is_none() && self.header {
            self.start(None, out);
        }
        if self.rows_written > 0 {
            if let Some(grid) = &self.grid {
                self.text.clear();
                grid.rule(&mut self.text);
                out.extend_from_slice(self.text.as_bytes());
            }
        }
        Ok(())
    }
}

/// One running export in the lines layout.
struct LinesWriter {
    schema: SchemaRef,
    header_pending: bool,
    cells: LineCells,
    values: Values,
    /// Reused output line.
    line: String,
}

/// How the cells of a line are written.
struct LineCells {
    separator: String,
    /// Cut values to this many columns (`overflow: "truncate"`).
    truncate_to: Option<usize>,
    /// Reused for one cell.
    cell: String,
}

impl LineCells {
    fn push(&mut self, first: bool, value: &str, line: &mut String) {
        if !first {
            line.push_str(&self.separator);
        }
        self.cell.clear();
        single_line(value, &mut self.cell);
        match self.truncate_to {
            Some(width) => line.push_str(&truncate(&self.cell, width)),
            None => line.push_str(&self.cell),
        }
    }
}

impl LinesWriter {
    fn write_header(&mut self, out: &mut Vec<u8>) {
        if !std::mem::take(&mut self.header_pending) || self.schema.fields().is_empty() {
            return;
        }
        self.line.clear();
        for (n, field) in self.schema.fields().iter().enumerate() {
            self.cells.push(n == 0, field.name(), &mut self.line);
        }
        self.line.push('\n');
        out.extend_from_slice(self.line.as_bytes());
    }
}

impl FormatWriter for LinesWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        check_schema(self.schema.fields(), batch)?;
        self.write_header(out);
        if self.schema.fields().is_empty() {
            return Ok(());
        }
        let rows = Rows::new(batch)?;
        for row in 0..rows.len() {
            self.line.clear();
            for column in 0..rows.num_columns() {
                let value = self.values.text(rows.cell(row, column));
                self.cells.push(column == 0, value, &mut self.line);
            }
            self.line.push('\n');
            out.extend_from_slice(self.line.as_bytes());
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.write_header(out);
        Ok(())
    }
}

/// Refuses a batch whose columns are not the ones the export started with.
fn check_schema(expected: &Fields, batch: &RecordBatch) -> Result<()> {
    let got = batch.schema_ref().fields();
    let same = expected.len() == got.len()
        && expected
            .iter()
            .zip(got.iter())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    if same {
        return Ok(());
    }
    let describe = |fields: &Fields| {
        fields
            .iter()
            .map(|f| format!("{:?} {}", f.name(), f.data_type()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(PluginError::internal(format!(
        "a batch has columns ({}) that differ from the export's ({})",
        describe(got),
        describe(expected)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin;
    use export_plugin_api::arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, NullArray,
        RecordBatchOptions,
    };
    use export_plugin_api::arrow_schema::{DataType, Field, Schema};
    use export_plugin_api::testing::{run_formatter_text, text_columns};
    use export_plugin_api::ErrorKind;
    use serde_json::{json, Value};
    use std::sync::Arc;

    fn format_all(options: Value, schema: SchemaRef, batches: &[RecordBatch]) -> Result<String> {
        run_formatter_text(
            &plugin(),
            "txt",
            "{}",
            &options.to_string(),
            schema,
            batches,
        )
    }

    fn one(options: Value, batch: &RecordBatch) -> String {
        format_all(options, batch.schema(), std::slice::from_ref(batch)).unwrap()
    }

    /// Every line of a table is as wide as the first, in display columns.
    fn assert_aligned(table: &str) {
        let widths: Vec<usize> = table.lines().map(text::display_width).collect();
        assert!(
            widths.windows(2).all(|w| w[0] == w[1]),
            "ragged table {widths:?}\n{table}"
        );
    }

    #[test]
    fn a_table_aligns_columns_with_nulls_empty() {
        let batch = text_columns(&[
            ("id", vec![Some("1"), Some("22"), None]),
            ("name", vec![Some("ada"), None, Some("")]),
        ]);
        let out = one(json!({}), &batch);
        assert_eq!(
            out,
            "+----+------+\n\
             | id | name |\n\
             +----+------+\n\
             | 1  | ada  |\n\
             | 22 |      |\n\
             |    |      |\n\
             +----+------+\n"
        );
        let out = one(json!({"null": "NULL", "header": false}), &batch);
        assert_eq!(
            out,
            "+------+------+\n| 1    | ada  |\n| 22   | NULL |\n| NULL |      |\n+------+------+\n"
        );
    }

    #[test]
    fn wide_characters_keep_the_columns_aligned() {
        let batch = text_columns(&[
            (
                "text",
                vec![
                    Some("你好，世界！"),
                    Some("Thanks 👋🏽 👨‍👩‍👧‍👦 🎉"),
                    Some("Z̵a̶l̷g̸o e\u{301}"),
                ],
            ),
            ("n", vec![Some("1"), Some("2"), Some("3")]),
        ]);
        let out = one(json!({}), &batch);
        assert_aligned(&out);
        assert!(out.contains("| 你好，世界！    | 1  |"), "{out}");
        assert!(out.contains("| Thanks 👋🏽 👨‍👩‍👧‍👦 🎉 | 2  |"), "{out}");
        let narrow = one(json!({"max_width": 5}), &batch);
        assert_aligned(&narrow);
        let cut = one(json!({"max_width": 5, "overflow": "truncate"}), &batch);
        assert_aligned(&cut);
        assert!(cut.contains("| 你好… | 1  |"), "{cut}");
    }

    #[test]
    fn long_values_wrap_onto_continuation_lines() {
        let batch = text_columns(&[
            ("id", vec![Some("8"), Some("9")]),
            (
                "text",
                vec![
                    Some("Line one\nline two\nline three"),
                    Some("Hi! Can you sum column A for me?"),
                ],
            ),
        ]);
        let out = one(json!({"max_width": 12}), &batch);
        assert_eq!(
            out,
            "+----+--------------+\n\
             | id | text         |\n\
             +----+--------------+\n\
             | 8  | Line one     |\n\
             :    : line two     :\n\
             :    : line three   :\n\
             | 9  | Hi! Can you  |\n\
             :    : sum column A :\n\
             :    : for me?      :\n\
             +----+--------------+\n"
        );
    }

    #[test]
    fn truncation_keeps_one_line_per_row() {
        let batch = text_columns(&[(
            "text",
            vec![Some("Windows line\r\nbreak"), Some("short"), Some("a\rb")],
        )]);
        let out = one(json!({"max_width": 8, "overflow": "truncate"}), &batch);
        assert_eq!(
            out,
            "+----------+\n\
             | text     |\n\
             +----------+\n\
             | Windows… |\n\
             | short    |\n\
             | a↵b      |\n\
             +----------+\n"
        );
    }

    #[test]
    fn columns_are_sized_by_the_first_batch_and_later_values_fit_them() {
        let first = text_columns(&[("v", vec![Some("abc")])]);
        let later = text_columns(&[("v", vec![Some("abcdefgh"), Some("你好世界")])]);
        let out = format_all(json!({}), first.schema(), &[first.clone(), later.clone()]).unwrap();
        assert_eq!(
            out,
            "+-----+\n| v   |\n+-----+\n| abc |\n| abc |\n: def :\n: gh  :\n| 你  |\n: 好  :\n: 世  :\n: 界  :\n+-----+\n"
        );
        let cut = format_all(
            json!({"overflow": "truncate"}),
            first.schema(),
            &[first, later],
        )
        .unwrap();
        assert!(
            cut.ends_with("| abc |\n| ab… |\n| 你… |\n+-----+\n"),
            "{cut}"
        );
        // An empty first batch does not size the table.
        let empty = RecordBatch::new_empty(first_schema());
        let wide = text_columns(&[("v", vec![Some("abcdef")])]);
        let out = format_all(json!({}), first_schema(), &[empty, wide]).unwrap();
        assert_eq!(
            out,
            "+--------+\n| v      |\n+--------+\n| abcdef |\n+--------+\n"
        );
    }

    fn first_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("v", DataType::Utf8, true)]))
    }

    #[test]
    fn control_characters_and_tabs_never_move_the_cursor() {
        let batch = text_columns(&[(
            "v",
            vec![Some("\u{1b}[31mred\u{7}"), Some("a\tb"), Some("x\u{b}y")],
        )]);
        let out = one(json!({}), &batch);
        assert_eq!(
            out,
            "+-----------+\n| v         |\n+-----------+\n| ␛[31mred␇ |\n| a   b     |\n| x␋y       |\n+-----------+\n"
        );
    }

    #[test]
    fn empty_input_and_missing_names_still_make_a_table() {
        let schema = first_schema();
        for batches in [vec![], vec![RecordBatch::new_empty(schema.clone())]] {
            assert_eq!(
                format_all(json!({}), schema.clone(), &batches).unwrap(),
                "+----+\n| v  |\n+----+\n"
            );
            assert_eq!(
                format_all(json!({"header": false}), schema.clone(), &batches).unwrap(),
                ""
            );
            assert_eq!(
                format_all(json!({"layout": "lines"}), schema.clone(), &batches).unwrap(),
                "v\n"
            );
        }
        let unnamed = text_columns(&[("", vec![Some("x")])]);
        assert_eq!(
            one(json!({}), &unnamed),
            "+----+\n|    |\n+----+\n| x  |\n+----+\n"
        );
        // No columns: nothing to draw, whatever the rows.
        let schema = Arc::new(Schema::empty());
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(2)),
        )
        .unwrap();
        for layout in ["table", "lines"] {
            assert_eq!(
                format_all(
                    json!({"layout": layout}),
                    schema.clone(),
                    std::slice::from_ref(&batch)
                )
                .unwrap(),
                ""
            );
        }
    }

    #[test]
    fn numbers_align_right_and_every_type_is_written() {
        let columns: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new("i", DataType::Int64, true),
                Arc::new(Int64Array::from(vec![Some(-7), None, Some(1000)])),
            ),
            (
                Field::new("f", DataType::Float64, true),
                Arc::new(Float64Array::from(vec![1.5, f64::NAN, 0.25])),
            ),
            (
                Field::new("b", DataType::Boolean, true),
                Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            ),
            (
                Field::new("n", DataType::Null, true),
                Arc::new(NullArray::new(3)),
            ),
            (
                Field::new("d", DataType::Date32, true),
                Arc::new(Date32Array::from(vec![Some(19_844), None, Some(0)])),
            ),
        ];
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
        assert_eq!(
            one(json!({}), &batch),
            "+------+------+-------+----+------------+\n\
             | i    | f    | b     | n  | d          |\n\
             +------+------+-------+----+------------+\n\
             |   -7 |  1.5 | true  |    | 2024-05-01 |\n\
             |      |  NaN |       |    |            |\n\
             | 1000 | 0.25 | false |    | 1970-01-01 |\n\
             +------+------+-------+----+------------+\n"
        );
    }

    #[test]
    fn the_lines_layout_writes_one_line_per_row() {
        let batch = text_columns(&[
            ("id", vec![Some("1"), Some("2")]),
            ("text", vec![Some("multi\nline\r\nvalue"), None]),
        ]);
        assert_eq!(
            one(json!({"layout": "lines"}), &batch),
            "id\ttext\n1\tmulti↵line↵value\n2\t\n"
        );
        assert_eq!(
            one(
                json!({"layout": "lines", "separator": " | ", "header": false, "null": "-"}),
                &batch
            ),
            "1 | multi↵line↵value\n2 | -\n"
        );
        assert_eq!(
            one(
                json!({"layout": "lines", "overflow": "truncate", "max_width": 6}),
                &batch
            ),
            "id\ttext\n1\tmulti…\n2\t\n"
        );
        let tabs = text_columns(&[("a\tb", vec![Some("x\ty")])]);
        assert_eq!(one(json!({"layout": "lines"}), &tabs), "a   b\nx   y\n");
    }

    #[test]
    fn invalid_options_are_refused() {
        let schema = first_schema();
        for (options, needle) in [
            (json!({"max_width": 1}), "max_width"),
            (json!({"max_width": 10_001}), "max_width"),
            (json!({"max_width": -3}), "options"),
            (json!({"overflow": "ellipsis"}), "options"),
            (json!({"layout": "grid"}), "options"),
            (json!({"separator": ","}), "separator"),
            (json!({"layout": "lines", "separator": ""}), "separator"),
            (json!({"layout": "lines", "separator": "\n"}), "separator"),
            (json!({"width": 10}), "width"),
        ] {
            let err = plugin()
                .start_formatter("txt", "{}", &options.to_string(), schema.clone())
                .err()
                .unwrap_or_else(|| panic!("{options} was accepted"));
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{options}");
            assert!(err.message.contains(needle), "{options}: {}", err.message);
        }
        assert_eq!(
            serde_json::from_str::<TxtOptions>("{}").unwrap(),
            TxtOptions::default()
        );
        let schema = export_plugin_api::schemars::schema_for!(TxtOptions).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema.get("required").is_none(), "{schema}");
        assert_eq!(schema["properties"]["max_width"]["minimum"], json!(2));
        assert_eq!(schema["properties"]["max_width"]["maximum"], json!(10_000));
    }

    #[test]
    fn a_batch_that_does_not_match_the_schema_is_an_error() {
        let other =
            RecordBatch::try_from_iter([("v", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        for layout in ["table", "lines"] {
            let err = format_all(
                json!({"layout": layout}),
                first_schema(),
                std::slice::from_ref(&other),
            )
            .unwrap_err();
            assert_eq!(err.kind, ErrorKind::Internal);
        }
    }

    #[test]
    fn manifest_declares_the_formatter() {
        let plugin = plugin();
        let manifest = plugin.manifest();
        assert_eq!(manifest.name, "txt");
        let formats: Vec<(&str, &str, &str)> = manifest
            .formatters
            .iter()
            .map(|f| (f.name.as_str(), f.mime_type.as_str(), f.extension.as_str()))
            .collect();
        assert_eq!(formats, [("txt", "text/plain; charset=utf-8", "txt")]);
    }
}
