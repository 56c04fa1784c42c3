//! Checks on the record batches that cross the plugin boundary.
//!
//! The C data interface carries pointers and lengths but no buffer sizes:
//! an importer works the sizes out from the lengths and offsets it is
//! given, so a batch that lies about them makes the reader walk past the
//! plugin's memory. Both sides check, with Arrow's own validation:
//! - the plugin (SDK) side checks each batch's layout before exporting it,
//!   while the real buffer sizes are still known ([`check_exported`]);
//! - the host side checks everything the imported data says about itself
//!   (lengths, offsets, UTF-8, nulls, dictionary keys) before any host code
//!   reads it ([`check_imported`]).

use crate::error::PluginError;
use arrow_array::{Array, RecordBatch};
use arrow_data::ArrayData;
use arrow_schema::{ArrowError, Schema};

/// What to tell the operator about a malformed batch from `column`.
fn malformed(column: &str, what: impl std::fmt::Display) -> PluginError {
    PluginError::internal(format!(
        "the loader handed over a malformed batch: column {column:?}: {what}; \
         this is a bug in the plugin, report it to its author"
    ))
}

/// Checks a batch a loader is about to hand to the host: every column has
/// the batch's row count and buffers large enough for its length and
/// offsets (cheap: no value is read).
pub(crate) fn check_exported(batch: &RecordBatch) -> Result<(), PluginError> {
    let rows = batch.num_rows();
    for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
        if column.len() != rows {
            return Err(malformed(
                field.name(),
                format_args!(
                    "it has {} values but the batch claims {rows} rows",
                    column.len()
                ),
            ));
        }
        column
            .to_data()
            .validate()
            .map_err(|err| malformed(field.name(), arrow_message(&err)))?;
    }
    Ok(())
}

/// Checks a batch imported over the C data interface as one struct array of
/// `schema`'s fields, fully, before the host reads any of it: each column's
/// length, buffers, offsets, UTF-8, nulls and nested values.
pub(crate) fn check_imported(data: &ArrayData, schema: &Schema) -> Result<(), PluginError> {
    let rows = data.len();
    let needed = data.offset().saturating_add(rows);
    if data.child_data().len() != schema.fields().len() {
        return Err(PluginError::internal(format!(
            "the loader handed over a malformed batch: {} columns where its schema has {}; \
             this is a bug in the plugin, report it to its author",
            data.child_data().len(),
            schema.fields().len()
        )));
    }
    for (field, column) in schema.fields().iter().zip(data.child_data()) {
        if column.len() < needed {
            return Err(malformed(
                field.name(),
                format_args!(
                    "it has {} values but the batch claims {rows} rows",
                    column.len()
                ),
            ));
        }
        column
            .validate_full()
            .map_err(|err| malformed(field.name(), arrow_message(&err)))?;
        if !field.is_nullable() && column.null_count() > 0 {
            return Err(malformed(
                field.name(),
                "it holds nulls but its field is declared non-nullable",
            ));
        }
    }
    // The struct itself (its own validity); the columns were checked above.
    data.validate()
        .map_err(|err| malformed("(batch)", arrow_message(&err)))
}

/// Arrow's message without its error-kind prefix.
fn arrow_message(err: &ArrowError) -> String {
    match err {
        ArrowError::InvalidArgumentError(message) => message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray, StructArray};
    use arrow_buffer::Buffer;
    use arrow_schema::{DataType, Field};
    use std::sync::Arc;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]))
    }

    fn strings(offsets: &[i32], values: &[u8]) -> ArrayRef {
        // SAFETY: only ever validated, never read, in these tests.
        let data = unsafe {
            ArrayData::new_unchecked(
                DataType::Utf8,
                offsets.len() - 1,
                None,
                None,
                0,
                vec![
                    Buffer::from_slice_ref(offsets),
                    Buffer::from_slice_ref(values),
                ],
                vec![],
            )
        };
        arrow_array::make_array(data)
    }

    fn batch(n: Vec<i64>, s: ArrayRef, rows: usize) -> RecordBatch {
        let n: ArrayRef = Arc::new(Int64Array::from(n));
        // SAFETY: only ever validated in these tests.
        unsafe { RecordBatch::new_unchecked(schema(), vec![n, s], rows) }
    }

    fn imported(batch: &RecordBatch) -> ArrayData {
        StructArray::from(batch.clone()).into_data()
    }

    #[test]
    fn good_batches_pass_both_checks() {
        let good = batch(
            vec![1, 2],
            Arc::new(StringArray::from(vec![Some("a"), None])),
            2,
        );
        check_exported(&good).unwrap();
        check_imported(&imported(&good), &schema()).unwrap();
        let sliced = good.slice(1, 1);
        check_imported(&imported(&sliced), &schema()).unwrap();
    }

    #[test]
    fn a_lying_row_count_names_the_column() {
        let lying = batch(
            vec![1, 2],
            Arc::new(StringArray::from(vec!["a", "b"])),
            1_000_000,
        );
        let err = check_exported(&lying).unwrap_err();
        assert!(err.message.contains("column \"n\""), "{err}");
        assert!(err.message.contains("1000000 rows"), "{err}");
        let err = check_imported(&imported(&lying), &schema()).unwrap_err();
        assert!(err.message.contains("column \"n\""), "{err}");
    }

    #[test]
    fn offsets_past_the_buffer_fail_on_the_plugin_side() {
        let bad = batch(vec![1, 2], strings(&[0, 3, 4102], b"abcdef"), 2);
        let err = check_exported(&bad).unwrap_err();
        assert!(err.message.contains("column \"s\""), "{err}");
        let backwards = batch(vec![1, 2], strings(&[0, 5, 3], b"abcdef"), 2);
        let err = check_imported(&imported(&backwards), &schema()).unwrap_err();
        assert!(err.message.contains("column \"s\""), "{err}");
    }

    #[test]
    fn invalid_utf8_fails_on_the_host_side() {
        let bad = batch(
            vec![1, 2],
            strings(&[0, 2, 4], &[0xff, 0xfe, 0xc3, 0x28]),
            2,
        );
        check_exported(&bad).unwrap();
        let err = check_imported(&imported(&bad), &schema()).unwrap_err();
        assert!(err.message.contains("column \"s\""), "{err}");
        assert!(err.message.to_lowercase().contains("utf"), "{err}");
    }
}
