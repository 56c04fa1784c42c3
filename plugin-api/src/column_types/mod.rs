//! Typed columns for text loaders: the `types`, `on_error` and `infer`
//! selector fields the first-party `csv` and `jsonl` loaders share.
//!
//! A loader that reads text builds `Utf8` columns as usual, then:
//!
//! - reads the selector's `types` (a map from column name to
//!   [`ColumnType`], written `int64`, `float64`, `bool`, `date`,
//!   `timestamp`, `decimal(P,S)` or `text`) and resolves it against its
//!   columns with [`resolve_types`], which refuses a name that is not a column;
//! - optionally first reads all its data once through an [`Inference`],
//!   which picks a type for a column only if every value would come back
//!   exactly as written;
//! - converts every batch with a [`Converter`]: each value is parsed
//!   strictly (no trimming, no prefixes, no rounding); an empty value is a
//!   null in every type but `text`; a value that does not fit fails the
//!   export with a [`ConvertError`] naming the row, the column and the
//!   value, or, with [`OnError::Null`], becomes a null and is counted for
//!   the loader's notes ([`Converter::notes`]: `{"nulled_values": {"price": 3}}`).
//!
//! With no types and no inference there is nothing to convert: a loader
//! skips the converter and its output is unchanged.
//!
//! ```
//! use export_plugin_api::arrow_array::cast::AsArray;
//! use export_plugin_api::arrow_array::types::Int64Type;
//! use export_plugin_api::arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
//! use export_plugin_api::column_types::{resolve_types, ColumnType, Converter, OnError};
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//!
//! let text: ArrayRef = Arc::new(StringArray::from(vec!["1", "", "x"]));
//! let batch = RecordBatch::try_from_iter([("n", text)]).unwrap();
//! let asked = BTreeMap::from([("n".to_owned(), ColumnType::Int64)]);
//! let types = resolve_types(&["n"], &asked, None).unwrap();
//!
//! let mut strict = Converter::new(&batch.schema(), types.clone(), OnError::Fail).unwrap();
//! let err = strict.convert(&batch, 1).unwrap_err();
//! assert!(err.message.starts_with(r#"row 3, column "n": "x" is not an int64"#));
//!
//! let mut lenient = Converter::new(&batch.schema(), types, OnError::Null).unwrap();
//! let typed = lenient.convert(&batch, 1).unwrap();
//! let ints = typed.column(0).as_primitive::<Int64Type>();
//! assert_eq!((ints.value(0), ints.null_count()), (1, 2));
//! assert_eq!(lenient.notes().unwrap()["nulled_values"]["n"], 1);
//! ```

mod convert;
mod infer;
mod parse;

pub use convert::{convert_column, resolve_types, ConvertError, Converter, CONVERT_ERROR_HINT};
pub use infer::{Candidates, Inference};
pub use parse::{ColumnType, MAX_DECIMAL_PRECISION, TIMESTAMP_ZONE, TYPE_NAMES, TYPE_PATTERN};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a value that does not fit its column's type does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Fail the export, naming the row, the column and the value.
    #[default]
    Fail,
    /// Export a null instead, and count it per column in the export's notes
    /// (`{"nulled_values": {"price": 3}}`).
    Null,
}

impl OnError {
    /// Whether this is the default, [`OnError::Fail`] (for `skip_serializing_if`).
    pub fn is_fail(&self) -> bool {
        *self == OnError::Fail
    }
}

#[cfg(test)]
mod tests;
