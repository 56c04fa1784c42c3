//! The encoder both formatters share: writes rows as JSON objects straight
//! into the output buffer, column by column, without building JSON values.

use arrow_buffer::NullBuffer;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use export_plugin_api::arrow_array::cast::AsArray;
use export_plugin_api::arrow_array::types::{
    Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};
use export_plugin_api::arrow_array::{
    new_empty_array, Array, BooleanArray, LargeStringArray, PrimitiveArray, RecordBatch,
    StringArray, StringViewArray,
};
use export_plugin_api::arrow_schema::{DataType, FieldRef, Schema};
use export_plugin_api::json::{
    is_json_field, is_nested, is_number_spelling, write_json_string, NestedEncoder,
};
use export_plugin_api::time_zone::Rezone;
use export_plugin_api::{PluginError, Result};

/// Field metadata marking a text column whose values are strings by nature
/// (the `jsonl` loader sets it on keys that held JSON strings): number
/// inference is never applied to it, so `"42"` stays a string.
pub const EXACT_TEXT_KEY: &str = "export_json:exact_text";

const DISPLAY: FormatOptions<'static> = FormatOptions::new().with_display_error(false);

/// How objects are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `{"a":1,"b":2}`
    Compact,
    /// One key per line, indented for an object inside a top-level array.
    Pretty,
}

/// What is known about one column before any batch arrives.
struct Plan {
    name: String,
    /// Everything before the value: the separator, the escaped key and the colon.
    prefix: Box<[u8]>,
    data_type: DataType,
    /// An `arrow.json` column: its values are copied verbatim.
    json: bool,
    /// Whether text that spells a number is written as a number.
    infer_numbers: bool,
}

/// Writes the rows of batches of one schema as JSON objects.
pub(crate) struct Encoder {
    plans: Vec<Plan>,
    /// What closes an object.
    close: &'static [u8],
    /// Reused for values rendered by Arrow's display rules.
    text: String,
    /// Moves timestamp columns to the requested `time_zone`, when there is one.
    rezone: Option<Rezone>,
}

impl Encoder {
    /// An encoder for `schema`; refuses column types it cannot write.
    /// With `time_zone`, timestamps are written in that zone (see [`Rezone`]).
    pub(crate) fn new(
        schema: &Schema,
        layout: Layout,
        infer_numbers: bool,
        time_zone: Option<&str>,
    ) -> Result<Self> {
        let rezone = Rezone::for_option(schema, time_zone)?;
        let schema: &Schema = match &rezone {
            Some(rezone) => rezone.schema(),
            None => schema,
        };
        let mut plans = Vec::with_capacity(schema.fields().len());
        for (index, field) in schema.fields().iter().enumerate() {
            check_type(field)?;
            // Keys are escaped once here; every row only copies the bytes.
            let mut prefix = Vec::new();
            prefix.extend_from_slice(match (index, layout) {
                (0, Layout::Compact) => b"{".as_slice(),
                (_, Layout::Compact) => b",",
                (0, Layout::Pretty) => b"{\n    ",
                (_, Layout::Pretty) => b",\n    ",
            });
            write_json_string(&mut prefix, field.name());
            prefix.extend_from_slice(match layout {
                Layout::Compact => b":".as_slice(),
                Layout::Pretty => b": ",
            });
            plans.push(Plan {
                name: field.name().clone(),
                prefix: prefix.into_boxed_slice(),
                data_type: field.data_type().clone(),
                json: is_json_field(field),
                infer_numbers: infer_numbers && !field.metadata().contains_key(EXACT_TEXT_KEY),
            });
        }
        Ok(Encoder {
            plans,
            close: match layout {
                Layout::Compact => b"}",
                Layout::Pretty => b"\n  }",
            },
            text: String::new(),
            rezone,
        })
    }

    /// Writes every row of `batch`, calling `before_row` ahead of each one so
    /// the caller can place separators, and ending each with `after_row`.
    pub(crate) fn write_rows(
        &mut self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        mut before_row: impl FnMut(&mut Vec<u8>),
        after_row: &[u8],
    ) -> Result<()> {
        let batch = Rezone::apply(self.rezone.as_ref(), batch)?;
        let mut columns = self.columns(&batch)?;
        let rows = batch.num_rows();
        out.reserve(estimate(&self.plans, &columns, rows));
        if columns.is_empty() {
            for _ in 0..rows {
                before_row(out);
                out.extend_from_slice(b"{}");
                out.extend_from_slice(after_row);
            }
            return Ok(());
        }
        for row in 0..rows {
            before_row(out);
            for (plan, column) in self.plans.iter().zip(&mut columns) {
                out.extend_from_slice(&plan.prefix);
                if column
                    .nulls
                    .as_ref()
                    .is_some_and(|nulls| nulls.is_null(row))
                {
                    out.extend_from_slice(b"null");
                    continue;
                }
                column.write(plan, row, out, &mut self.text)?;
            }
            out.extend_from_slice(self.close);
            out.extend_from_slice(after_row);
        }
        Ok(())
    }

    /// Every column of `batch`, downcast once.
    fn columns<'a>(&self, batch: &'a RecordBatch) -> Result<Vec<Column<'a>>> {
        if batch.num_columns() != self.plans.len() {
            return Err(PluginError::internal(format!(
                "a batch has {} column(s) but the export's schema has {}",
                batch.num_columns(),
                self.plans.len()
            )));
        }
        let schema = batch.schema_ref();
        let mut columns = Vec::with_capacity(self.plans.len());
        for ((plan, array), field) in self.plans.iter().zip(batch.columns()).zip(schema.fields()) {
            let array: &'a dyn Array = array.as_ref();
            if array.data_type() != &plan.data_type {
                return Err(PluginError::internal(format!(
                    "column {:?} has type {} in a batch but {} in the export's schema",
                    field.name(),
                    array.data_type(),
                    plan.data_type
                )));
            }
            let values = match array.data_type() {
                DataType::Null => Values::Null,
                DataType::Boolean => Values::Bool(array.as_boolean()),
                DataType::Int8 => Values::I8(array.as_primitive()),
                DataType::Int16 => Values::I16(array.as_primitive()),
                DataType::Int32 => Values::I32(array.as_primitive()),
                DataType::Int64 => Values::I64(array.as_primitive()),
                DataType::UInt8 => Values::U8(array.as_primitive()),
                DataType::UInt16 => Values::U16(array.as_primitive()),
                DataType::UInt32 => Values::U32(array.as_primitive()),
                DataType::UInt64 => Values::U64(array.as_primitive()),
                DataType::Float32 => Values::F32(array.as_primitive()),
                DataType::Float64 => Values::F64(array.as_primitive()),
                DataType::Utf8 => Values::Utf8(array.as_string()),
                DataType::LargeUtf8 => Values::LargeUtf8(array.as_string()),
                DataType::Utf8View => Values::Utf8View(array.as_string_view()),
                // Lists, structs and maps as real JSON values; one holding
                // a type without a JSON form (a union) falls back to text.
                data_type if is_nested(data_type) => match NestedEncoder::new(field, array) {
                    Ok(encoder) => Values::Nested(encoder),
                    Err(_) => Values::Other(formatter(array, field)?),
                },
                _ => Values::Other(formatter(array, field)?),
            };
            columns.push(Column {
                nulls: array.logical_nulls(),
                values,
            });
        }
        Ok(columns)
    }
}

/// Refuses, before any output exists, a column that can be written neither
/// as JSON nor as Arrow's text.
fn check_type(field: &FieldRef) -> Result<()> {
    if is_native(field.data_type()) {
        return Ok(());
    }
    let empty = new_empty_array(field.data_type());
    if is_nested(field.data_type()) && NestedEncoder::new(field, empty.as_ref()).is_ok() {
        return Ok(());
    }
    formatter(empty.as_ref(), field).map(|_| ())
}

fn is_native(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Null
            | DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

fn formatter<'a>(array: &'a dyn Array, field: &FieldRef) -> Result<ArrayFormatter<'a>> {
    ArrayFormatter::try_new(array, &DISPLAY).map_err(|err| {
        PluginError::unsupported(format!(
            "column {:?} has type {} which cannot be written as JSON: {err}",
            field.name(),
            array.data_type()
        ))
    })
}

/// Output bytes a batch probably needs, so `out` grows once per batch.
fn estimate(plans: &[Plan], columns: &[Column<'_>], rows: usize) -> usize {
    let mut per_row = 2;
    let mut values = 0;
    for (plan, column) in plans.iter().zip(columns) {
        per_row += plan.prefix.len() + 8;
        values += match &column.values {
            Values::Utf8(array) => array.values().len(),
            Values::LargeUtf8(array) => array.values().len(),
            _ => 0,
        };
    }
    rows.saturating_mul(per_row).saturating_add(values)
}

/// One column of the batch being written.
struct Column<'a> {
    nulls: Option<NullBuffer>,
    values: Values<'a>,
}

enum Values<'a> {
    Null,
    Bool(&'a BooleanArray),
    I8(&'a PrimitiveArray<Int8Type>),
    I16(&'a PrimitiveArray<Int16Type>),
    I32(&'a PrimitiveArray<Int32Type>),
    I64(&'a PrimitiveArray<Int64Type>),
    U8(&'a PrimitiveArray<UInt8Type>),
    U16(&'a PrimitiveArray<UInt16Type>),
    U32(&'a PrimitiveArray<UInt32Type>),
    U64(&'a PrimitiveArray<UInt64Type>),
    F32(&'a PrimitiveArray<Float32Type>),
    F64(&'a PrimitiveArray<Float64Type>),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    /// Lists, structs and maps: JSON arrays and objects.
    Nested(NestedEncoder<'a>),
    /// Dates, timestamps, decimals, binary, ...: Arrow's text, as a string.
    Other(ArrayFormatter<'a>),
}

impl Column<'_> {
    /// Writes the value at `row`, which is not null.
    fn write(
        &mut self,
        plan: &Plan,
        row: usize,
        out: &mut Vec<u8>,
        text: &mut String,
    ) -> Result<()> {
        match &mut self.values {
            Values::Null => out.extend_from_slice(b"null"),
            Values::Bool(array) => out.extend_from_slice(if array.value(row) {
                b"true".as_slice()
            } else {
                b"false"
            }),
            Values::I8(array) => write_int(out, array.value(row)),
            Values::I16(array) => write_int(out, array.value(row)),
            Values::I32(array) => write_int(out, array.value(row)),
            Values::I64(array) => write_int(out, array.value(row)),
            Values::U8(array) => write_int(out, array.value(row)),
            Values::U16(array) => write_int(out, array.value(row)),
            Values::U32(array) => write_int(out, array.value(row)),
            Values::U64(array) => write_int(out, array.value(row)),
            Values::F32(array) => {
                let value = array.value(row);
                if value.is_finite() {
                    out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
                } else {
                    write_non_finite(out, value.is_nan(), value.is_sign_negative());
                }
            }
            Values::F64(array) => {
                let value = array.value(row);
                if value.is_finite() {
                    out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
                } else {
                    write_non_finite(out, value.is_nan(), value.is_sign_negative());
                }
            }
            Values::Utf8(array) => write_text(plan, out, array.value(row))?,
            Values::LargeUtf8(array) => write_text(plan, out, array.value(row))?,
            Values::Utf8View(array) => write_text(plan, out, array.value(row))?,
            Values::Nested(encoder) => encoder.encode(row, out),
            Values::Other(formatter) => {
                text.clear();
                formatter.value(row).write(text).map_err(|err| {
                    PluginError::internal(format!("a value cannot be shown as text: {err}"))
                })?;
                write_string(out, text);
            }
        }
        Ok(())
    }
}

fn write_int(out: &mut Vec<u8>, value: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// JSON has no NaN or infinity: they are written as the strings people read.
fn write_non_finite(out: &mut Vec<u8>, nan: bool, negative: bool) {
    out.extend_from_slice(match (nan, negative) {
        (true, _) => b"\"NaN\"".as_slice(),
        (false, false) => b"\"inf\"",
        (false, true) => b"\"-inf\"",
    });
}

fn write_text(plan: &Plan, out: &mut Vec<u8>, text: &str) -> Result<()> {
    if plan.json {
        // An empty value would leave `"key":` without a value: invalid JSON.
        if text.is_empty() {
            return Err(PluginError::invalid_input(format!(
                "column {:?} is tagged arrow.json but holds an empty value, which is not JSON",
                plan.name
            )));
        }
        out.extend_from_slice(text.as_bytes());
    } else if plan.infer_numbers && is_number_spelling(text) {
        out.extend_from_slice(text.as_bytes());
    } else {
        write_string(out, text);
    }
    Ok(())
}

/// Appends `text` as a JSON string literal, escaped exactly as serde_json
/// escapes it (`write_json_string`), but faster: text is the bulk of most
/// exports and rarely needs escaping, so clean runs are found eight bytes at
/// a time and copied whole.
fn write_string(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `bytes[start..index]` is clean and not yet copied.
    let mut start = 0;
    let mut index = 0;
    while index < bytes.len() {
        let end = match bytes.get(index..index + 8) {
            Some(chunk) => {
                let mut word = [0u8; 8];
                word.copy_from_slice(chunk);
                if !needs_escape(u64::from_le_bytes(word)) {
                    index += 8;
                    continue;
                }
                index + 8
            }
            None => bytes.len(),
        };
        for (at, &byte) in bytes.iter().enumerate().take(end).skip(index) {
            if byte < 0x20 || byte == b'"' || byte == b'\\' {
                out.extend_from_slice(&bytes[start..at]);
                write_escape(out, byte);
                start = at + 1;
            }
        }
        index = end;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any of the eight bytes in `word` is a control character, a
/// double quote or a backslash.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS != 0;
    // A byte below 0x20 (bytes of 0x80 and above never match).
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS != 0;
    control
        || has_zero(word ^ (ONES * u64::from(b'"')))
        || has_zero(word ^ (ONES * u64::from(b'\\')))
}

fn write_escape(out: &mut Vec<u8>, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match byte {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(byte >> 4)],
            HEX[usize::from(byte & 0xf)],
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytewise(word: u64) -> bool {
        word.to_le_bytes()
            .iter()
            .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
    }

    #[test]
    fn nested_columns_are_json_values_not_strings() {
        use export_plugin_api::arrow_array::types::Int32Type;
        use export_plugin_api::arrow_array::{ArrayRef, ListArray, StructArray};
        use export_plugin_api::arrow_schema::Field;
        use std::sync::Arc;

        let lists = ListArray::from_iter_primitive::<Int32Type, _, _>([
            Some(vec![Some(1), None]),
            None,
            Some(vec![]),
        ]);
        let names: ArrayRef = Arc::new(StringArray::from(vec![Some(""), None, Some("x")]));
        let record = StructArray::from(vec![(
            Arc::new(Field::new("name", DataType::Utf8, true)),
            names,
        )]);
        let batch = RecordBatch::try_from_iter([
            ("ids", Arc::new(lists) as ArrayRef),
            ("who", Arc::new(record) as ArrayRef),
        ])
        .unwrap();
        let mut encoder = Encoder::new(&batch.schema(), Layout::Compact, true, None).unwrap();
        let mut out = Vec::new();
        encoder.write_rows(&batch, &mut out, |_| {}, b"\n").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            concat!(
                "{\"ids\":[1,null],\"who\":{\"name\":\"\"}}\n",
                "{\"ids\":null,\"who\":{\"name\":null}}\n",
                "{\"ids\":[],\"who\":{\"name\":\"x\"}}\n",
            )
        );
    }

    #[test]
    fn needs_escape_agrees_with_a_byte_by_byte_check() {
        for byte in 0..=255u8 {
            for position in 0..8 {
                let mut bytes = [b'a'; 8];
                bytes[position] = byte;
                let word = u64::from_le_bytes(bytes);
                assert_eq!(needs_escape(word), bytewise(word), "{bytes:?}");
            }
        }
        // Neighbouring bytes must not hide or fake a match through borrows.
        let alphabet = [
            0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0x9f, 0xa0,
            0xa2, 0xdc, 0xff, b'a',
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            let mut bytes = [0u8; 8];
            for byte in &mut bytes {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *byte = alphabet[(state % alphabet.len() as u64) as usize];
            }
            let word = u64::from_le_bytes(bytes);
            assert_eq!(needs_escape(word), bytewise(word), "{bytes:?}");
        }
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_does() {
        let mut specials: Vec<String> = (0..=0x7fu8).map(|b| char::from(b).to_string()).collect();
        specials.extend(["é", "日", "🌍", "\u{2028}", "\u{ffff}"].map(str::to_owned));
        for special in &specials {
            for position in 0..20 {
                for length in [position, position + 1, 24] {
                    let filler = "abcdefghijklmnopqrstuvwxyz".get(..length).unwrap_or("x");
                    let (head, tail) = filler.split_at(position.min(filler.len()));
                    let text = format!("{head}{special}{tail}{special}");
                    let mut out = Vec::new();
                    write_string(&mut out, &text);
                    assert_eq!(
                        String::from_utf8(out).unwrap(),
                        serde_json::to_string(&text).unwrap(),
                        "{text:?}"
                    );
                }
            }
        }
        let mut out = Vec::new();
        write_string(&mut out, "");
        assert_eq!(out, b"\"\"");
    }
}
