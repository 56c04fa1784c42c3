//! A [`FormatWriter`] for text formats written row by row, from three hooks.

use super::{Row, Rows};
use crate::error::Result;
use crate::formatter::FormatWriter;
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

/// The hooks of a format written row by row; [`RowWriter`] calls them.
///
/// Only `row` is required. Append bytes to `out`: it is the host's buffer,
/// handed over after every batch.
pub trait RowFormat: Send + 'static {
    /// What the default [`RowFormat::header`] writes: a fixed opening such
    /// as `<rows>`. Empty unless given.
    const HEADER: &'static [u8] = b"";
    /// What the default [`RowFormat::footer`] writes: a fixed closing such
    /// as `</rows>`. Empty unless given.
    const FOOTER: &'static [u8] = b"";

    /// Written once, before the first row (or before the footer when there
    /// are no rows): a header line, an opening tag. The default writes
    /// [`RowFormat::HEADER`].
    fn header(&mut self, schema: &Schema, out: &mut Vec<u8>) -> Result<()> {
        let _ = schema;
        out.extend_from_slice(Self::HEADER);
        Ok(())
    }

    /// Writes one row.
    fn row(&mut self, row: Row<'_, '_>, out: &mut Vec<u8>) -> Result<()>;

    /// Written once, after the last row: whatever closes the document. The
    /// default writes [`RowFormat::FOOTER`].
    fn footer(&mut self, out: &mut Vec<u8>) -> Result<()> {
        out.extend_from_slice(Self::FOOTER);
        Ok(())
    }
}

/// A [`FormatWriter`] that shows each batch as [`Rows`] and hands every row
/// to a [`RowFormat`], with its header before and its footer after.
///
/// ```
/// use std::sync::Arc;
/// use export_plugin_api::arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
/// use export_plugin_api::arrow_schema::Schema;
/// use export_plugin_api::rows::{Row, RowFormat, RowWriter};
/// use export_plugin_api::{FormatWriter, Result};
///
/// /// `name: value` lines, a blank line after each row.
/// struct Records(Vec<String>);
///
/// impl RowFormat for Records {
///     fn header(&mut self, schema: &Schema, _: &mut Vec<u8>) -> Result<()> {
///         self.0 = schema.fields().iter().map(|f| f.name().clone()).collect();
///         Ok(())
///     }
///     fn row(&mut self, row: Row<'_, '_>, out: &mut Vec<u8>) -> Result<()> {
///         for (name, cell) in self.0.iter().zip(row.cells()) {
///             out.extend_from_slice(format!("{name}: {cell}\n").as_bytes());
///         }
///         out.push(b'\n');
///         Ok(())
///     }
/// }
///
/// let batch = RecordBatch::try_from_iter([
///     ("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
///     ("name", Arc::new(StringArray::from(vec!["ada"])) as ArrayRef),
/// ]).unwrap();
/// let mut writer = RowWriter::new(batch.schema(), Records(Vec::new())).unwrap();
/// let mut out = Vec::new();
/// writer.write(&batch, &mut out).unwrap();
/// assert_eq!(out, b"id: 1\nname: ada\n\n");
/// ```
pub struct RowWriter<F> {
    format: F,
    schema: SchemaRef,
    header_written: bool,
}

impl<F: RowFormat> RowWriter<F> {
    /// A writer for batches of `schema`. Refuses, before any output exists,
    /// a column type [`Rows`] cannot show as text.
    pub fn new(schema: SchemaRef, format: F) -> Result<RowWriter<F>> {
        Rows::new(&RecordBatch::new_empty(schema.clone()))?;
        Ok(RowWriter {
            format,
            schema,
            header_written: false,
        })
    }

    /// [`RowWriter::new`], boxed: what [`Formatter::start`](crate::Formatter::start) returns.
    pub fn boxed(schema: SchemaRef, format: F) -> Result<Box<dyn FormatWriter>> {
        Ok(Box::new(RowWriter::new(schema, format)?))
    }

    fn header(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if !self.header_written {
            self.header_written = true;
            self.format.header(&self.schema, out)?;
        }
        Ok(())
    }
}

impl<F: RowFormat> FormatWriter for RowWriter<F> {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        self.header(out)?;
        let rows = Rows::new(batch)?;
        for row in rows.iter() {
            self.format.row(row, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.header(out)?;
        self.format.footer(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array};
    use std::sync::Arc;

    struct Lines;

    impl RowFormat for Lines {
        fn header(&mut self, schema: &Schema, out: &mut Vec<u8>) -> Result<()> {
            out.extend_from_slice(format!("[{}]\n", schema.field(0).name()).as_bytes());
            Ok(())
        }
        fn row(&mut self, row: Row<'_, '_>, out: &mut Vec<u8>) -> Result<()> {
            out.extend_from_slice(format!("{}\n", row.get(0)).as_bytes());
            Ok(())
        }
        fn footer(&mut self, out: &mut Vec<u8>) -> Result<()> {
            out.extend_from_slice(b"end\n");
            Ok(())
        }
    }

    fn batch(values: Vec<i64>) -> RecordBatch {
        let column: ArrayRef = Arc::new(Int64Array::from(values));
        RecordBatch::try_from_iter([("n", column)]).unwrap()
    }

    #[test]
    fn header_once_then_rows_then_footer() {
        let mut writer = RowWriter::new(batch(vec![]).schema(), Lines).unwrap();
        let mut out = Vec::new();
        writer.write(&batch(vec![1, 2]), &mut out).unwrap();
        writer.write(&batch(vec![3]), &mut out).unwrap();
        writer.finish(&mut out).unwrap();
        assert_eq!(out, b"[n]\n1\n2\n3\nend\n");
    }

    struct Fixed;

    impl RowFormat for Fixed {
        const HEADER: &'static [u8] = b"<";
        const FOOTER: &'static [u8] = b">";
        fn row(&mut self, row: Row<'_, '_>, out: &mut Vec<u8>) -> Result<()> {
            for (name, cell) in row.named_cells() {
                out.extend_from_slice(format!("{name}={cell};").as_bytes());
            }
            Ok(())
        }
    }

    #[test]
    fn fixed_header_and_footer() {
        let mut writer = RowWriter::new(batch(vec![]).schema(), Fixed).unwrap();
        let mut out = Vec::new();
        writer.write(&batch(vec![7, 8]), &mut out).unwrap();
        writer.finish(&mut out).unwrap();
        assert_eq!(out, b"<n=7;n=8;>");
    }

    #[test]
    fn without_rows_the_header_still_comes_before_the_footer() {
        let mut writer = RowWriter::new(batch(vec![]).schema(), Lines).unwrap();
        let mut out = Vec::new();
        writer.finish(&mut out).unwrap();
        assert_eq!(out, b"[n]\nend\n");
    }
}
