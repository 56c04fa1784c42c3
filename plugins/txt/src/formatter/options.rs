//! The `txt` formatter's options and their limits.

use export_plugin_api::JsonSchema;
use serde::{Deserialize, Serialize};

/// The narrowest `max_width`: room for one wide character.
pub const MIN_MAX_WIDTH: u32 = 2;
/// The widest `max_width`.
pub const MAX_MAX_WIDTH: u32 = 10_000;

/// How rows are laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum Layout {
    /// Columns aligned in a box of ASCII rules.
    #[default]
    Table,
    /// One line per row, cells joined by `separator`.
    Lines,
}

/// What happens to a value wider than its column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum Overflow {
    /// It continues on the next lines of its row.
    #[default]
    Wrap,
    /// It is cut, ending with `…`.
    Truncate,
}

/// Options of the `txt` formatter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct TxtOptions {
    /// `"table"`: aligned columns; `"lines"`: one line per row, cells
    /// joined by `separator`. Default: `"table"`.
    #[serde(default)]
    pub layout: Layout,

    /// Whether the first row names the columns. Default: `true`.
    #[serde(default = "default_header")]
    pub header: bool,

    /// The most columns (terminal cells) a table column takes; CJK and emoji
    /// count two. With `"lines"`, the most a value takes when `overflow` is
    /// `"truncate"`. From 2 to 10000. Default: 40.
    #[serde(default = "default_max_width")]
    #[schemars(range(min = 2, max = 10_000))]
    pub max_width: u32,

    /// A value wider than its column: `"wrap"` continues it on the next
    /// lines of its row, `"truncate"` cuts it and ends it with `…` (its line
    /// breaks shown as `↵`). With `"lines"`, `"wrap"` writes values whole.
    /// Default: `"wrap"`.
    #[serde(default)]
    pub overflow: Overflow,

    /// Put between the cells of a line; only with `"lines"`. Must not be
    /// empty nor hold a line break. Default: a tab.
    #[serde(default)]
    pub separator: Option<String>,

    /// Shown for a null. Default: empty.
    #[serde(default)]
    pub null: String,
}

fn default_header() -> bool {
    true
}

fn default_max_width() -> u32 {
    40
}

/// The `lines` separator when none is given.
pub const DEFAULT_SEPARATOR: &str = "\t";

impl Default for TxtOptions {
    fn default() -> Self {
        TxtOptions {
            layout: Layout::default(),
            header: default_header(),
            max_width: default_max_width(),
            overflow: Overflow::default(),
            separator: None,
            null: String::new(),
        }
    }
}
