//! # export-html
//!
//! The first-party `html` plugin for export-host: formatter `html`
//! ([`HtmlFormatter`], options [`HtmlOptions`]) writes a standalone page,
//! with its CSS inline and nothing loaded from elsewhere, rendered by a
//! [minijinja] template with HTML autoescaping always on.
//!
//! ## Templates and streaming
//!
//! Memory stays flat for any row count because a template is rendered in
//! parts, never over all rows at once. Each render gets a `part` variable and
//! writes only that part:
//!
//! | `part` | when | what it writes (built-in `report`) |
//! | --- | --- | --- |
//! | `head` | once, first | doctype, `<head>` with the CSS, title, summary |
//! | `section_start` | a section begins | section heading, `<table>`, header row |
//! | `rows` | per batch (and per section within it) | the `<tr>`s of `rows` |
//! | `section_end` | a section ends | `</table>` |
//! | `tail` | once, last | row count, `</html>` |
//!
//! Every part sees `title`, `summary` (or none), `columns` (the names),
//! `audience` (`"table"`, `"analyst"` or `"executive"`), `insights_css`
//! (the CSS of the summary and charts; empty for `"table"`), `insights`
//! (in `tail`: the summary table and the SVG charts as HTML; empty elsewhere
//! and for `"table"`),
//! `section_by` (or none), `section` (the value that opened the current
//! section; none for a null or without `section_by`), `section_index`,
//! `section_rows` (rows in the section so far), `rows` (in the `rows` part:
//! a list of rows, each a list of cells, a cell a string or none; empty
//! elsewhere), `row_count` and `section_count` (so far; totals in `tail`).
//! Without `section_by` there is exactly one section, even for no rows;
//! with `audience` `"executive"` there is none (no table).
//!
//! The built-in templates are `report` (the default) and `table`. A user
//! template is a file in the folder named by `templates_dir` in the plugin's
//! `[config]`, chosen with the `template` option by its file name. The easy
//! way to write one is to extend `report` and override some of its blocks
//! (`style`, `header`, `head`, `section_start`, `rows`, `section_end`,
//! `tail`, `footer`):
//!
//! ```jinja
//! {% extends "report" %}
//! {% block header %}<h1>Invoice: {{ title }}</h1>{% endblock %}
//! ```
//!
//! A template that does not extend `report` branches on `part` itself
//! (`{% if part == "head" %}...{% elif part == "rows" %}...{% endif %}`);
//! `templates/report.html` in this crate is the model. Templates can
//! `{% include %}` or `{% extends %}` other files of the folder; names are
//! plain file names (no `/`, no `..`) and never reach outside it. Undefined
//! variables are errors, so a typo fails the export with the template's
//! name and line instead of leaving a blank.
//!
//! ```toml
//! [plugins.html]
//! library = "libexport_html.so"
//!
//! [plugins.html.config]
//! templates_dir = "templates"   # optional
//! ```

mod config;
mod formatter;

pub use config::HtmlConfig;
pub use formatter::{HtmlFormatter, HtmlOptions};

use export_plugin_api::{Plugin, PluginBuilder};

/// The plugin: formatter `html`, configured by [`HtmlConfig`].
pub fn plugin() -> Plugin {
    PluginBuilder::new("html", env!("CARGO_PKG_VERSION"))
        .description("Writes exports as standalone HTML report pages from templates")
        .config::<HtmlConfig>()
        .formatter(HtmlFormatter)
        .build()
}

export_plugin_api::export_plugin!(plugin());
