//! The `parquet` formatter: its options, the writer, and their tests.

mod row_groups;

use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::{FormatWriter, Formatter, JsonSchema, NoConfig, PluginError, Result};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use row_groups::RowGroupWriter;
use serde::{Deserialize, Serialize};

/// Rows per row group unless the request says otherwise: large enough for
/// good compression and fast scans, small enough that the rows buffered
/// before a row group is written stay well under the memory budget. Twice
/// this came too close to the peak-memory target with the host's zstd, for a
/// file only slightly smaller in the same time (bench/README.md, "Results,
/// 2026-12-02 15:05 UTC").
pub const DEFAULT_ROW_GROUP_SIZE: usize = 65_536;

/// A row group is also closed once its encoded size passes this, so wide or
/// text-heavy rows cannot make the buffered row group grow without bound
/// (the writer holds about twice this while it closes one).
const MAX_ROW_GROUP_BYTES: usize = 32 * 1024 * 1024;

/// Past this size a column chunk's dictionary gives up and the column's
/// further values are written plain. A column with few distinct values (a
/// model, a role, a conversation id) stays well under it; one where nearly
/// every value is new (an id, a message) only costs hashing and a
/// dictionary page the reader never gains from, so the sooner it gives up
/// the better. A quarter of the `parquet` crate's default.
const DICTIONARY_PAGE_BYTES: usize = 256 * 1024;

/// How column pages are compressed inside the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum Codec {
    /// No compression.
    None,
    /// Snappy: fast, read by every Parquet reader (the default).
    #[default]
    Snappy,
    /// Zstandard: smaller files, a little slower to write (`codec_level` 1-22, default 1).
    Zstd,
    /// Gzip: widely read, slow to write (`codec_level` 0-9, default 6).
    Gzip,
    /// LZ4 (the `LZ4_RAW` codec of current Parquet readers).
    Lz4,
}

/// Options of the `parquet` formatter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct ParquetOptions {
    /// How pages are compressed inside the file: `none`, `snappy`
    /// (default), `zstd`, `gzip` or `lz4`. (The request option
    /// `compression` is the host's: it compresses the whole file.)
    pub codec: Codec,

    /// Level for `zstd` (1-22) or `gzip` (0-9); refused for the other codecs.
    pub codec_level: Option<i32>,

    /// Most rows in one row group (default 65536). A row group is also
    /// closed once it holds about 32 MiB of encoded data.
    #[schemars(range(min = 1))]
    pub row_group_size: usize,
}

impl Default for ParquetOptions {
    fn default() -> Self {
        ParquetOptions {
            codec: Codec::default(),
            codec_level: None,
            row_group_size: DEFAULT_ROW_GROUP_SIZE,
        }
    }
}

impl ParquetOptions {
    /// The `parquet` crate's compression for these options.
    fn compression(&self) -> Result<Compression> {
        let level = self.codec_level;
        let compression = match (self.codec, level) {
            (Codec::None, None) => Compression::UNCOMPRESSED,
            (Codec::Snappy, None) => Compression::SNAPPY,
            (Codec::Lz4, None) => Compression::LZ4_RAW,
            (Codec::Zstd, level) => Compression::ZSTD(
                ZstdLevel::try_new(level.unwrap_or(1))
                    .map_err(|err| bad_level("zstd", "1 to 22", err))?,
            ),
            (Codec::Gzip, level) => {
                let level = u32::try_from(level.unwrap_or(6))
                    .map_err(|_| PluginError::invalid_input(level_message("gzip", "0 to 9")))?;
                Compression::GZIP(
                    GzipLevel::try_new(level).map_err(|err| bad_level("gzip", "0 to 9", err))?,
                )
            }
            (codec, Some(_)) => {
                return Err(PluginError::invalid_input(format!(
                    "codec_level applies only to \"zstd\" and \"gzip\", not {:?}: \
                     drop codec_level or choose one of those codecs",
                    serde_json::to_value(codec)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                )))
            }
        };
        Ok(compression)
    }

    fn properties(&self) -> Result<WriterProperties> {
        if self.row_group_size == 0 {
            return Err(PluginError::invalid_input(
                "row_group_size must be at least 1",
            ));
        }
        Ok(WriterProperties::builder()
            .set_compression(self.compression()?)
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
            .set_created_by(format!("export-parquet {}", env!("CARGO_PKG_VERSION")))
            .build())
    }
}

fn level_message(codec: &str, range: &str) -> String {
    format!("codec_level for {codec} must be {range}")
}

fn bad_level(codec: &str, range: &str, err: ParquetError) -> PluginError {
    PluginError::invalid_input(format!("{}: {err}", level_message(codec, range)))
}

/// The `parquet` formatter: one Parquet file, its columns typed as the
/// Arrow schema says, the Arrow schema kept in the file's metadata. Nulls are
/// Parquet nulls. A schema with no rows still gives a valid file (no row
/// groups).
pub struct ParquetFormatter;

impl Formatter for ParquetFormatter {
    type Config = NoConfig;
    type Options = ParquetOptions;
    const NAME: &'static str = "parquet";
    const DESCRIPTION: &'static str = "Apache Parquet, typed columns, compressed pages";
    const MIME_TYPE: &'static str = "application/vnd.apache.parquet";
    const EXTENSION: &'static str = "parquet";

    fn start(
        &self,
        _config: NoConfig,
        options: ParquetOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        let properties = options.properties()?;
        // The writer refuses a column type Parquet cannot hold here, before
        // any output exists.
        let writer =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties)).map_err(|err| {
                PluginError::unsupported(format!("this schema cannot be written as Parquet: {err}"))
            })?;
        let writer =
            RowGroupWriter::new(writer, schema, options.row_group_size, MAX_ROW_GROUP_BYTES)
                .map_err(write_error)?;
        Ok(Box::new(ParquetWriter {
            writer: Some(writer),
        }))
    }
}

/// One running Parquet export; the bytes of every closed row group go to
/// the host after the batch that closed it.
struct ParquetWriter {
    /// `None` once finished.
    writer: Option<RowGroupWriter>,
}

impl FormatWriter for ParquetWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| PluginError::internal("the Parquet file was already finished"))?;
        writer.write(batch).map_err(write_error)?;
        writer.drain(out).map_err(write_error)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let mut writer = self
            .writer
            .take()
            .ok_or_else(|| PluginError::internal("the Parquet file was already finished"))?;
        writer.finish().map_err(write_error)?;
        writer.drain(out).map_err(write_error)
    }
}

fn write_error(err: ParquetError) -> PluginError {
    match err {
        ParquetError::ArrowError(message) | ParquetError::NYI(message) => {
            PluginError::unsupported(format!("writing Parquet failed: {message}"))
        }
        other => PluginError::internal(format!("writing Parquet failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin;
    use export_plugin_api::arrow_array::{
        Array, ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
        TimestampMicrosecondArray, UInt8Array,
    };
    use export_plugin_api::arrow_schema::{DataType, Field, Schema, TimeUnit};
    use export_plugin_api::json::json_field;
    use export_plugin_api::testing::run_formatter_parts;
    use export_plugin_api::ErrorKind;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use serde_json::{json, Value};
    use std::sync::Arc;

    /// Formats `batches` with `options`; returns the file and the size of each `write`'s output.
    fn format_all(
        options: Value,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(Vec<u8>, Vec<usize>)> {
        let parts = run_formatter_parts(
            &plugin(),
            "parquet",
            "{}",
            &options.to_string(),
            schema,
            batches,
        )?;
        let sizes = parts[..batches.len()].iter().map(Vec::len).collect();
        Ok((parts.concat(), sizes))
    }

    fn read_back(file: Vec<u8>) -> (SchemaRef, Vec<RecordBatch>) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file)).unwrap();
        let schema = builder.schema().clone();
        let batches = builder
            .build()
            .unwrap()
            .collect::<std::result::Result<Vec<_>, _>>()
            .unwrap();
        (schema, batches)
    }

    fn typed_batch() -> RecordBatch {
        let columns: Vec<(Field, ArrayRef)> = vec![
            (
                Field::new("text", DataType::Utf8, true),
                Arc::new(StringArray::from(vec![
                    Some("007"),
                    Some("1.50"),
                    None,
                    Some(""),
                    Some("=SUM(A1)\r\n你好 🌍"),
                ])),
            ),
            (
                Field::new("int", DataType::Int64, true),
                Arc::new(Int64Array::from(vec![
                    Some(i64::MIN),
                    Some(-1),
                    None,
                    Some(0),
                    Some(i64::MAX),
                ])),
            ),
            (
                Field::new("small", DataType::UInt8, false),
                Arc::new(UInt8Array::from(vec![0, 1, 2, 254, 255])),
            ),
            (
                Field::new("float", DataType::Float64, true),
                Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    Some(f64::NAN),
                    Some(f64::NEG_INFINITY),
                    None,
                    Some(-0.0),
                ])),
            ),
            (
                Field::new("flag", DataType::Boolean, true),
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    Some(false),
                    None,
                    Some(true),
                    Some(false),
                ])),
            ),
            (
                Field::new("day", DataType::Date32, true),
                Arc::new(Date32Array::from(vec![
                    Some(19_844),
                    None,
                    Some(0),
                    Some(-1),
                    Some(2_932_896),
                ])),
            ),
            (
                Field::new(
                    "at",
                    DataType::Timestamp(TimeUnit::Microsecond, Some("+02:00".into())),
                    true,
                ),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_714_550_400_123_456),
                        None,
                        Some(0),
                        Some(-1),
                        Some(1),
                    ])
                    .with_timezone("+02:00"),
                ),
            ),
            (
                json_field("raw"),
                Arc::new(StringArray::from(vec![
                    Some("1.50"),
                    Some(r#"{"a":[1,null]}"#),
                    None,
                    Some("\"x\""),
                    Some("12345678901234567890123"),
                ])),
            ),
        ];
        let (fields, arrays): (Vec<Field>, Vec<ArrayRef>) = columns.into_iter().unzip();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    #[test]
    fn every_type_and_null_comes_back_as_it_went_in() {
        let batch = typed_batch();
        for codec in ["none", "snappy", "zstd", "gzip", "lz4"] {
            let (file, _) = format_all(
                json!({ "codec": codec }),
                batch.schema(),
                std::slice::from_ref(&batch),
            )
            .unwrap();
            assert_eq!(&file[..4], b"PAR1", "{codec}");
            assert_eq!(&file[file.len() - 4..], b"PAR1", "{codec}");
            let (schema, batches) = read_back(file);
            assert_eq!(schema, batch.schema(), "{codec}: the Arrow schema survives");
            assert_eq!(batches.len(), 1);
            // NaN != NaN, so compare the float column bit by bit.
            for (column, (got, want)) in
                batches[0].columns().iter().zip(batch.columns()).enumerate()
            {
                if column == 3 {
                    let got = got.as_any().downcast_ref::<Float64Array>().unwrap();
                    let want = want.as_any().downcast_ref::<Float64Array>().unwrap();
                    assert_eq!(got.nulls(), want.nulls());
                    // Compare the valid slots only: a null's slot holds no value.
                    let bits = |a: &Float64Array| -> Vec<Option<u64>> {
                        a.iter().map(|v| v.map(f64::to_bits)).collect()
                    };
                    assert_eq!(bits(got), bits(want), "{codec}");
                } else {
                    assert_eq!(got.to_data(), want.to_data(), "{codec}: column {column}");
                }
            }
        }
    }

    #[test]
    fn codecs_are_recorded_in_the_file() {
        let batch = typed_batch();
        for (codec, level, want) in [
            ("none", None, "UNCOMPRESSED"),
            ("snappy", None, "SNAPPY"),
            ("zstd", Some(9), "ZSTD"),
            ("gzip", Some(1), "GZIP"),
            ("lz4", None, "LZ4_RAW"),
        ] {
            let mut options = json!({ "codec": codec });
            if let Some(level) = level {
                options["codec_level"] = json!(level);
            }
            let (file, _) =
                format_all(options, batch.schema(), std::slice::from_ref(&batch)).unwrap();
            let reader = SerializedFileReader::new(bytes::Bytes::from(file)).unwrap();
            let column = reader.metadata().row_group(0).column(0);
            assert!(
                column.compression().to_string().starts_with(want),
                "{codec}: {}",
                column.compression()
            );
        }
    }

    #[test]
    fn bytes_leave_the_formatter_with_every_full_row_group() {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batches: Vec<RecordBatch> = (0..10)
            .map(|b| {
                let column: ArrayRef =
                    Arc::new(Int64Array::from_iter_values(b * 100..b * 100 + 100));
                RecordBatch::try_new(schema.clone(), vec![column]).unwrap()
            })
            .collect();
        let (file, sizes) =
            format_all(json!({ "row_group_size": 200 }), schema.clone(), &batches).unwrap();
        // A row group closes every second batch, and its bytes go out at once.
        assert_eq!(
            sizes[0], 4,
            "only the magic number before the first row group closes"
        );
        for (index, size) in sizes.iter().enumerate().skip(1) {
            if index % 2 == 1 {
                assert!(*size > 0, "batch {index} closed a row group: {sizes:?}");
            } else {
                assert_eq!(*size, 0, "batch {index}: {sizes:?}");
            }
        }
        let reader = SerializedFileReader::new(bytes::Bytes::from(file.clone())).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 5);
        let (_, read) = read_back(file);
        let values: Vec<i64> = read
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, (0..1000).collect::<Vec<i64>>());
    }

    #[test]
    fn batches_split_at_row_group_boundaries_keep_every_column_in_order() {
        // Several columns, so they are encoded on several threads, and a
        // row group size that splits every other batch.
        let schema: SchemaRef = Arc::new(Schema::new(
            (0..6)
                .map(|c| Field::new(format!("c{c}"), DataType::Utf8, true))
                .collect::<Vec<_>>(),
        ));
        let cell = |c: usize, row: usize| (row % 7 != c).then(|| format!("{c}:{row}"));
        let batches: Vec<RecordBatch> = (0..7)
            .map(|b| {
                let columns = (0..6)
                    .map(|c| {
                        Arc::new(StringArray::from_iter(
                            (b * 100..b * 100 + 100).map(|r| cell(c, r)),
                        )) as ArrayRef
                    })
                    .collect();
                RecordBatch::try_new(schema.clone(), columns).unwrap()
            })
            .collect();
        let (file, _) =
            format_all(json!({ "row_group_size": 150 }), schema.clone(), &batches).unwrap();
        let reader = SerializedFileReader::new(bytes::Bytes::from(file.clone())).unwrap();
        let groups: Vec<i64> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|group| group.num_rows())
            .collect();
        assert_eq!(groups, [150, 150, 150, 150, 100]);
        let (read_schema, read) = read_back(file);
        assert_eq!(read_schema.fields(), schema.fields());
        let mut row = 0;
        for batch in &read {
            for r in 0..batch.num_rows() {
                for c in 0..6 {
                    let column = batch
                        .column(c)
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .unwrap();
                    let got = column.is_valid(r).then(|| column.value(r).to_owned());
                    assert_eq!(got, cell(c, row), "row {row}, column {c}");
                }
                row += 1;
            }
        }
        assert_eq!(row, 700);
    }

    #[test]
    fn no_rows_still_make_a_valid_file() {
        let schema = typed_batch().schema();
        let empty = RecordBatch::new_empty(schema.clone());
        for batches in [vec![], vec![empty.clone(), empty]] {
            let (file, _) = format_all(json!({}), schema.clone(), &batches).unwrap();
            let (read_schema, read) = read_back(file);
            assert_eq!(read_schema, schema);
            assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 0);
        }
        // No columns at all.
        let empty_schema = Arc::new(Schema::empty());
        let (file, _) = format_all(json!({}), empty_schema, &[]).unwrap();
        assert_eq!(&file[..4], b"PAR1");
    }

    #[test]
    fn options_are_checked() {
        let schema = typed_batch().schema();
        for options in [
            json!({ "codec": "brotli" }),
            json!({ "codec": "snappy", "codec_level": 3 }),
            json!({ "codec": "zstd", "codec_level": 99 }),
            json!({ "codec": "gzip", "codec_level": -1 }),
            json!({ "codec": "gzip", "codec_level": 10 }),
            json!({ "row_group_size": 0 }),
            json!({ "rowgroup_size": 10 }),
        ] {
            let err = plugin()
                .start_formatter("parquet", "{}", &options.to_string(), schema.clone())
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
            serde_json::from_str::<ParquetOptions>("{}").unwrap(),
            ParquetOptions::default()
        );
        assert_eq!(ParquetOptions::default().codec, Codec::Snappy);
        let schema = export_plugin_api::schemars::schema_for!(ParquetOptions).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert!(schema.get("required").is_none(), "{schema}");
    }

    #[test]
    fn manifest_declares_the_format() {
        let plugin = plugin();
        let manifest = plugin.manifest();
        assert_eq!(manifest.name, "parquet");
        assert!(manifest.loaders.is_empty());
        let formats: Vec<(&str, &str, &str)> = manifest
            .formatters
            .iter()
            .map(|f| (f.name.as_str(), f.mime_type.as_str(), f.extension.as_str()))
            .collect();
        assert_eq!(
            formats,
            [("parquet", "application/vnd.apache.parquet", "parquet")]
        );
    }
}
