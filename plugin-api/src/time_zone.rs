//! The `time_zone` option: timestamps shown in a zone the request names.
//!
//! Arrow stores a timestamp as an instant (UTC) plus, per column, the zone it
//! is shown in. A formatter that offers a `time_zone` option keeps the option
//! as an `Option<String>` in its options struct (so its schema stays a plain
//! string), checks it once in [`Formatter::start`](crate::Formatter::start)
//! with [`TimeZone::named`], and then either
//!
//! - writes text through Arrow's display rules ([`rows::Rows`](crate::rows::Rows)
//!   or `arrow_cast`): [`Rezone`] gives every timestamp column that zone, so
//!   they are written as RFC 3339 with the zone's offset; or
//! - computes wall-clock values itself: [`TimeZone::tz`] is the zone as an
//!   Arrow [`Tz`], a `chrono` time zone.
//!
//! ```
//! use std::sync::Arc;
//! use export_plugin_api::arrow_array::{ArrayRef, RecordBatch, TimestampSecondArray};
//! use export_plugin_api::rows::Rows;
//! use export_plugin_api::time_zone::Rezone;
//!
//! let at: ArrayRef = Arc::new(TimestampSecondArray::from(vec![1_714_557_600]));
//! let batch = RecordBatch::try_from_iter([("at", at)]).unwrap();
//! let rezone = Rezone::for_option(&batch.schema(), Some("Europe/Paris")).unwrap();
//! let batch = Rezone::apply(rezone.as_ref(), &batch).unwrap();
//! let rows = Rows::new(&batch).unwrap();
//! assert_eq!(rows.row(0).get(0).to_string(), "2024-05-01T12:00:00+02:00");
//! assert!(Rezone::for_option(&batch.schema(), Some("Mars/Olympus")).is_err());
//! ```
//!
//! Named zones need the default `time-zones` feature (chrono-tz's database);
//! without it only offsets parse, and [`TimeZone::named`] refuses every name.

use crate::error::{PluginError, Result};
use arrow_array::cast::AsArray;
pub use arrow_array::timezone::Tz;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::borrow::Cow;
use std::str::FromStr;
use std::sync::Arc;

/// A checked time zone: its name as the request gave it, and the zone.
#[derive(Debug, Clone)]
pub struct TimeZone {
    name: Arc<str>,
    tz: Tz,
}

impl TimeZone {
    /// An IANA zone name (`"Europe/Paris"`) or `"UTC"`, as a `time_zone`
    /// option takes it. A fixed offset (`"+02:00"`) is refused: a name
    /// keeps daylight saving time right all year.
    pub fn named(name: &str) -> Result<TimeZone> {
        let refused = || {
            PluginError::invalid_input(format!(
                "time_zone {name:?} is not a time zone: use an IANA name such as \
                 \"Europe/Paris\" or \"America/New_York\", or \"UTC\""
            ))
        };
        // Arrow reads a leading sign as a fixed offset; no zone name has one.
        if name.starts_with(['+', '-']) {
            return Err(refused());
        }
        let tz = Tz::from_str(name).map_err(|_| refused())?;
        Ok(TimeZone {
            name: Arc::from(name),
            tz,
        })
    }

    /// Like [`TimeZone::named`], and also a fixed offset such as `"+02:00"`,
    /// `"-0930"` or `"+02"`: what a timestamp column's own zone may be.
    pub fn named_or_offset(name: &str) -> Result<TimeZone> {
        let tz = Tz::from_str(name).map_err(|err| {
            PluginError::invalid_input(format!(
                "time_zone {name:?} is not a time zone: use an IANA name such as \"Europe/Paris\", \
                 \"UTC\", or an offset such as \"+02:00\" ({err})"
            ))
        })?;
        Ok(TimeZone {
            name: Arc::from(name),
            tz,
        })
    }

    /// The zone's name, as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The zone, for computing wall-clock times with `chrono`.
    pub fn tz(&self) -> Tz {
        self.tz
    }
}

/// Gives every timestamp column of a schema one zone. The instants stay the
/// same (Arrow stores timestamps as UTC); only the zone they are shown in
/// changes, so Arrow's display writes them as RFC 3339 with that zone's
/// offset (`Z` for UTC). A timestamp without a zone is taken as UTC. Other
/// columns, text included, are never touched.
#[derive(Debug, Clone)]
pub struct Rezone {
    zone: Arc<str>,
    schema: SchemaRef,
}

impl Rezone {
    /// Moves the timestamp columns of `schema` to `zone`.
    pub fn new(schema: &Schema, zone: &TimeZone) -> Rezone {
        let zone = zone.name.clone();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|field| match field.data_type() {
                DataType::Timestamp(unit, _) => field
                    .as_ref()
                    .clone()
                    .with_data_type(DataType::Timestamp(*unit, Some(zone.clone()))),
                _ => field.as_ref().clone(),
            })
            .collect();
        let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
        Rezone { zone, schema }
    }

    /// For a `time_zone` option: `None` without one, the [`Rezone`] to its
    /// zone with one, or an error naming the option when it is no zone name
    /// (see [`TimeZone::named`]).
    pub fn for_option(schema: &Schema, time_zone: Option<&str>) -> Result<Option<Rezone>> {
        time_zone
            .map(|name| Ok(Rezone::new(schema, &TimeZone::named(name)?)))
            .transpose()
    }

    /// The schema of rezoned batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// `batch` with its timestamp columns in the zone; other columns are
    /// shared, not copied.
    pub fn batch(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let zone = &self.zone;
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(|array| -> ArrayRef {
                match array.data_type() {
                    DataType::Timestamp(TimeUnit::Second, _) => Arc::new(
                        array
                            .as_primitive::<TimestampSecondType>()
                            .clone()
                            .with_timezone(zone.clone()),
                    ),
                    DataType::Timestamp(TimeUnit::Millisecond, _) => Arc::new(
                        array
                            .as_primitive::<TimestampMillisecondType>()
                            .clone()
                            .with_timezone(zone.clone()),
                    ),
                    DataType::Timestamp(TimeUnit::Microsecond, _) => Arc::new(
                        array
                            .as_primitive::<TimestampMicrosecondType>()
                            .clone()
                            .with_timezone(zone.clone()),
                    ),
                    DataType::Timestamp(TimeUnit::Nanosecond, _) => Arc::new(
                        array
                            .as_primitive::<TimestampNanosecondType>()
                            .clone()
                            .with_timezone(zone.clone()),
                    ),
                    _ => array.clone(),
                }
            })
            .collect();
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|err| {
            PluginError::internal(format!("a batch does not match the export's schema: {err}"))
        })
    }

    /// `batch` rezoned when there is a `rezone`, else `batch` itself, borrowed.
    pub fn apply<'b>(
        rezone: Option<&Rezone>,
        batch: &'b RecordBatch,
    ) -> Result<Cow<'b, RecordBatch>> {
        match rezone {
            Some(rezone) => Ok(Cow::Owned(rezone.batch(batch)?)),
            None => Ok(Cow::Borrowed(batch)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_taken_and_offsets_only_when_asked_for() {
        assert_eq!(
            TimeZone::named("Europe/Paris").unwrap().name(),
            "Europe/Paris"
        );
        assert_eq!(TimeZone::named("UTC").unwrap().name(), "UTC");
        for bad in ["+02:00", "-05", "", "Mars/Olympus", "europe/paris"] {
            let err = TimeZone::named(bad).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::InvalidInput);
            assert!(err.message.starts_with("time_zone "), "{err}");
        }
        assert!(TimeZone::named_or_offset("+02:00").is_ok());
        assert!(TimeZone::named_or_offset("Europe/Paris").is_ok());
        let err = TimeZone::named_or_offset("Mars/Olympus").unwrap_err();
        assert!(err.message.contains("\"+02:00\""), "{err}");
    }

    #[test]
    fn only_timestamp_columns_move() {
        let schema = Schema::new(vec![
            Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
            Field::new("text", DataType::Utf8, true),
        ]);
        let rezone = Rezone::for_option(&schema, Some("UTC")).unwrap().unwrap();
        assert_eq!(
            rezone.schema().field(0).data_type(),
            &DataType::Timestamp(TimeUnit::Millisecond, Some(Arc::from("UTC")))
        );
        assert_eq!(rezone.schema().field(1).data_type(), &DataType::Utf8);
        assert!(Rezone::for_option(&schema, None).unwrap().is_none());
    }
}
