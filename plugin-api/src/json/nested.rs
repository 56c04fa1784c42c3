//! Nested values (lists, structs, maps) as compact JSON text.
//!
//! The encoding is arrow-json's, with these choices made for exports:
//! - Every null inside a value is written: a null element is `null`, a null
//!   struct field is `"field":null`, and `""` stays an empty string.
//! - Structs are objects (`{"a":1,"b":[true]}`).
//! - A map whose keys are text (`Utf8`, `LargeUtf8`, `Utf8View`) is an object
//!   (`{"k":1}`); a map with any other key type is a list of pairs,
//!   `[{"key":1,"value":"x"}]`, because JSON object keys must be strings.
//! - Floats NaN, infinity and minus infinity are the strings `"NaN"`, `"inf"`
//!   and `"-inf"`, as a top-level `Float64` cell shows them and the `json`
//!   formatter writes them; a JSON number cannot hold them.
//! - Dates, times, timestamps and durations are strings in Arrow's display
//!   spelling, the same text a top-level cell of that type shows (timestamps
//!   in RFC 3339, with the column's offset or zone). A formatter's
//!   `time_zone` option moves only top-level timestamp columns.
//! - Decimals are JSON numbers with their exact digits (`1234.5678`).
//! - Binary values are lowercase hex strings, as a top-level `Binary` cell shows them.
//! - Text inside a nested value is always a JSON string, even in a struct
//!   field tagged `arrow.json`.

use crate::error::{PluginError, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float16Type, Float32Type, Float64Type};
use arrow_array::Array;
use arrow_buffer::{ArrowNativeType, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_json::writer::{make_encoder, Encoder, EncoderFactory, EncoderOptions, NullableEncoder};
use arrow_json::StructMode;
use arrow_schema::{ArrowError, DataType, FieldRef};
use std::sync::{Arc, OnceLock};

/// Whether values of `data_type` are nested, and so shown as JSON text:
/// `List`, `LargeList`, `FixedSizeList`, `ListView`, `LargeListView`,
/// `Struct` and `Map`.
pub fn is_nested(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::ListView(_)
            | DataType::LargeListView(_)
            | DataType::Struct(_)
            | DataType::Map(..)
    )
}

/// Encodes the values of one nested column as compact JSON, row by row,
/// straight into an output buffer. [`NestedValues`] keeps a whole column's
/// text instead.
///
/// ```
/// use std::sync::Arc;
/// use export_plugin_api::arrow_array::{Array, ListArray};
/// use export_plugin_api::arrow_array::types::Int32Type;
/// use export_plugin_api::arrow_schema::Field;
/// use export_plugin_api::json::NestedEncoder;
///
/// let list = ListArray::from_iter_primitive::<Int32Type, _, _>([
///     Some(vec![Some(1), None, Some(3)]),
///     None,
///     Some(vec![]),
/// ]);
/// let field = Arc::new(Field::new("numbers", list.data_type().clone(), true));
/// let mut encoder = NestedEncoder::new(&field, &list).unwrap();
/// let mut out = Vec::new();
/// for row in 0..list.len() {
///     encoder.encode(row, &mut out);
///     out.push(b'\n');
/// }
/// assert_eq!(out, b"[1,null,3]\nnull\n[]\n");
/// ```
pub struct NestedEncoder<'a> {
    encoder: NullableEncoder<'a>,
    len: usize,
}

impl<'a> NestedEncoder<'a> {
    /// An encoder for `array`, whose field (for its name) is `field`. Fails
    /// when a type inside has no JSON form (a union, say) or a timestamp's
    /// time zone is unknown.
    pub fn new(field: &'a FieldRef, array: &'a dyn Array) -> Result<Self> {
        let encoder = make_encoder(field, array, options()).map_err(|err| {
            PluginError::unsupported(format!(
                "column {:?} has type {} whose values cannot be written as JSON ({err}); \
                 cast the column to a supported type before exporting it",
                field.name(),
                array.data_type()
            ))
        })?;
        Ok(NestedEncoder {
            encoder,
            len: array.len(),
        })
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the value at `row` is null.
    pub fn is_null(&self, row: usize) -> bool {
        self.encoder.is_null(row)
    }

    /// Appends the value at `row` as JSON, `null` for a null (panics when
    /// `row` is out of range, like slice indexing).
    pub fn encode(&mut self, row: usize, out: &mut Vec<u8>) {
        assert!(row < self.len, "row {row} out of range");
        if self.encoder.is_null(row) {
            out.extend_from_slice(b"null");
        } else {
            self.encoder.encode(row, out);
        }
    }
}

/// Every value of one nested column as compact JSON text, encoded once
/// into a single buffer (see [`NestedEncoder`] for the rules).
///
/// ```
/// use std::sync::Arc;
/// use export_plugin_api::arrow_array::{Array, ArrayRef, Int64Array, StringArray, StructArray};
/// use export_plugin_api::arrow_schema::Field;
/// use export_plugin_api::json::NestedValues;
///
/// let people = StructArray::from(vec![
///     (Arc::new(Field::new("name", export_plugin_api::arrow_schema::DataType::Utf8, true)),
///      Arc::new(StringArray::from(vec![Some(""), None])) as ArrayRef),
///     (Arc::new(Field::new("age", export_plugin_api::arrow_schema::DataType::Int64, true)),
///      Arc::new(Int64Array::from(vec![36, 7])) as ArrayRef),
/// ]);
/// let field = Arc::new(Field::new("people", people.data_type().clone(), true));
/// let values = NestedValues::new(&field, &people).unwrap();
/// assert_eq!(values.get(0), Some(r#"{"name":"","age":36}"#));
/// assert_eq!(values.get(1), Some(r#"{"name":null,"age":7}"#));
/// ```
pub struct NestedValues {
    text: String,
    /// `ends[row]` is where the text of `row` ends; it starts where the
    /// previous row's ends. A null row's text is empty.
    ends: Vec<usize>,
    nulls: Option<NullBuffer>,
}

impl NestedValues {
    /// The JSON text of every value of `array` (see [`NestedEncoder::new`]
    /// for when it fails).
    pub fn new(field: &FieldRef, array: &dyn Array) -> Result<Self> {
        let mut encoder = NestedEncoder::new(field, array)?;
        let mut text = Vec::with_capacity(array.len().saturating_mul(8));
        let mut ends = Vec::with_capacity(array.len());
        for row in 0..array.len() {
            if !encoder.is_null(row) {
                encoder.encoder.encode(row, &mut text);
            }
            ends.push(text.len());
        }
        // Every piece is UTF-8 (text is copied from UTF-8 arrays, the rest is
        // ASCII); checking once per batch costs little and needs no unsafe code.
        let text = String::from_utf8(text).map_err(|err| {
            PluginError::internal(format!(
                "column {:?} was encoded as JSON that is not UTF-8: {err}",
                field.name()
            ))
        })?;
        Ok(NestedValues {
            text,
            ends,
            nulls: array.logical_nulls(),
        })
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The JSON text of the value at `row`, `None` for a null (panics when
    /// `row` is out of range, like slice indexing).
    pub fn get(&self, row: usize) -> Option<&str> {
        if self.nulls.as_ref().is_some_and(|nulls| nulls.is_null(row)) {
            return None;
        }
        Some(self.text(row))
    }

    /// The JSON text at `row`, empty for a null.
    pub(crate) fn text(&self, row: usize) -> &str {
        let start = match row {
            0 => 0,
            _ => self.ends[row - 1],
        };
        &self.text[start..self.ends[row]]
    }
}

/// The options every nested column is encoded with; built once, as the
/// encoders borrow them for as long as they live.
fn options() -> &'static EncoderOptions {
    static OPTIONS: OnceLock<EncoderOptions> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        EncoderOptions::default()
            .with_explicit_nulls(true)
            .with_struct_mode(StructMode::ObjectOnly)
            .with_encoder_factory(Arc::new(ExportEncoders))
    })
}

/// Where exports differ from arrow-json's defaults: non-finite floats,
/// maps without text keys, and dictionaries whose values hold nulls.
#[derive(Debug)]
struct ExportEncoders;

impl EncoderFactory for ExportEncoders {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        options: &'a EncoderOptions,
    ) -> std::result::Result<Option<NullableEncoder<'a>>, ArrowError> {
        let nulls = array.logical_nulls();
        let encoder: Box<dyn Encoder + 'a> = match array.data_type() {
            DataType::Float16 => {
                let values = array.as_primitive::<Float16Type>().values();
                let widened: Vec<f32> = values.iter().map(|value| value.to_f32()).collect();
                Box::new(FloatEncoder(ScalarBuffer::from(widened)))
            }
            DataType::Float32 => Box::new(FloatEncoder(
                array.as_primitive::<Float32Type>().values().clone(),
            )),
            DataType::Float64 => Box::new(FloatEncoder(
                array.as_primitive::<Float64Type>().values().clone(),
            )),
            DataType::Map(..) => {
                let map = array.as_map();
                if matches!(
                    map.keys().data_type(),
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                ) {
                    return Ok(None);
                }
                Box::new(PairsEncoder {
                    offsets: map.offsets().clone(),
                    keys: make_encoder(field, map.keys().as_ref(), options)?,
                    values: make_encoder(field, map.values().as_ref(), options)?,
                })
            }
            DataType::Dictionary(..) => {
                // arrow-json takes a row's nullness from the keys alone, so a
                // valid key pointing at a null value would be encoded as if
                // it held one; the logical nulls cover both.
                let dictionary = array.as_any_dictionary();
                let values = dictionary.values();
                let keys = if values.is_empty() {
                    // Then every key is null: there is nothing to point at.
                    Vec::new()
                } else {
                    dictionary.normalized_keys()
                };
                Box::new(DictionaryEncoder {
                    keys,
                    values: make_encoder(field, values.as_ref(), options)?,
                })
            }
            _ => return Ok(None),
        };
        Ok(Some(NullableEncoder::new(encoder, nulls)))
    }
}

/// Floats as shortest round-trip numbers; NaN and infinities as strings.
struct FloatEncoder<T: ArrowNativeType>(ScalarBuffer<T>);

impl<T> Encoder for FloatEncoder<T>
where
    T: ArrowNativeType + ryu::Float + Into<f64>,
{
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let value = self.0[idx];
        let wide: f64 = value.into();
        if wide.is_nan() {
            out.extend_from_slice(b"\"NaN\"");
        } else if wide.is_infinite() {
            out.extend_from_slice(if wide > 0.0 {
                b"\"inf\"".as_slice()
            } else {
                b"\"-inf\""
            });
        } else {
            out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
        }
    }
}

/// A map without text keys: `[{"key":k,"value":v},...]`.
struct PairsEncoder<'a> {
    offsets: OffsetBuffer<i32>,
    keys: NullableEncoder<'a>,
    values: NullableEncoder<'a>,
}

impl Encoder for PairsEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let start = self.offsets[idx].as_usize();
        let end = self.offsets[idx + 1].as_usize();
        out.push(b'[');
        for entry in start..end {
            if entry != start {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"key\":");
            encode_or_null(&mut self.keys, entry, out);
            out.extend_from_slice(b",\"value\":");
            encode_or_null(&mut self.values, entry, out);
            out.push(b'}');
        }
        out.push(b']');
    }
}

/// A dictionary's value for each key, the keys already turned into indexes.
struct DictionaryEncoder<'a> {
    keys: Vec<usize>,
    values: NullableEncoder<'a>,
}

impl Encoder for DictionaryEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        match self.keys.get(idx) {
            Some(&key) => encode_or_null(&mut self.values, key, out),
            // Only a null row can have no key, and nulls are not encoded.
            None => out.extend_from_slice(b"null"),
        }
    }
}

fn encode_or_null(encoder: &mut NullableEncoder<'_>, idx: usize, out: &mut Vec<u8>) {
    if encoder.is_null(idx) {
        out.extend_from_slice(b"null");
    } else {
        encoder.encode(idx, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{
        FixedSizeListBuilder, Int32Builder, ListBuilder, MapBuilder, StringBuilder,
    };
    use arrow_array::types::Int32Type;
    use arrow_array::{
        ArrayRef, BinaryArray, Decimal128Array, DictionaryArray, Float64Array, Int64Array,
        LargeListArray, ListArray, StringArray, StructArray, TimestampMicrosecondArray,
    };
    use arrow_buffer::OffsetBuffer;
    use arrow_schema::Field;

    fn texts(array: &dyn Array) -> Vec<Option<String>> {
        let field = Arc::new(Field::new("c", array.data_type().clone(), true));
        let values = NestedValues::new(&field, array).unwrap();
        (0..values.len())
            .map(|row| values.get(row).map(str::to_owned))
            .collect()
    }

    fn list_of(values: ArrayRef, offsets: &[i32], nulls: Option<NullBuffer>) -> ListArray {
        let field = Arc::new(Field::new("item", values.data_type().clone(), true));
        ListArray::new(
            field,
            OffsetBuffer::new(offsets.to_vec().into()),
            values,
            nulls,
        )
    }

    #[test]
    fn lists_keep_null_elements_and_empty_strings_apart() {
        let ints = ListArray::from_iter_primitive::<Int32Type, _, _>([
            Some(vec![Some(1), None, Some(3)]),
            None,
            Some(vec![]),
        ]);
        assert_eq!(
            texts(&ints),
            [Some("[1,null,3]".into()), None, Some("[]".into())]
        );

        let strings: ArrayRef = Arc::new(StringArray::from(vec![Some(""), None, Some("x \"q\"")]));
        let list = list_of(strings, &[0, 3], None);
        assert_eq!(texts(&list), [Some(r#"["",null,"x \"q\""]"#.into())]);
    }

    #[test]
    fn large_and_fixed_size_lists() {
        let large =
            LargeListArray::from_iter_primitive::<Int32Type, _, _>([Some(vec![Some(7), None])]);
        assert_eq!(texts(&large), [Some("[7,null]".into())]);

        let mut fixed = FixedSizeListBuilder::new(Int32Builder::new(), 2);
        fixed.values().append_value(1);
        fixed.values().append_null();
        fixed.append(true);
        fixed.values().append_value(0);
        fixed.values().append_value(0);
        fixed.append(false);
        let fixed = fixed.finish();
        assert_eq!(texts(&fixed), [Some("[1,null]".into()), None]);
    }

    #[test]
    fn structs_hold_lists_and_timestamps() {
        let tags =
            ListArray::from_iter_primitive::<Int32Type, _, _>([Some(vec![Some(1)]), Some(vec![])]);
        let at = TimestampMicrosecondArray::from(vec![Some(1_714_557_600_123_456), None])
            .with_timezone("UTC");
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
        assert_eq!(
            texts(&record),
            [
                Some(r#"{"tags":[1],"at":"2024-05-01T10:00:00.123456Z"}"#.into()),
                Some(r#"{"tags":[],"at":null}"#.into()),
            ]
        );
    }

    #[test]
    fn maps_with_text_keys_are_objects_and_others_are_pairs() {
        let mut map = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
        map.keys().append_value("a");
        map.values().append_value(1);
        map.keys().append_value("b");
        map.values().append_null();
        map.append(true).unwrap();
        map.append(false).unwrap();
        map.append(true).unwrap();
        let map = map.finish();
        assert_eq!(
            texts(&map),
            [Some(r#"{"a":1,"b":null}"#.into()), None, Some("{}".into())]
        );

        let mut map = MapBuilder::new(None, Int32Builder::new(), StringBuilder::new());
        map.keys().append_value(4);
        map.values().append_value("four");
        map.keys().append_value(5);
        map.values().append_null();
        map.append(true).unwrap();
        let map = map.finish();
        assert_eq!(
            texts(&map),
            [Some(
                r#"[{"key":4,"value":"four"},{"key":5,"value":null}]"#.into()
            )]
        );
    }

    #[test]
    fn floats_binary_decimals_and_dictionaries_inside() {
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![
            1.5,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1,
        ]));
        assert_eq!(
            texts(&list_of(floats, &[0, 5], None)),
            [Some(r#"[1.5,"NaN","inf","-inf",0.1]"#.into())]
        );

        let bytes: ArrayRef = Arc::new(BinaryArray::from_opt_vec(vec![
            Some(b"\x00\xff".as_slice()),
            Some(b""),
            None,
        ]));
        assert_eq!(
            texts(&list_of(bytes, &[0, 3], None)),
            [Some(r#"["00ff","",null]"#.into())]
        );

        let decimals: ArrayRef = Arc::new(
            Decimal128Array::from(vec![12_345_678, -5])
                .with_precision_and_scale(10, 4)
                .unwrap(),
        );
        assert_eq!(
            texts(&list_of(decimals, &[0, 2], None)),
            [Some("[1234.5678,-0.0005]".into())]
        );

        // Key 1 is valid but points at a null value.
        let dictionary: ArrayRef = Arc::new(DictionaryArray::new(
            arrow_array::Int32Array::from(vec![Some(0), Some(1), None, Some(0)]),
            Arc::new(StringArray::from(vec![Some("x"), None])),
        ));
        assert_eq!(
            texts(&list_of(dictionary, &[0, 4], None)),
            [Some(r#"["x",null,null,"x"]"#.into())]
        );
    }

    #[test]
    fn a_null_list_and_an_empty_list_differ() {
        let values: ArrayRef = Arc::new(Int64Array::from(Vec::<i64>::new()));
        let list = list_of(
            values,
            &[0, 0, 0],
            Some(NullBuffer::from(vec![false, true])),
        );
        assert_eq!(texts(&list), [None, Some("[]".into())]);
        let field = Arc::new(Field::new("c", list.data_type().clone(), true));
        let mut encoder = NestedEncoder::new(&field, &list).unwrap();
        let mut out = Vec::new();
        encoder.encode(0, &mut out);
        encoder.encode(1, &mut out);
        assert_eq!(out, b"null[]");
    }

    #[test]
    fn what_has_no_json_form_is_refused_with_the_column_named() {
        let list = ListBuilder::new(Int32Builder::new()).finish();
        let at = TimestampMicrosecondArray::from(Vec::<i64>::new()).with_timezone("Mars/Olympus");
        let field = Arc::new(Field::new("at", at.data_type().clone(), true));
        let record = StructArray::from(vec![(field, Arc::new(at) as ArrayRef)]);
        let field = Arc::new(Field::new("odd", record.data_type().clone(), true));
        let err = NestedValues::new(&field, &record).err().unwrap();
        assert_eq!(err.kind, crate::ErrorKind::Unsupported);
        assert!(err.message.contains("\"odd\""), "{err}");
        assert!(texts(&list).is_empty());
    }
}
