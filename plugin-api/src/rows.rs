//! A row view over record batches, for formatter authors who would rather
//! not work column by column.
//!
//! ```
//! use std::sync::Arc;
//! use export_plugin_api::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
//! use export_plugin_api::rows::{Cell, Rows};
//!
//! let batch = RecordBatch::try_from_iter([
//!     ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
//!     ("name", Arc::new(StringArray::from(vec![Some("ada"), None])) as ArrayRef),
//! ]).unwrap();
//! let rows = Rows::new(&batch).unwrap();
//! let second = rows.row(1);
//! assert!(matches!(second.get(0), Cell::Int(2)));
//! assert!(matches!(second.get(1), Cell::Null));
//! assert_eq!(rows.row(0).get(1).to_string(), "ada");
//! let named: Vec<String> = rows.row(0).named_cells().map(|(n, c)| format!("{n}={c}")).collect();
//! assert_eq!(named, ["id=1", "name=ada"]);
//! ```
//!
//! Nested values (lists, structs, maps, and any nesting of them) are
//! [`Cell::Json`]: compact JSON text, `[1,null,"x"]` or `{"a":1,"b":[true]}`.
//! A null element is `null` and an empty string `""`, while a null cell is
//! still [`Cell::Null`] and an empty list `[]`. The encoding rules (maps,
//! NaN, timestamps, binary) are those of [`crate::json::NestedEncoder`].
//!
//! ```
//! use std::sync::Arc;
//! use export_plugin_api::arrow_array::{ArrayRef, ListArray, RecordBatch};
//! use export_plugin_api::arrow_array::types::Int32Type;
//! use export_plugin_api::rows::{Cell, Rows};
//!
//! let lists = ListArray::from_iter_primitive::<Int32Type, _, _>([
//!     Some(vec![Some(1), None]),
//!     None,
//!     Some(vec![]),
//! ]);
//! let batch = RecordBatch::try_from_iter([("ids", Arc::new(lists) as ArrayRef)]).unwrap();
//! let rows = Rows::new(&batch).unwrap();
//! assert!(matches!(rows.cell(0, 0), Cell::Json("[1,null]")));
//! assert!(matches!(rows.cell(1, 0), Cell::Null));
//! assert_eq!(rows.cell(2, 0).to_string(), "[]");
//! ```

use crate::error::{PluginError, Result};
use crate::json::{is_json_field, is_nested, json_value_text, NestedValues};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type,
    UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_buffer::NullBuffer;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Field, Fields};
use std::fmt;

mod writer;
pub use writer::{RowFormat, RowWriter};

/// One value, borrowed from its batch.
pub enum Cell<'a> {
    /// A null.
    Null,
    /// A boolean.
    Bool(bool),
    /// Any signed integer column.
    Int(i64),
    /// Any unsigned integer column.
    UInt(u64),
    /// A `Float64` value (may be NaN or infinite).
    Float(f64),
    /// A text value (`Utf8`, `LargeUtf8`, `Utf8View`).
    Text(&'a str),
    /// A raw JSON value from an `arrow.json` column (see [`crate::json`]), or
    /// a nested value (list, struct, map) as compact JSON text: `[1,null]`,
    /// `{"a":"x"}` (see [`crate::json::NestedEncoder`]).
    Json(&'a str),
    /// Binary data.
    Binary(&'a [u8]),
    /// Any other type (dates, timestamps, decimals, dictionaries, ...),
    /// rendered by Arrow's display rules when formatted.
    Formatted(arrow_cast::display::ValueFormatter<'a>),
}

impl fmt::Display for Cell<'_> {
    /// The value as plain text: nulls are empty, JSON strings lose their quotes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Null => Ok(()),
            Cell::Bool(value) => write!(f, "{value}"),
            Cell::Int(value) => write!(f, "{value}"),
            Cell::UInt(value) => write!(f, "{value}"),
            Cell::Float(value) => write!(f, "{value}"),
            Cell::Text(text) => f.write_str(text),
            Cell::Json(raw) => f.write_str(&json_value_text(raw)),
            Cell::Binary(bytes) => {
                for byte in *bytes {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Cell::Formatted(value) => write!(f, "{value}"),
        }
    }
}

enum Column<'a> {
    Null,
    Bool(&'a arrow_array::BooleanArray),
    I8(&'a arrow_array::PrimitiveArray<Int8Type>),
    I16(&'a arrow_array::PrimitiveArray<Int16Type>),
    I32(&'a arrow_array::PrimitiveArray<Int32Type>),
    I64(&'a arrow_array::PrimitiveArray<Int64Type>),
    U8(&'a arrow_array::PrimitiveArray<UInt8Type>),
    U16(&'a arrow_array::PrimitiveArray<UInt16Type>),
    U32(&'a arrow_array::PrimitiveArray<UInt32Type>),
    U64(&'a arrow_array::PrimitiveArray<UInt64Type>),
    F64(&'a arrow_array::PrimitiveArray<Float64Type>),
    Utf8(&'a arrow_array::StringArray, bool),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    Utf8View(&'a arrow_array::StringViewArray),
    Binary(&'a arrow_array::BinaryArray),
    LargeBinary(&'a arrow_array::LargeBinaryArray),
    /// Lists, structs and maps, encoded as JSON once per batch.
    Nested(NestedValues),
    Other(ArrayFormatter<'a>),
}

/// The rows of one batch.
pub struct Rows<'a> {
    /// Each column's validity, taken once: asking the `dyn Array` per cell
    /// showed up in profiles of a CSV export's formatting.
    columns: Vec<(Option<NullBuffer>, Column<'a>)>,
    fields: &'a Fields,
    num_rows: usize,
}

const DISPLAY: FormatOptions<'static> = FormatOptions::new().with_display_error(false);

impl<'a> Rows<'a> {
    /// A row view of `batch`. Fails only for a column type Arrow cannot display.
    ///
    /// A nested column whose values have no JSON form (one holding a union,
    /// say) is shown by Arrow's display rules instead.
    pub fn new(batch: &'a RecordBatch) -> Result<Self> {
        let schema = batch.schema_ref();
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (index, array) in batch.columns().iter().enumerate() {
            let array: &'a dyn Array = array.as_ref();
            let field = schema.field(index);
            let column = match array.data_type() {
                DataType::Null => Column::Null,
                DataType::Boolean => Column::Bool(array.as_boolean()),
                DataType::Int8 => Column::I8(array.as_primitive()),
                DataType::Int16 => Column::I16(array.as_primitive()),
                DataType::Int32 => Column::I32(array.as_primitive()),
                DataType::Int64 => Column::I64(array.as_primitive()),
                DataType::UInt8 => Column::U8(array.as_primitive()),
                DataType::UInt16 => Column::U16(array.as_primitive()),
                DataType::UInt32 => Column::U32(array.as_primitive()),
                DataType::UInt64 => Column::U64(array.as_primitive()),
                DataType::Float64 => Column::F64(array.as_primitive()),
                DataType::Utf8 => Column::Utf8(array.as_string(), is_json_field(field)),
                DataType::LargeUtf8 => Column::LargeUtf8(array.as_string()),
                DataType::Utf8View => Column::Utf8View(array.as_string_view()),
                DataType::Binary => Column::Binary(array.as_binary()),
                DataType::LargeBinary => Column::LargeBinary(array.as_binary()),
                data_type if is_nested(data_type) => {
                    match NestedValues::new(&schema.fields()[index], array) {
                        Ok(values) => Column::Nested(values),
                        Err(_) => Column::Other(displayed(array, field)?),
                    }
                }
                _ => Column::Other(displayed(array, field)?),
            };
            columns.push((array.nulls().cloned(), column));
        }
        Ok(Rows {
            columns,
            fields: schema.fields(),
            num_rows: batch.num_rows(),
        })
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.num_rows
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.num_rows == 0
    }

    /// How many columns.
    pub fn num_columns(&self) -> usize {
        self.columns.len()
    }

    /// Row `index` (panics when out of range, like slice indexing).
    pub fn row(&self, index: usize) -> Row<'_, 'a> {
        assert!(index < self.num_rows, "row {index} out of range");
        Row { rows: self, index }
    }

    /// Every row in order.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_, 'a>> {
        (0..self.num_rows).map(move |index| Row { rows: self, index })
    }

    /// The value at (`row`, `column`).
    pub fn cell(&self, row: usize, column: usize) -> Cell<'_> {
        let (nulls, column) = &self.columns[column];
        if nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)) {
            return Cell::Null;
        }
        match column {
            Column::Null => Cell::Null,
            Column::Bool(a) => Cell::Bool(a.value(row)),
            Column::I8(a) => Cell::Int(a.value(row).into()),
            Column::I16(a) => Cell::Int(a.value(row).into()),
            Column::I32(a) => Cell::Int(a.value(row).into()),
            Column::I64(a) => Cell::Int(a.value(row)),
            Column::U8(a) => Cell::UInt(a.value(row).into()),
            Column::U16(a) => Cell::UInt(a.value(row).into()),
            Column::U32(a) => Cell::UInt(a.value(row).into()),
            Column::U64(a) => Cell::UInt(a.value(row)),
            Column::F64(a) => Cell::Float(a.value(row)),
            Column::Utf8(a, false) => Cell::Text(a.value(row)),
            Column::Utf8(a, true) => Cell::Json(a.value(row)),
            Column::LargeUtf8(a) => Cell::Text(a.value(row)),
            Column::Utf8View(a) => Cell::Text(a.value(row)),
            Column::Binary(a) => Cell::Binary(a.value(row)),
            Column::LargeBinary(a) => Cell::Binary(a.value(row)),
            Column::Nested(values) => Cell::Json(values.text(row)),
            Column::Other(formatter) => Cell::Formatted(formatter.value(row)),
        }
    }
}

/// Arrow's display of `array`, or why it has none.
fn displayed<'a>(array: &'a dyn Array, field: &Field) -> Result<ArrayFormatter<'a>> {
    ArrayFormatter::try_new(array, &DISPLAY).map_err(|err| {
        PluginError::unsupported(format!(
            "column {:?} has type {} which cannot be shown as text: {err}",
            field.name(),
            array.data_type()
        ))
    })
}

/// One row of a [`Rows`] view.
#[derive(Clone, Copy)]
pub struct Row<'r, 'a> {
    rows: &'r Rows<'a>,
    index: usize,
}

impl<'r> Row<'r, '_> {
    /// The row's position in its batch.
    pub fn index(&self) -> usize {
        self.index
    }
    /// How many cells.
    pub fn len(&self) -> usize {
        self.rows.num_columns()
    }
    /// Whether the row has no cells.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The cell in `column`.
    pub fn get(&self, column: usize) -> Cell<'r> {
        self.rows.cell(self.index, column)
    }
    /// Every cell in column order.
    pub fn cells(&self) -> impl Iterator<Item = Cell<'r>> + '_ {
        (0..self.len()).map(move |column| self.get(column))
    }
    /// Every cell in column order, with its column's name.
    pub fn named_cells(&self) -> impl Iterator<Item = (&'r str, Cell<'r>)> + '_ {
        let fields = self.rows.fields;
        (0..self.len()).map(move |column| (fields[column].name().as_str(), self.get(column)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, TimestampMicrosecondArray};
    use std::sync::Arc;

    fn shown(zone: Option<&str>) -> Result<String> {
        let column: ArrayRef = Arc::new(
            TimestampMicrosecondArray::from(vec![1_714_557_600_123_456]).with_timezone_opt(zone),
        );
        let batch = RecordBatch::try_from_iter([("at", column)])?;
        let rows = Rows::new(&batch)?;
        Ok(rows.row(0).get(0).to_string())
    }

    #[test]
    fn timestamps_show_with_zone_names_and_offsets() {
        assert_eq!(shown(None).unwrap(), "2024-05-01T10:00:00.123456");
        assert_eq!(shown(Some("UTC")).unwrap(), "2024-05-01T10:00:00.123456Z");
        assert_eq!(
            shown(Some("+02:00")).unwrap(),
            "2024-05-01T12:00:00.123456+02:00"
        );
        assert_eq!(
            shown(Some("Europe/Paris")).unwrap(),
            "2024-05-01T12:00:00.123456+02:00"
        );
    }

    /// Every cell of `batch` as `Display` shows it, `None` for `Cell::Null`,
    /// checking that nested values come as `Cell::Json`.
    fn nested_cells(batch: &RecordBatch) -> Vec<Vec<Option<String>>> {
        let rows = Rows::new(batch).unwrap();
        rows.iter()
            .map(|row| {
                row.cells()
                    .map(|cell| match cell {
                        Cell::Null => None,
                        Cell::Json(text) => {
                            assert_eq!(cell.to_string(), text);
                            Some(text.to_owned())
                        }
                        _ => panic!("a nested value must be a Cell::Json"),
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn lists_show_as_json_arrays() {
        use arrow_array::builder::{FixedSizeListBuilder, ListBuilder, StringBuilder};
        use arrow_array::types::Int32Type;
        use arrow_array::ListArray;

        let ints = ListArray::from_iter_primitive::<Int32Type, _, _>([
            Some(vec![Some(1), None, Some(3)]),
            None,
            Some(vec![]),
        ]);
        let mut strings = ListBuilder::new(StringBuilder::new());
        strings.values().append_value("");
        strings.values().append_null();
        strings.values().append_value("x");
        strings.append(true);
        strings.append(true);
        strings.append(false);
        let mut pairs = FixedSizeListBuilder::new(arrow_array::builder::Int64Builder::new(), 2);
        for (first, second, valid) in [
            (Some(1), None, true),
            (None, None, false),
            (Some(0), Some(-2), true),
        ] {
            pairs.values().append_option(first);
            pairs.values().append_option(second);
            pairs.append(valid);
        }
        let batch = RecordBatch::try_from_iter([
            ("ints", Arc::new(ints) as ArrayRef),
            ("strings", Arc::new(strings.finish()) as ArrayRef),
            ("pairs", Arc::new(pairs.finish()) as ArrayRef),
        ])
        .unwrap();
        let shown = |text: &str| Some(text.to_owned());
        assert_eq!(
            nested_cells(&batch),
            [
                [
                    shown("[1,null,3]"),
                    shown(r#"["",null,"x"]"#),
                    shown("[1,null]")
                ],
                [None, shown("[]"), None],
                [shown("[]"), None, shown("[0,-2]")],
            ]
        );
    }

    #[test]
    fn structs_and_maps_show_as_json_objects() {
        use arrow_array::builder::{Int32Builder, MapBuilder, StringBuilder};
        use arrow_array::types::Int32Type;
        use arrow_array::{ListArray, StructArray};
        use arrow_schema::Field;

        let tags =
            ListArray::from_iter_primitive::<Int32Type, _, _>([Some(vec![Some(1), None]), None]);
        let at =
            TimestampMicrosecondArray::from(vec![1_714_557_600_123_456, 0]).with_timezone("+02:00");
        let record = StructArray::from(vec![
            (
                Arc::new(Field::new("tags", tags.data_type().clone(), true)),
                Arc::new(tags) as ArrayRef,
            ),
            (
                Arc::new(Field::new("at", at.data_type().clone(), true)),
                Arc::new(at) as ArrayRef,
            ),
        ]);
        let mut map = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
        map.keys().append_value("a|b");
        map.values().append_value(1);
        map.append(true).unwrap();
        map.append(false).unwrap();
        let batch = RecordBatch::try_from_iter([
            ("record", Arc::new(record) as ArrayRef),
            ("map", Arc::new(map.finish()) as ArrayRef),
        ])
        .unwrap();
        let shown = |text: &str| Some(text.to_owned());
        assert_eq!(
            nested_cells(&batch),
            [
                [
                    shown(r#"{"tags":[1,null],"at":"2024-05-01T12:00:00.123456+02:00"}"#),
                    shown(r#"{"a|b":1}"#),
                ],
                [
                    shown(r#"{"tags":null,"at":"1970-01-01T02:00:00+02:00"}"#),
                    None
                ],
            ]
        );
    }

    #[test]
    fn a_nested_column_without_a_json_form_falls_back_to_arrows_display() {
        use arrow_array::{Int32Array, ListArray, UnionArray};
        use arrow_buffer::{OffsetBuffer, ScalarBuffer};
        use arrow_schema::{Field, UnionFields};

        let fields =
            UnionFields::try_new(vec![0], vec![Field::new("n", DataType::Int32, true)]).unwrap();
        let union = UnionArray::try_new(
            fields,
            ScalarBuffer::from(vec![0i8]),
            None,
            vec![Arc::new(Int32Array::from(vec![5])) as ArrayRef],
        )
        .unwrap();
        let item = Arc::new(Field::new("item", union.data_type().clone(), true));
        let list = ListArray::new(
            item,
            OffsetBuffer::new(vec![0, 1].into()),
            Arc::new(union),
            None,
        );
        let batch = RecordBatch::try_from_iter([("u", Arc::new(list) as ArrayRef)]).unwrap();
        let rows = Rows::new(&batch).unwrap();
        assert!(matches!(rows.cell(0, 0), Cell::Formatted(_)));
    }

    #[test]
    fn an_unknown_zone_is_refused_with_the_column_named() {
        let err = shown(Some("Mars/Olympus")).unwrap_err();
        assert_eq!(err.kind, crate::ErrorKind::Unsupported);
        assert!(err.message.contains("\"at\""), "{err}");
    }
}
