//! The `pdf` formatter's options, their defaults and limits.

use export_plugin_api::report::{Audience, ChartOption};
use export_plugin_api::JsonSchema;
use serde::{Deserialize, Serialize};

/// Paper sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum PageSize {
    /// ISO A4, 210 × 297 mm.
    A4,
    /// US Letter, 8.5 × 11 in.
    Letter,
}

/// Which way up the page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(crate = "export_plugin_api::schemars")]
pub enum Orientation {
    /// Taller than wide.
    Portrait,
    /// Wider than tall: more room for columns.
    Landscape,
}

/// The smallest and largest `font_size`.
pub(super) const FONT_SIZES: std::ops::RangeInclusive<f64> = 5.0..=24.0;
/// The most lines `max_cell_lines` may ask for.
pub(super) const MAX_CELL_LINES: u32 = 200;

/// Options of the `pdf` formatter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct PdfOptions {
    /// The title at the top of every page and in the document's properties
    /// (default `"Export"`).
    #[serde(default = "default_title")]
    pub title: String,

    /// Paper size: `"a4"` (default) or `"letter"`.
    #[serde(default = "default_page_size")]
    pub page_size: PageSize,

    /// `"landscape"` (default) or `"portrait"`.
    #[serde(default = "default_orientation")]
    pub orientation: Orientation,

    /// Size of the table's text in points, 5 to 24 (default 8). The title is
    /// half as big again.
    #[serde(default = "default_font_size")]
    #[schemars(range(min = 5.0, max = 24.0))]
    pub font_size: f64,

    /// Lines a cell may fill before it is cut short with `…`, 1 to 200
    /// (default 6). Longer values wrap at spaces, inside a word only when
    /// the word alone is wider than its column.
    #[serde(default = "default_max_cell_lines")]
    #[schemars(range(min = 1, max = 200))]
    pub max_cell_lines: u32,

    /// Who the document is for: `"table"` (default: the table alone, as
    /// without this option), `"analyst"` (pages with a summary of every
    /// column and the charts, numbered `i`, `ii`, ..., before the table) or
    /// `"executive"` (the title, the summary and the charts; no table). The
    /// summary and charts are computed while the rows stream by.
    #[serde(default)]
    pub audience: Audience,

    /// Charts, drawn as vector graphics:
    /// `{"x": COLUMN, "y": COLUMN or [COLUMNS], "kind": "line" | "bar"}`,
    /// or a list of them; see the README for `agg`, `points` and `title`.
    /// Needs `audience` `"analyst"` or `"executive"`.
    #[serde(default)]
    pub chart: Option<ChartOption>,
}

fn default_title() -> String {
    "Export".to_owned()
}
fn default_page_size() -> PageSize {
    PageSize::A4
}
fn default_orientation() -> Orientation {
    Orientation::Landscape
}
fn default_font_size() -> f64 {
    8.0
}
fn default_max_cell_lines() -> u32 {
    6
}

impl Default for PdfOptions {
    fn default() -> Self {
        PdfOptions {
            title: default_title(),
            page_size: default_page_size(),
            orientation: default_orientation(),
            font_size: default_font_size(),
            max_cell_lines: default_max_cell_lines(),
            audience: Audience::Table,
            chart: None,
        }
    }
}
