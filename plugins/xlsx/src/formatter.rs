//! The `xlsx` formatter: its options, the workbook writer, and their tests.

use arrow_array::timezone::Tz;
use cells::{Column, DateStyle, Kind, Value};
use export_plugin_api::arrow_array::{ArrayRef, RecordBatch};
use export_plugin_api::arrow_schema::{DataType, SchemaRef};
use export_plugin_api::time_zone::TimeZone;
use export_plugin_api::{FormatWriter, Formatter, JsonSchema, NoConfig, PluginError, Result};
use handover::Handover;
use rust_xlsxwriter::{Color, Format, FormatBorder, FormatPattern, Workbook, Worksheet, XlsxError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

mod cells;
mod handover;

/// Rows of data an Excel sheet holds: 1,048,576 rows less the header.
pub const MAX_ROWS_PER_SHEET: u32 = 1_048_575;
/// Columns an Excel sheet holds.
const MAX_COLUMNS: usize = 16_384;
/// Characters (UTF-16 units) Excel holds in one cell.
const MAX_CELL_TEXT: usize = 32_767;
/// Characters of a sheet name.
const MAX_SHEET_NAME: usize = 31;
/// Rows of the first batch measured for the column widths.
const WIDTH_SAMPLE_ROWS: usize = 1_000;
const MIN_WIDTH: usize = 8;
const MAX_WIDTH: usize = 60;

/// What happens when a sheet is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum Overflow {
    /// Continue on a new sheet with its own header (the default).
    #[default]
    NewSheet,
    /// Fail the export.
    Error,
}

/// What happens to text longer than Excel's 32,767 characters per cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum LongText {
    /// Fail the export, naming the row and column (the default: nothing is lost silently).
    #[default]
    Error,
    /// Keep the first 32,767 characters.
    Truncate,
}

/// How timestamp columns are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum Timestamps {
    /// Excel dates and times (the default), which sort, filter and compute as
    /// dates: the wall-clock time of `time_zone` (else of the column's zone),
    /// without its offset, shown to the millisecond at most.
    #[default]
    Date,
    /// Text, spelt exactly as Arrow shows the value and the csv export writes
    /// it (RFC 3339 with the offset, every fractional digit kept).
    Text,
}

/// Options of the `xlsx` formatter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct XlsxOptions {
    /// Name of the first sheet (at most 31 characters, none of `[]:*?/\`);
    /// further sheets add ` (2)`, ` (3)`, ...
    #[schemars(length(min = 1, max = 31))]
    pub sheet_name: String,

    /// Whether the first row of each sheet names the columns (bold, filled, frozen).
    pub header: bool,

    /// When a sheet is full: `"new_sheet"` (default) continues on a new
    /// sheet, `"error"` fails the export.
    pub overflow: Overflow,

    /// Most rows of data on one sheet, at most (and by default) 1,048,575:
    /// Excel's 1,048,576 rows less the header.
    #[schemars(range(min = 1, max = 1_048_575))]
    pub rows_per_sheet: u32,

    /// Text longer than Excel's 32,767 characters per cell: `"error"`
    /// (default) fails the export, `"truncate"` keeps the first 32,767.
    pub long_text: LongText,

    /// Show timestamps as the wall-clock time of this zone (an IANA name such
    /// as `"Europe/Paris"`, or `"UTC"`) instead of the column's own zone.
    /// Timestamps without a zone are shown as they are.
    pub time_zone: Option<String>,

    /// Timestamp columns as `"date"` (default): Excel date-time cells, which
    /// have no zone and show milliseconds at most; or as `"text"`: their exact
    /// spelling as the csv export writes them, offset and every fractional
    /// digit kept (in `time_zone` when it is set; timestamps without a zone
    /// as they are).
    pub timestamps: Timestamps,
}

impl Default for XlsxOptions {
    fn default() -> Self {
        XlsxOptions {
            sheet_name: "Sheet1".to_owned(),
            header: true,
            overflow: Overflow::default(),
            rows_per_sheet: MAX_ROWS_PER_SHEET,
            long_text: LongText::default(),
            time_zone: None,
            timestamps: Timestamps::default(),
        }
    }
}

/// The `xlsx` formatter: an Excel workbook with typed cells (see the crate
/// docs for how each Arrow type is written).
pub struct XlsxFormatter;

impl Formatter for XlsxFormatter {
    type Config = NoConfig;
    type Options = XlsxOptions;
    const NAME: &'static str = "xlsx";
    const DESCRIPTION: &'static str = "Excel workbook (.xlsx), typed cells, frozen header row";
    const MIME_TYPE: &'static str =
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    const EXTENSION: &'static str = "xlsx";

    fn start(
        &self,
        _config: NoConfig,
        options: XlsxOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        Ok(Box::new(XlsxWriter::new(options, schema)?))
    }
}

/// The formats cells are written with, made once per workbook.
struct Formats {
    header: Format,
    date: Format,
    date_time: Format,
    date_time_fraction: Format,
    time: Format,
}

impl Formats {
    fn new() -> Formats {
        Formats {
            header: Format::new()
                .set_bold()
                .set_pattern(FormatPattern::Solid)
                .set_background_color(Color::RGB(0xD9_D9_D9))
                .set_border_bottom(FormatBorder::Thin),
            date: Format::new().set_num_format("yyyy-mm-dd"),
            date_time: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            date_time_fraction: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss.000"),
            time: Format::new().set_num_format("hh:mm:ss"),
        }
    }

    fn date(&self, style: DateStyle) -> &Format {
        match style {
            DateStyle::Date => &self.date,
            DateStyle::DateTime => &self.date_time,
            DateStyle::DateTimeFraction => &self.date_time_fraction,
            DateStyle::Time => &self.time,
        }
    }
}

/// One running xlsx export.
struct XlsxWriter {
    workbook: Workbook,
    schema: SchemaRef,
    kinds: Vec<Kind>,
    formats: Formats,
    options: XlsxOptions,
    time_zone: Option<Tz>,
    /// The zone timestamps written as text are spelt in: the `time_zone`
    /// option's name, when timestamps are text and the option is set.
    text_zone: Option<Arc<str>>,
    /// Column widths, fixed by the first batch (or the header alone).
    widths: Option<Vec<f64>>,
    /// How many sheets exist; rows go to the last one.
    sheets: usize,
    /// The next row index on the current sheet.
    next_row: u32,
    /// Rows of data on the current sheet.
    rows_on_sheet: u32,
    /// Rows of data written in all, for messages.
    rows_written: u64,
    /// The workbook being saved, once `finish` ran.
    handover: Option<Handover>,
}

impl XlsxWriter {
    fn new(options: XlsxOptions, schema: SchemaRef) -> Result<XlsxWriter> {
        if schema.fields().len() > MAX_COLUMNS {
            return Err(PluginError::unsupported(format!(
                "the export has {} columns but an Excel sheet holds at most {MAX_COLUMNS}: \
                 select fewer columns",
                schema.fields().len()
            )));
        }
        if !(1..=MAX_ROWS_PER_SHEET).contains(&options.rows_per_sheet) {
            return Err(PluginError::invalid_input(format!(
                "rows_per_sheet must be 1 to {MAX_ROWS_PER_SHEET}, not {}",
                options.rows_per_sheet
            )));
        }
        // A bad name is refused now, not when the first row arrives.
        Worksheet::new()
            .set_name(&options.sheet_name)
            .map_err(|err| {
                PluginError::invalid_input(format!(
                    "sheet_name {:?} is not a valid Excel sheet name ({err}): use 1 to 31 \
                     characters, none of []:*?/\\, not starting or ending with an apostrophe",
                    options.sheet_name
                ))
            })?;
        let time_zone = options
            .time_zone
            .as_deref()
            .map(|name| TimeZone::named_or_offset(name).map(|zone| zone.tz()))
            .transpose()?;
        let kinds = schema
            .fields()
            .iter()
            .map(|field| {
                let kind = Kind::of(field)?;
                // Arrow's display text is the exact spelling `"text"` asks for.
                Ok(match (options.timestamps, field.data_type()) {
                    (Timestamps::Text, DataType::Timestamp(_, _)) => Kind::Other,
                    _ => kind,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let text_zone = match options.timestamps {
            Timestamps::Text => options.time_zone.as_deref().map(Arc::from),
            Timestamps::Date => None,
        };
        Ok(XlsxWriter {
            workbook: Workbook::new(),
            schema,
            kinds,
            formats: Formats::new(),
            options,
            time_zone,
            text_zone,
            widths: None,
            sheets: 0,
            next_row: 0,
            rows_on_sheet: 0,
            rows_written: 0,
            handover: None,
        })
    }

    /// The name of sheet number `number` (1-based).
    fn sheet_name(&self, number: usize) -> String {
        let base = &self.options.sheet_name;
        if number == 1 {
            return base.clone();
        }
        let suffix = format!(" ({number})");
        let keep = MAX_SHEET_NAME.saturating_sub(suffix.chars().count());
        let mut name: String = base.chars().take(keep).collect();
        // A name may not end with an apostrophe.
        while name.ends_with('\'') {
            name.pop();
        }
        name.push_str(&suffix);
        name
    }

    /// The columns of `batch` as they are written: with a `text_zone`, the
    /// timestamp columns that have a zone are moved to it, so Arrow spells
    /// them with its offset; the values themselves are shared, not copied.
    fn arrays(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        match &self.text_zone {
            Some(zone) => batch
                .columns()
                .iter()
                .map(|array| cells::in_zone(array, zone))
                .collect(),
            None => batch.columns().to_vec(),
        }
    }

    /// Adds a sheet, sets its widths, and writes its header.
    fn open_sheet(&mut self) -> Result<()> {
        let name = self.sheet_name(self.sheets + 1);
        let widths = self.widths.clone().unwrap_or_default();
        let header = self.options.header;
        let sheet = self
            .workbook
            .add_worksheet_with_constant_memory()
            .map_err(|err| {
                PluginError::io(format!(
                    "cannot create the temporary file a sheet is written to: {err}: check \
                     that the temporary folder (TMPDIR) is writable"
                ))
            })?;
        sheet.set_name(&name).map_err(xlsx_error)?;
        for (column, width) in widths.iter().enumerate() {
            sheet
                .set_column_width(column_number(column), *width)
                .map_err(xlsx_error)?;
        }
        if header {
            for (column, field) in self.schema.fields().iter().enumerate() {
                let name = fit_text(field.name(), self.options.long_text, 0, field.name())?;
                sheet
                    .write_string_with_format(0, column_number(column), name, &self.formats.header)
                    .map_err(xlsx_error)?;
            }
            if !self.schema.fields().is_empty() {
                sheet.set_freeze_panes(1, 0).map_err(xlsx_error)?;
            }
        }
        self.sheets += 1;
        self.next_row = u32::from(header);
        self.rows_on_sheet = 0;
        Ok(())
    }

    /// Opens the first sheet, its widths taken from `sample` (the first batch).
    fn begin(&mut self, sample: Option<&RecordBatch>) -> Result<()> {
        if self.widths.is_some() {
            return Ok(());
        }
        self.widths = Some(self.measure(sample)?);
        self.open_sheet()
    }

    /// Column widths from the header and the first rows of `sample`.
    fn measure(&self, sample: Option<&RecordBatch>) -> Result<Vec<f64>> {
        let mut widths: Vec<usize> = self
            .schema
            .fields()
            .iter()
            .zip(&self.kinds)
            .map(|(field, kind)| {
                let header = if self.options.header {
                    field.name().chars().count() + 2
                } else {
                    0
                };
                header.max(kind.fixed_width().unwrap_or(0))
            })
            .collect();
        if let Some(batch) = sample {
            let rows = batch.num_rows().min(WIDTH_SAMPLE_ROWS);
            let arrays = self.arrays(batch);
            for (index, (field, kind)) in self.schema.fields().iter().zip(&self.kinds).enumerate() {
                if kind.fixed_width().is_some() {
                    continue;
                }
                let column = Column::new(arrays[index].as_ref(), field, *kind, None)?;
                for row in 0..rows {
                    let width = match column.value(row) {
                        Value::Text(text) => text
                            .lines()
                            .map(|line| line.chars().count())
                            .max()
                            .unwrap_or(0),
                        Value::Number(number) => number.to_string().len(),
                        _ => 0,
                    };
                    widths[index] = widths[index].max(width.min(MAX_WIDTH));
                }
            }
        }
        Ok(widths
            .into_iter()
            .map(|width| width.clamp(MIN_WIDTH, MAX_WIDTH) as f64 + 1.0)
            .collect())
    }

    /// Makes room for one more row, on a new sheet if this one is full.
    fn next_row(&mut self) -> Result<u32> {
        if self.rows_on_sheet >= self.options.rows_per_sheet {
            match self.options.overflow {
                Overflow::NewSheet => self.open_sheet()?,
                Overflow::Error => {
                    return Err(PluginError::limit_exceeded(format!(
                        "the export has more than {} rows, the most one Excel sheet holds: \
                         set the option overflow to \"new_sheet\" to continue on further \
                         sheets, or export fewer rows (for example with csv)",
                        self.options.rows_per_sheet
                    )))
                }
            }
        }
        let row = self.next_row;
        self.next_row += 1;
        self.rows_on_sheet += 1;
        self.rows_written += 1;
        Ok(row)
    }
}

impl FormatWriter for XlsxWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let _ = out; // The workbook is zipped into the output only at the end.
        if batch.num_columns() != self.kinds.len() {
            return Err(PluginError::internal(format!(
                "a batch has {} column(s) but the export's schema has {}",
                batch.num_columns(),
                self.kinds.len()
            )));
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.begin(Some(batch))?;
        let arrays = self.arrays(batch);
        let columns = self
            .schema
            .fields()
            .iter()
            .zip(&self.kinds)
            .zip(&arrays)
            .map(|((field, kind), array)| Column::new(array.as_ref(), field, *kind, self.time_zone))
            .collect::<Result<Vec<_>>>()?;
        for row in 0..batch.num_rows() {
            let at = self.next_row()?;
            let sheet = self
                .workbook
                .worksheet_from_index(self.sheets - 1)
                .map_err(xlsx_error)?;
            for (index, column) in columns.iter().enumerate() {
                let col = column_number(index);
                match column.value(row) {
                    Value::Blank => continue,
                    Value::Number(number) => sheet.write_number(at, col, number),
                    Value::Bool(value) => sheet.write_boolean(at, col, value),
                    Value::Date(serial, style) => {
                        sheet.write_number_with_format(at, col, serial, self.formats.date(style))
                    }
                    Value::Text(text) => {
                        let name = self.schema.field(index).name();
                        let text =
                            fit_text(&text, self.options.long_text, self.rows_written, name)?;
                        sheet.write_string(at, col, text)
                    }
                }
                .map_err(xlsx_error)?;
            }
        }
        Ok(())
    }

    /// Starts saving the workbook; `finish_more` hands the file over.
    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<()> {
        self.begin(None)?;
        let workbook = std::mem::take(&mut self.workbook);
        self.handover = Some(Handover::start(workbook)?);
        Ok(())
    }

    fn finish_more(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        match &mut self.handover {
            Some(handover) => handover.next(out),
            None => Ok(false),
        }
    }
}

/// `text` within Excel's cell limit, or an error naming where it was.
fn fit_text<'t>(text: &'t str, long_text: LongText, row: u64, column: &str) -> Result<&'t str> {
    // Cheap first: a UTF-8 text no longer than the limit in bytes fits.
    if text.len() <= MAX_CELL_TEXT {
        return Ok(text);
    }
    let mut units = 0;
    for (at, c) in text.char_indices() {
        units += c.len_utf16();
        if units > MAX_CELL_TEXT {
            return match long_text {
                LongText::Truncate => Ok(&text[..at]),
                LongText::Error => Err(PluginError::limit_exceeded(format!(
                    "row {row}, column {column:?}: the text has more than {MAX_CELL_TEXT} \
                     characters, the most an Excel cell holds: set the option long_text to \
                     \"truncate\" to keep the first {MAX_CELL_TEXT}, or use another format \
                     such as csv"
                ))),
            };
        }
    }
    Ok(text)
}

/// Column numbers fit: the schema was checked against Excel's 16,384 columns.
fn column_number(index: usize) -> u16 {
    u16::try_from(index).unwrap_or(u16::MAX)
}

fn xlsx_error(err: XlsxError) -> PluginError {
    PluginError::internal(format!("writing the xlsx file failed: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin;
    use calamine::{Data, Reader, Xlsx};
    use export_plugin_api::arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
        TimestampMicrosecondArray, TimestampMillisecondArray, TimestampSecondArray,
    };
    use export_plugin_api::arrow_schema::{DataType, Field, Schema, TimeUnit};
    use export_plugin_api::json::json_field;
    use export_plugin_api::testing::{run_formatter_parts, text_columns};
    use export_plugin_api::ErrorKind;
    use serde_json::{json, Value as Json};
    use std::io::Cursor;
    use std::sync::Arc;

    fn format_all(options: Json, schema: SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
        let parts = run_formatter_parts(
            &plugin(),
            "xlsx",
            "{}",
            &options.to_string(),
            schema,
            batches,
        )?;
        for part in &parts[..batches.len()] {
            assert!(part.is_empty(), "bytes come only at the end");
        }
        Ok(parts.concat())
    }

    /// Every sheet's name and cells.
    fn read_back(file: Vec<u8>) -> Vec<(String, Vec<Vec<Data>>)> {
        let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(file)).unwrap();
        let names = workbook.sheet_names().to_owned();
        names
            .into_iter()
            .map(|name| {
                let range = workbook.worksheet_range(&name).unwrap();
                let rows = range.rows().map(<[Data]>::to_vec).collect();
                (name, rows)
            })
            .collect()
    }

    fn text_batch(values: &[Option<&str>]) -> RecordBatch {
        text_columns(&[("v", values.to_vec())])
    }

    #[test]
    fn cells_are_typed_from_the_arrow_type_and_text_stays_text() {
        let columns: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new("text", DataType::Utf8, true),
                Arc::new(StringArray::from(vec![Some("007"), Some("=SUM(A1)"), None])),
            ),
            (
                Field::new("int", DataType::Int64, true),
                Arc::new(Int64Array::from(vec![Some(42), None, Some(-7)])),
            ),
            (
                Field::new("float", DataType::Float64, true),
                Arc::new(Float64Array::from(vec![1.5, f64::NAN, -0.25])),
            ),
            (
                Field::new("flag", DataType::Boolean, true),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ),
            (
                Field::new("day", DataType::Date32, true),
                Arc::new(Date32Array::from(vec![Some(19_844), None, Some(0)])),
            ),
            (
                Field::new(
                    "at",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("+02:00".into())),
                    true,
                ),
                Arc::new(
                    TimestampMillisecondArray::from(vec![Some(1_714_550_400_500), None, Some(0)])
                        .with_timezone("+02:00"),
                ),
            ),
            (
                json_field("raw"),
                Arc::new(StringArray::from(vec![
                    Some("\"quoted\""),
                    Some("1.50"),
                    Some("{\"a\":1}"),
                ])),
            ),
        ];
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
        let file = format_all(json!({}), batch.schema(), &[batch]).unwrap();
        let sheets = read_back(file);
        assert_eq!(sheets.len(), 1);
        let (name, rows) = &sheets[0];
        assert_eq!(name, "Sheet1");
        let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
        assert_eq!(header, ["text", "int", "float", "flag", "day", "at", "raw"]);
        assert_eq!(rows[1][0], Data::String("007".into()));
        assert_eq!(rows[2][0], Data::String("=SUM(A1)".into()));
        assert_eq!(rows[3][0], Data::Empty);
        assert_eq!(rows[1][1], Data::Float(42.0));
        assert_eq!(rows[2][1], Data::Empty);
        assert_eq!(rows[1][2], Data::Float(1.5));
        assert_eq!(rows[2][2], Data::String("NaN".into()));
        assert_eq!(rows[1][3], Data::Bool(true));
        assert_eq!(rows[3][3], Data::Empty);
        match &rows[1][4] {
            Data::DateTime(date) => assert_eq!(date.as_f64(), 45_413.0),
            other => panic!("not a date: {other:?}"),
        }
        match &rows[1][5] {
            // 2024-05-01T08:00:00.5Z shown at +02:00: 10:00:00.5.
            Data::DateTime(date) => {
                let want = 45_413.0 + (10.0 * 3600.0 + 0.5) / 86_400.0;
                assert!((date.as_f64() - want).abs() < 1e-9, "{}", date.as_f64());
            }
            other => panic!("not a date: {other:?}"),
        }
        assert_eq!(rows[1][6], Data::String("quoted".into()));
        assert_eq!(rows[2][6], Data::String("1.50".into()));
        assert_eq!(rows[3][6], Data::String("{\"a\":1}".into()));
    }

    /// Timestamps in three units and zones (one without), and a date.
    fn timestamp_batch() -> RecordBatch {
        let columns: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new(
                    "utc",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                    true,
                ),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_714_550_400_123_456),
                        None,
                        Some(-1),
                    ])
                    .with_timezone("UTC"),
                ),
            ),
            (
                Field::new(
                    "paris",
                    DataType::Timestamp(TimeUnit::Millisecond, Some("Europe/Paris".into())),
                    true,
                ),
                Arc::new(
                    TimestampMillisecondArray::from(vec![
                        Some(1_714_550_400_500),
                        Some(1_704_067_200_000),
                        None,
                    ])
                    .with_timezone("Europe/Paris"),
                ),
            ),
            (
                Field::new("naive", DataType::Timestamp(TimeUnit::Second, None), true),
                Arc::new(TimestampSecondArray::from(vec![
                    Some(1_714_550_400),
                    None,
                    Some(0),
                ])),
            ),
            (
                Field::new("day", DataType::Date32, true),
                Arc::new(Date32Array::from(vec![Some(19_844), None, Some(0)])),
            ),
        ];
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    /// The text the csv formatter's path (Rezone, then Rows) gives each
    /// timestamp cell; `None` for nulls.
    fn csv_spelling(batch: &RecordBatch, zone: Option<&str>) -> Vec<Vec<Option<String>>> {
        use export_plugin_api::rows::{Cell, Rows};
        use export_plugin_api::time_zone::Rezone;
        let rezone = Rezone::for_option(&batch.schema(), zone).unwrap();
        let batch = Rezone::apply(rezone.as_ref(), batch).unwrap();
        let rows = Rows::new(&batch).unwrap();
        (0..rows.len())
            .map(|row| {
                (0..3)
                    .map(|column| match rows.cell(row, column) {
                        Cell::Null => None,
                        cell => Some(cell.to_string()),
                    })
                    .collect()
            })
            .collect()
    }

    /// The first three columns of the data rows as text; `None` for blank cells.
    fn text_cells(file: Vec<u8>) -> Vec<Vec<Option<String>>> {
        let sheets = read_back(file);
        sheets[0].1[1..]
            .iter()
            .map(|row| {
                row[..3]
                    .iter()
                    .map(|cell| match cell {
                        Data::String(text) => Some(text.clone()),
                        Data::Empty => None,
                        other => panic!("not a text cell: {other:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn timestamps_as_text_keep_the_exact_spelling_of_the_csv_export() {
        let batch = timestamp_batch();
        let text = |s: &str| Some(s.to_owned());

        let file = format_all(
            json!({ "timestamps": "text" }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        let got = text_cells(file.clone());
        assert_eq!(
            got,
            [
                [
                    text("2024-05-01T08:00:00.123456Z"),
                    text("2024-05-01T10:00:00.500+02:00"),
                    text("2024-05-01T08:00:00"),
                ],
                [None, text("2024-01-01T01:00:00+01:00"), None],
                [
                    text("1969-12-31T23:59:59.999999Z"),
                    None,
                    text("1970-01-01T00:00:00"),
                ],
            ]
        );
        assert_eq!(got, csv_spelling(&batch, None));
        // Dates are whole days, which a date cell holds exactly: they stay dates.
        match &read_back(file)[0].1[1][3] {
            Data::DateTime(date) => assert_eq!(date.as_f64(), 45_413.0),
            other => panic!("not a date: {other:?}"),
        }

        // With a time_zone, zoned timestamps are spelt in it, as the csv
        // export spells them; those without a zone keep their wall-clock
        // spelling, as their date cells do.
        let file = format_all(
            json!({ "timestamps": "text", "time_zone": "America/New_York" }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        let got = text_cells(file);
        let csv = csv_spelling(&batch, Some("America/New_York"));
        for (got, csv) in got.iter().zip(&csv) {
            assert_eq!(got[..2], csv[..2]);
        }
        assert_eq!(got[0][0], text("2024-05-01T04:00:00.123456-04:00"));
        assert_eq!(got[1][1], text("2023-12-31T19:00:00-05:00"));
        assert_eq!(got[0][2], text("2024-05-01T08:00:00"));

        // A fixed offset, which only xlsx's time_zone takes, works too.
        let file = format_all(
            json!({ "timestamps": "text", "time_zone": "+05:30" }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert_eq!(
            text_cells(file)[0][..2],
            [
                text("2024-05-01T13:30:00.123456+05:30"),
                text("2024-05-01T13:30:00.500+05:30")
            ]
        );

        // "date" is the default: date-time cells.
        for options in [json!({}), json!({ "timestamps": "date" })] {
            let file = format_all(options, batch.schema(), std::slice::from_ref(&batch)).unwrap();
            let sheets = read_back(file);
            for cell in &sheets[0].1[1][..3] {
                assert!(matches!(cell, Data::DateTime(_)), "{cell:?}");
            }
        }
    }

    #[test]
    fn header_is_bold_filled_and_frozen_and_columns_have_widths() {
        let batch = text_batch(&[Some("a value that is rather long")]);
        let file = format_all(json!({}), batch.schema(), &[batch]).unwrap();
        let sheet = unzip_entry(&file, "xl/worksheets/sheet1.xml");
        assert!(
            sheet.contains(
                r#"<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>"#
            ),
            "{sheet}"
        );
        // "a value that is rather long" is 27 characters: width 28.
        assert!(
            sheet.contains(r#"<col min="1" max="1" width="28.7109375" customWidth="1"/>"#),
            "{sheet}"
        );
        let styles = unzip_entry(&file, "xl/styles.xml");
        assert!(styles.contains("<b/>"), "{styles}");
        assert!(
            styles.contains(r#"<patternFill patternType="solid">"#),
            "{styles}"
        );
    }

    fn unzip_entry(file: &[u8], name: &str) -> String {
        use std::io::Read;
        let mut zip = zip::ZipArchive::new(Cursor::new(file)).unwrap();
        let mut text = String::new();
        zip.by_name(name)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn rows_past_a_full_sheet_continue_on_new_sheets() {
        let batches = [
            text_batch(&[Some("1"), Some("2")]),
            text_batch(&[Some("3"), Some("4"), Some("5")]),
        ];
        let file = format_all(
            json!({ "rows_per_sheet": 2, "sheet_name": "Data" }),
            batches[0].schema(),
            &batches,
        )
        .unwrap();
        let sheets = read_back(file);
        let got: Vec<(String, Vec<String>)> = sheets
            .into_iter()
            .map(|(name, rows)| (name, rows.iter().map(|r| r[0].to_string()).collect()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "Data".to_owned(),
                    vec!["v".to_owned(), "1".into(), "2".into()]
                ),
                (
                    "Data (2)".to_owned(),
                    vec!["v".to_owned(), "3".into(), "4".into()]
                ),
                ("Data (3)".to_owned(), vec!["v".to_owned(), "5".into()]),
            ]
        );
    }

    #[test]
    fn rows_past_a_full_sheet_fail_with_overflow_error() {
        let batch = text_batch(&[Some("1"), Some("2"), Some("3")]);
        let err = format_all(
            json!({ "rows_per_sheet": 2, "overflow": "error" }),
            batch.schema(),
            &[batch],
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::LimitExceeded);
        assert!(err.message.contains("more than 2 rows"), "{}", err.message);
        assert!(err.message.contains("new_sheet"), "{}", err.message);
        // Exactly full is fine.
        let batch = text_batch(&[Some("1"), Some("2")]);
        format_all(
            json!({ "rows_per_sheet": 2, "overflow": "error" }),
            batch.schema(),
            &[batch],
        )
        .unwrap();
    }

    #[test]
    fn long_names_of_continuation_sheets_stay_within_31_characters() {
        let writer = XlsxWriter::new(
            XlsxOptions {
                sheet_name: "x".repeat(31),
                ..XlsxOptions::default()
            },
            text_batch(&[]).schema(),
        )
        .unwrap();
        assert_eq!(writer.sheet_name(1), "x".repeat(31));
        assert_eq!(writer.sheet_name(12), format!("{} (12)", "x".repeat(26)));
    }

    #[test]
    fn text_beyond_the_cell_limit_fails_or_is_truncated() {
        let long = "é".repeat(MAX_CELL_TEXT) + "🌍";
        let batch = text_batch(&[Some("short"), Some(&long)]);
        let err = format_all(json!({}), batch.schema(), std::slice::from_ref(&batch)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::LimitExceeded);
        assert!(
            err.message.contains("row 2, column \"v\""),
            "{}",
            err.message
        );
        assert!(err.message.contains("truncate"), "{}", err.message);
        let file =
            format_all(json!({ "long_text": "truncate" }), batch.schema(), &[batch]).unwrap();
        let sheets = read_back(file);
        assert_eq!(sheets[0].1[2][0], Data::String("é".repeat(MAX_CELL_TEXT)));
        // A surrogate pair is never cut in half.
        let emoji = "🌍".repeat(MAX_CELL_TEXT);
        let fitted = fit_text(&emoji, LongText::Truncate, 1, "v").unwrap();
        assert_eq!(fitted.chars().count(), MAX_CELL_TEXT / 2);
    }

    #[test]
    fn no_rows_give_a_sheet_with_only_the_header() {
        let schema = text_batch(&[]).schema();
        for batches in [vec![], vec![RecordBatch::new_empty(schema.clone())]] {
            let sheets = read_back(format_all(json!({}), schema.clone(), &batches).unwrap());
            assert_eq!(sheets.len(), 1);
            assert_eq!(sheets[0].1, vec![vec![Data::String("v".into())]]);
        }
        let sheets = read_back(format_all(json!({ "header": false }), schema, &[]).unwrap());
        assert_eq!(sheets.len(), 1);
        assert!(sheets[0].1.is_empty());
        // No columns at all still gives a workbook.
        let sheets = read_back(format_all(json!({}), Arc::new(Schema::empty()), &[]).unwrap());
        assert_eq!(sheets.len(), 1);
    }

    #[test]
    fn options_are_checked() {
        let schema = text_batch(&[]).schema();
        for options in [
            json!({ "sheet_name": "a/b" }),
            json!({ "sheet_name": "" }),
            json!({ "sheet_name": "x".repeat(32) }),
            json!({ "rows_per_sheet": 0 }),
            json!({ "rows_per_sheet": 1_048_576 }),
            json!({ "overflow": "wrap" }),
            json!({ "long_text": "cut" }),
            json!({ "time_zone": "Mars/Olympus" }),
            json!({ "timestamps": "iso" }),
            json!({ "timestamps": true }),
            json!({ "sheet": "x" }),
        ] {
            let err = plugin()
                .start_formatter("xlsx", "{}", &options.to_string(), schema.clone())
                .err()
                .unwrap_or_else(|| panic!("{options} was accepted"));
            assert_eq!(
                err.kind,
                ErrorKind::InvalidInput,
                "{options}: {}",
                err.message
            );
        }
        assert_eq!(
            serde_json::from_str::<XlsxOptions>("{}").unwrap(),
            XlsxOptions::default()
        );
        let schema = export_plugin_api::schemars::schema_for!(XlsxOptions).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema.get("required").is_none(), "{schema}");
    }

    /// Distinct text per row, so the zip cannot shrink it below a few MiB.
    fn bulky(row: usize) -> String {
        format!(
            "row {row} {:x}",
            (row as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        )
    }

    fn bulky_batch(rows: usize) -> RecordBatch {
        let values: Vec<String> = (0..rows).map(bulky).collect();
        RecordBatch::try_from_iter([("v", Arc::new(StringArray::from(values)) as ArrayRef)])
            .unwrap()
    }

    /// A writer of 200,000 bulky rows that has run `finish`, and its bytes so far.
    fn finished_writer() -> (Box<dyn FormatWriter>, Vec<u8>) {
        let batch = bulky_batch(200_000);
        let mut writer = plugin()
            .start_formatter("xlsx", "{}", "{}", batch.schema())
            .unwrap();
        let mut out = Vec::new();
        writer.write(&batch, &mut out).unwrap();
        writer.finish(&mut out).unwrap();
        (writer, out)
    }

    #[test]
    fn a_large_workbook_comes_in_pieces_that_join_into_the_file() {
        let (mut writer, mut file) = finished_writer();
        let mut pieces = 0;
        loop {
            let mut piece = Vec::new();
            if !writer.finish_more(&mut piece).unwrap() {
                assert!(piece.is_empty());
                break;
            }
            assert!(
                !piece.is_empty() && piece.len() <= 1 << 20,
                "{}",
                piece.len()
            );
            file.extend_from_slice(&piece);
            pieces += 1;
        }
        assert!(pieces > 2, "{pieces} pieces for {} bytes", file.len());
        assert!(!writer.finish_more(&mut file).unwrap(), "stays done");
        let sheets = read_back(file);
        assert_eq!(sheets[0].1.len(), 200_001);
        assert_eq!(sheets[0].1[200_000][0], Data::String(bulky(199_999)));
    }

    #[test]
    fn a_writer_dropped_halfway_through_the_handover_ends_its_saver() {
        let (mut writer, mut out) = finished_writer();
        assert!(writer.finish_more(&mut out).unwrap());
        // The saver is blocked on the full channel; dropping must not hang.
        drop(writer);
    }

    #[test]
    fn manifest_declares_the_format() {
        let plugin = plugin();
        let manifest = plugin.manifest();
        assert_eq!(manifest.name, "xlsx");
        let formats: Vec<(&str, &str, &str)> = manifest
            .formatters
            .iter()
            .map(|f| (f.name.as_str(), f.mime_type.as_str(), f.extension.as_str()))
            .collect();
        assert_eq!(
            formats,
            [(
                "xlsx",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "xlsx"
            )]
        );
    }
}
