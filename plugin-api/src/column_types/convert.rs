//! [`Converter`]: text columns to typed columns, value by value, strictly.

use super::parse::{
    parse_bool, parse_date, parse_decimal, parse_float64, parse_int64, parse_timestamp, Detail,
    TIMESTAMP_ZONE,
};
use super::{ColumnType, OnError};
use crate::error::PluginError;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date32Type, Decimal128Type, Float64Type, Int64Type,
    TimestampMicrosecondType,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, PrimitiveArray, RecordBatch, RecordBatchOptions, StringArray,
};
use arrow_buffer::{BooleanBufferBuilder, NullBufferBuilder, ScalarBuffer};
use arrow_schema::{Field, Schema, SchemaRef};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// Characters of a refused value shown in a message.
const MAX_SHOWN_CHARS: usize = 40;
/// Column names listed at most in an "unknown column" message.
const MAX_LISTED_COLUMNS: usize = 50;

/// What to tell a person whose value did not fit, after the message.
pub const CONVERT_ERROR_HINT: &str = "fix the value, give the column another type in \
     \"types\" (\"text\" keeps every value), or set \"on_error\": \"null\" to export values \
     that do not fit as nulls";

/// A value that does not fit its column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    /// The row's position in the batch, from 0.
    pub index: usize,
    /// The row's number: the batch's first row number plus `index`.
    pub row: u64,
    /// The column's name.
    pub column: String,
    /// The value, cut to its first 40 characters (then ending in `…`).
    pub value: String,
    /// The type it does not fit.
    pub expected: ColumnType,
    /// Why, when more can be said than "it is not one".
    pub detail: Option<&'static str>,
}

impl ConvertError {
    /// The message without the row: `column "price": "12,5" is not a float64`.
    pub fn what(&self) -> String {
        let mut text = format!(
            "column {:?}: {:?} is not {}",
            self.column,
            self.value,
            self.expected.with_article()
        );
        if let Some(detail) = self.detail {
            text.push_str(" (");
            text.push_str(detail);
            text.push(')');
        }
        text
    }

    /// An invalid-input error: `place` (such as `"data.csv", line 18 (row
    /// 17)`), what did not fit and what to do.
    pub fn at(&self, place: impl fmt::Display) -> PluginError {
        PluginError::invalid_input(format!("{place}, {}; {CONVERT_ERROR_HINT}", self.what()))
    }
}

impl fmt::Display for ConvertError {
    /// `row 17, column "price": "12,5" is not a float64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}, {}", self.row, self.what())
    }
}

impl std::error::Error for ConvertError {}

impl From<ConvertError> for PluginError {
    fn from(err: ConvertError) -> Self {
        PluginError::invalid_input(format!("{err}; {CONVERT_ERROR_HINT}"))
    }
}

/// `value` cut to [`MAX_SHOWN_CHARS`] characters.
fn shown(value: &str) -> String {
    match value.char_indices().nth(MAX_SHOWN_CHARS) {
        None => value.to_owned(),
        Some((end, _)) => format!("{}…", &value[..end]),
    }
}

/// The type of every column named `names`: `types[name]` where given,
/// else `inferred[column]` where given, else `text`.
///
/// A name in `types` that is not among `names` is an invalid-input error
/// naming it and listing the columns. A name that appears more than once
/// in `names` gives its type to each.
pub fn resolve_types<S: AsRef<str>>(
    names: &[S],
    types: &BTreeMap<String, ColumnType>,
    inferred: Option<&[ColumnType]>,
) -> crate::Result<Vec<ColumnType>> {
    if let Some(unknown) = types
        .keys()
        .find(|name| !names.iter().any(|column| column.as_ref() == name.as_str()))
    {
        let mut listed: Vec<String> = names
            .iter()
            .take(MAX_LISTED_COLUMNS)
            .map(|name| format!("{:?}", name.as_ref()))
            .collect();
        if names.len() > MAX_LISTED_COLUMNS {
            listed.push(format!("and {} more", names.len() - MAX_LISTED_COLUMNS));
        }
        return Err(PluginError::invalid_input(format!(
            "types names column {unknown:?}, which is not a column of this export; \
             the columns are: {}",
            listed.join(", ")
        )));
    }
    Ok(names
        .iter()
        .enumerate()
        .map(|(column, name)| match types.get(name.as_ref()) {
            Some(&column_type) => column_type,
            None => inferred
                .and_then(|inferred| inferred.get(column).copied())
                .unwrap_or(ColumnType::Text),
        })
        .collect())
}

/// Converts the text columns of batches to their types, and counts the
/// values `on_error: "null"` turned into nulls.
///
/// `text` columns pass through untouched (same field, same array); a typed
/// column's field keeps its name, takes the type's Arrow type, becomes
/// nullable and drops its metadata.
#[derive(Debug, Clone)]
pub struct Converter {
    types: Vec<ColumnType>,
    schema: SchemaRef,
    on_error: OnError,
    nulled: Vec<u64>,
}

impl Converter {
    /// A converter from batches of `input` (whose typed columns must be
    /// `Utf8`) to batches with `types`, one per column.
    pub fn new(input: &Schema, types: Vec<ColumnType>, on_error: OnError) -> crate::Result<Self> {
        if types.len() != input.fields().len() {
            return Err(PluginError::internal(format!(
                "{} column type(s) for {} column(s)",
                types.len(),
                input.fields().len()
            )));
        }
        let fields: Vec<Field> = input
            .fields()
            .iter()
            .zip(&types)
            .map(|(field, column_type)| match column_type {
                ColumnType::Text => field.as_ref().clone(),
                typed => Field::new(field.name(), typed.data_type(), true),
            })
            .collect();
        Ok(Converter {
            nulled: vec![0; types.len()],
            types,
            schema: Arc::new(Schema::new(fields)),
            on_error,
        })
    }

    /// Whether every column is `text`, so converting changes nothing.
    pub fn is_identity(&self) -> bool {
        self.types.iter().all(|t| *t == ColumnType::Text)
    }

    /// The schema of the converted batches.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The type of every column.
    pub fn types(&self) -> &[ColumnType] {
        &self.types
    }

    /// Converts `batch`, whose first row is row number `first_row`.
    pub fn convert(&mut self, batch: &RecordBatch, first_row: u64) -> crate::Result<RecordBatch> {
        self.try_convert(batch, first_row).map_err(|err| match err {
            Failure::Value(err) => err.into(),
            Failure::Plugin(err) => err,
        })
    }

    /// Converts `batch` like [`Converter::convert`], but hands a value that
    /// does not fit back as a [`ConvertError`] so the caller can say where
    /// it is in its own terms ([`ConvertError::at`]).
    pub fn convert_or_locate(
        &mut self,
        batch: &RecordBatch,
        first_row: u64,
    ) -> std::result::Result<crate::Result<RecordBatch>, ConvertError> {
        match self.try_convert(batch, first_row) {
            Ok(batch) => Ok(Ok(batch)),
            Err(Failure::Value(err)) => Err(err),
            Err(Failure::Plugin(err)) => Ok(Err(err)),
        }
    }

    fn try_convert(&mut self, batch: &RecordBatch, first_row: u64) -> Result<RecordBatch, Failure> {
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (index, (column, &column_type)) in batch.columns().iter().zip(&self.types).enumerate() {
            if column_type == ColumnType::Text {
                columns.push(column.clone());
                continue;
            }
            let Some(text) = column.as_string_opt::<i32>() else {
                return Err(Failure::Plugin(PluginError::internal(format!(
                    "column {:?} is {}, not Utf8 text, so it cannot be converted to {column_type}",
                    self.schema.field(index).name(),
                    column.data_type()
                ))));
            };
            let name = self.schema.field(index).name();
            let (array, nulled) =
                convert_column(text, column_type, self.on_error, first_row, name)?;
            self.nulled[index] += nulled;
            columns.push(array);
        }
        // The row count is explicit: a batch may have rows and no columns.
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|err| Failure::Plugin(err.into()))
    }

    /// Per column name, the values `on_error: "null"` turned into nulls so
    /// far; columns with none are left out.
    pub fn nulled_values(&self) -> Vec<(&str, u64)> {
        self.schema
            .fields()
            .iter()
            .zip(&self.nulled)
            .filter(|(_, &count)| count > 0)
            .map(|(field, &count)| (field.name().as_str(), count))
            .collect()
    }

    /// The loader notes for [`crate::BatchReader::notes`]:
    /// `{"nulled_values": {"price": 3}}`, or `None` when no value was nulled.
    pub fn notes(&self) -> Option<Map<String, Value>> {
        let nulled = self.nulled_values();
        if nulled.is_empty() {
            return None;
        }
        let mut counts = Map::new();
        for (name, count) in nulled {
            // Two columns may share a name: their counts add up.
            let total = counts.get(name).and_then(Value::as_u64).unwrap_or(0) + count;
            counts.insert(name.to_owned(), Value::from(total));
        }
        let mut notes = Map::new();
        notes.insert("nulled_values".to_owned(), Value::Object(counts));
        Some(notes)
    }
}

/// Why a conversion stopped.
enum Failure {
    Value(ConvertError),
    Plugin(PluginError),
}

impl From<ConvertError> for Failure {
    fn from(err: ConvertError) -> Self {
        Failure::Value(err)
    }
}

/// Converts one text column to `to`; its first row is row number
/// `first_row`, and `column` names it in errors. Returns the typed array and
/// how many values were turned into nulls (always 0 with [`OnError::Fail`]).
///
/// A null or an empty value is a null (for `text`, the column is returned
/// as is).
pub fn convert_column(
    values: &StringArray,
    to: ColumnType,
    on_error: OnError,
    first_row: u64,
    column: &str,
) -> Result<(ArrayRef, u64), ConvertError> {
    let mut run = Run {
        on_error,
        first_row,
        column,
        expected: to,
        nulled: 0,
    };
    let array: ArrayRef = match to {
        ColumnType::Text => return Ok((Arc::new(values.clone()), 0)),
        ColumnType::Int64 => Arc::new(run.primitive::<Int64Type>(values, parse_int64)?),
        ColumnType::Float64 => Arc::new(run.primitive::<Float64Type>(values, parse_float64)?),
        ColumnType::Date => Arc::new(run.primitive::<Date32Type>(values, parse_date)?),
        ColumnType::Timestamp => Arc::new(
            run.primitive::<TimestampMicrosecondType>(values, parse_timestamp)?
                .with_timezone(TIMESTAMP_ZONE),
        ),
        ColumnType::Decimal { precision, scale } => {
            let array = run.primitive::<Decimal128Type>(values, |text| {
                parse_decimal(text, precision, scale)
            })?;
            // The parser keeps every value within the precision.
            let scale = i8::try_from(scale).unwrap_or(i8::MAX);
            match array.clone().with_precision_and_scale(precision, scale) {
                Ok(array) => Arc::new(array),
                Err(_) => Arc::new(array),
            }
        }
        ColumnType::Bool => Arc::new(run.bool(values)?),
    };
    Ok((array, run.nulled))
}

/// One column's conversion.
struct Run<'a> {
    on_error: OnError,
    first_row: u64,
    column: &'a str,
    expected: ColumnType,
    nulled: u64,
}

impl Run<'_> {
    /// What to do with the value at `index` that does not fit: an error, or
    /// (with `on_error: "null"`) a null counted.
    fn refuse(&mut self, index: usize, value: &str, detail: Detail) -> Result<(), ConvertError> {
        match self.on_error {
            OnError::Null => {
                self.nulled += 1;
                Ok(())
            }
            OnError::Fail => Err(ConvertError {
                index,
                row: self.first_row + index as u64,
                column: self.column.to_owned(),
                value: shown(value),
                expected: self.expected,
                detail,
            }),
        }
    }

    fn primitive<T: ArrowPrimitiveType>(
        &mut self,
        values: &StringArray,
        parse: impl Fn(&str) -> Result<T::Native, Detail>,
    ) -> Result<PrimitiveArray<T>, ConvertError> {
        let len = values.len();
        let mut out: Vec<T::Native> = Vec::with_capacity(len);
        let mut nulls = NullBufferBuilder::new(len);
        let input_nulls = values.nulls();
        for index in 0..len {
            if input_nulls.is_some_and(|nulls| nulls.is_null(index)) {
                out.push(T::Native::default());
                nulls.append_null();
                continue;
            }
            let text = values.value(index);
            if text.is_empty() {
                out.push(T::Native::default());
                nulls.append_null();
                continue;
            }
            match parse(text) {
                Ok(value) => {
                    out.push(value);
                    nulls.append_non_null();
                }
                Err(detail) => {
                    self.refuse(index, text, detail)?;
                    out.push(T::Native::default());
                    nulls.append_null();
                }
            }
        }
        Ok(PrimitiveArray::new(ScalarBuffer::from(out), nulls.finish()))
    }

    fn bool(&mut self, values: &StringArray) -> Result<BooleanArray, ConvertError> {
        let len = values.len();
        let mut out = BooleanBufferBuilder::new(len);
        let mut nulls = NullBufferBuilder::new(len);
        let input_nulls = values.nulls();
        for index in 0..len {
            let text = values.value(index);
            if input_nulls.is_some_and(|nulls| nulls.is_null(index)) || text.is_empty() {
                out.append(false);
                nulls.append_null();
                continue;
            }
            match parse_bool(text) {
                Ok(value) => {
                    out.append(value);
                    nulls.append_non_null();
                }
                Err(detail) => {
                    self.refuse(index, text, detail)?;
                    out.append(false);
                    nulls.append_null();
                }
            }
        }
        Ok(BooleanArray::new(out.finish(), nulls.finish()))
    }
}
