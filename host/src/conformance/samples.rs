//! The data the battery feeds formatters.
//!
//! The promised types and the Unicode samples are those of
//! `export_plugin_api::testing` (plugin-api's `testing` feature, which the
//! host turns on), so an author's unit tests and this battery agree on what a
//! formatter must write: there is one list, not two kept in step.

use export_plugin_api::arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
};
use export_plugin_api::arrow_schema::{DataType, Field, Schema, SchemaRef};
use std::sync::Arc;

pub use export_plugin_api::testing::{
    promised_types, promised_types_batch, unicode_batch, UNICODE_SAMPLES,
};

/// A one-row batch of everyday columns.
pub fn one_row() -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1])),
        Arc::new(StringArray::from(vec!["ada"])),
        Arc::new(Float64Array::from(vec![1.5])),
        Arc::new(BooleanArray::from(vec![true])),
    ];
    RecordBatch::try_new(everyday_schema(), columns)
        .unwrap_or_else(|err| panic!("building the one-row batch: {err}"))
}

/// `id` Int64, `name` Utf8, `amount` Float64, `flag` Boolean.
pub fn everyday_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
    ]))
}

/// The schema of [`stream_batch`].
pub fn stream_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("note", DataType::Utf8, true),
    ]))
}

/// Rows `first..first + rows` of the flat-memory stream: about 90 bytes of
/// text per row, so a formatter that keeps every row is caught.
pub fn stream_batch(first: usize, rows: usize) -> RecordBatch {
    let ids: Int64Array = (first..first + rows).map(|n| n as i64).collect();
    let names: StringArray = (first..first + rows)
        .map(|n| Some(format!("customer {n:08}")))
        .collect();
    let amounts: Float64Array = (first..first + rows)
        .map(|n| Some(n as f64 * 0.25))
        .collect();
    let notes: StringArray = (first..first + rows)
        .map(|n| {
            (!n.is_multiple_of(10))
                .then(|| format!("order {n} shipped, \"fragile\" ✓ — {}", n % 997))
        })
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(ids),
        Arc::new(names),
        Arc::new(amounts),
        Arc::new(notes),
    ];
    RecordBatch::try_new(stream_schema(), columns)
        .unwrap_or_else(|err| panic!("building a stream batch: {err}"))
}

/// A batch of `schema` whose every value is null, `rows` long.
pub fn all_nulls(schema: &SchemaRef, rows: usize) -> RecordBatch {
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| export_plugin_api::arrow_array::new_null_array(field.data_type(), rows))
        .collect();
    RecordBatch::try_new(schema.clone(), columns)
        .unwrap_or_else(|err| panic!("building an all-null batch: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_build() {
        let batch = promised_types_batch();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(batch.num_columns(), promised_types().len());
        assert_eq!(unicode_batch().num_rows(), UNICODE_SAMPLES.len());
        assert_eq!(stream_batch(10, 5).num_rows(), 5);
        let nulls = all_nulls(&batch.schema(), 2);
        assert!(nulls.columns().iter().all(|c| c.logical_null_count() == 2));
    }
}
