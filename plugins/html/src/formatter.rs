//! The `html` formatter: a standalone HTML page rendered from a template,
//! part by part, so no part of the output ever holds more than one batch.

use crate::config::HtmlConfig;
use chart::{insights_html, INSIGHTS_CSS};
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::SchemaRef;
use export_plugin_api::report::{self, Audience, ChartOption, ReportBuilder};
use export_plugin_api::rows::{Cell, Rows};
use export_plugin_api::{FormatWriter, Formatter, JsonSchema, PluginError, Result};
use minijinja::{context, Environment, Value};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use templates::{check_template, environment, template_error, TemplatesDir, NAME_PATTERN};

mod chart;
mod templates;

/// Options of the `html` formatter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(crate = "export_plugin_api::schemars")]
pub struct HtmlOptions {
    /// The page title: the browser tab's and the report's heading
    /// (default `"Export"`).
    #[serde(default = "default_title")]
    pub title: String,

    /// A paragraph shown under the title (default: none).
    #[serde(default)]
    pub summary: Option<String>,

    /// The template that renders the page (default `"report"`): a built-in
    /// one (`"report"`: title, summary, one table per section and a row
    /// count; `"table"`: the tables alone) or the file name of a template in
    /// the plugin's configured `templates_dir`, such as `"invoice.html"`.
    #[serde(default = "default_template")]
    #[schemars(pattern(NAME_PATTERN))]
    pub template: String,

    /// A column whose value starts a new section (a heading and its own
    /// table) each time it changes from one row to the next (default: none,
    /// one table). Sort the data by it for one section per value.
    #[serde(default)]
    pub section_by: Option<String>,

    /// Who the page is for: `"table"` (default: the table alone, as without
    /// this option), `"analyst"` (a summary of every column and the charts,
    /// shown above the table) or `"executive"` (the title, the summary and
    /// the charts; no table). The summary and charts are computed while the
    /// rows stream by; templates get them as `insights` in the `tail` part.
    #[serde(default)]
    pub audience: Audience,

    /// Charts, drawn as inline SVG:
    /// `{"x": COLUMN, "y": COLUMN or [COLUMNS], "kind": "line" | "bar"}`,
    /// or a list of them; see the README for `agg`, `points` and `title`.
    /// Needs `audience` `"analyst"` or `"executive"`.
    #[serde(default)]
    pub chart: Option<ChartOption>,
}

fn default_title() -> String {
    "Export".to_owned()
}

fn default_template() -> String {
    "report".to_owned()
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            title: default_title(),
            summary: None,
            template: default_template(),
            section_by: None,
            audience: Audience::Table,
            chart: None,
        }
    }
}

/// The `html` formatter. Every value is HTML-escaped (`<`, `>`, `&`, `"`,
/// `'` and `/`); nulls are empty cells with the class `null`; line breaks
/// and spaces inside values are kept (`white-space: pre-wrap`). The page
/// carries its CSS inline and loads nothing, and its Content-Security-Policy
/// forbids scripts.
pub struct HtmlFormatter;

impl Formatter for HtmlFormatter {
    type Config = HtmlConfig;
    type Options = HtmlOptions;
    const NAME: &'static str = "html";
    const DESCRIPTION: &'static str =
        "A standalone HTML report page (inline CSS), from a built-in or user template";
    const MIME_TYPE: &'static str = "text/html; charset=utf-8";
    const EXTENSION: &'static str = "html";

    fn start(
        &self,
        config: HtmlConfig,
        options: HtmlOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        // Refuse column types that cannot be shown as text before any output exists.
        Rows::new(&RecordBatch::new_empty(schema.clone()))?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let section_column = match &options.section_by {
            None => None,
            Some(name) => Some(columns.iter().position(|c| c == name).ok_or_else(|| {
                PluginError::invalid_input(format!(
                    "section_by names the column {name:?}, which the data does not have; it has: {}",
                    columns.join(", ")
                ))
            })?),
        };
        let dir = config
            .templates_dir
            .as_deref()
            .map(TemplatesDir::open)
            .transpose()?;
        let env = environment(dir.as_ref())?;
        check_template(&env, dir.as_ref(), &options.template)?;
        let charts = report::check_options(options.audience, options.chart.as_ref())?;
        let insights = if options.audience.shows_report() {
            Some(ReportBuilder::new(&schema, &charts)?)
        } else {
            None
        };
        Ok(Box::new(HtmlWriter {
            audience: options.audience,
            insights,
            env,
            template: options.template,
            title: options.title,
            summary: options.summary,
            section_by: options.section_by,
            columns: Value::from(columns),
            section_column,
            started: false,
            section: None,
            row_count: 0,
            section_count: 0,
            text: String::new(),
        }))
    }
}

/// Which piece of the page a render writes; a template writes only the
/// block for the `part` it is given.
#[derive(Clone, Copy)]
enum Part {
    Head,
    SectionStart,
    Rows,
    SectionEnd,
    Tail,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Head => "head",
            Part::SectionStart => "section_start",
            Part::Rows => "rows",
            Part::SectionEnd => "section_end",
            Part::Tail => "tail",
        }
    }
}

/// The section being written.
struct Section {
    /// The `section_by` value that started it (`None` for a null, or when
    /// there is no `section_by`).
    value: Option<String>,
    rows: u64,
}

/// One running HTML export. It keeps the template environment and a few
/// counters; rows live only as long as the batch that carries them.
struct HtmlWriter {
    audience: Audience,
    /// The summary and charts being computed, when the audience wants them.
    insights: Option<ReportBuilder>,
    env: Environment<'static>,
    template: String,
    title: String,
    summary: Option<String>,
    section_by: Option<String>,
    columns: Value,
    section_column: Option<usize>,
    /// Whether the head was written.
    started: bool,
    /// The open section, if any.
    section: Option<Section>,
    row_count: u64,
    section_count: u64,
    /// Reused for cells that are not text already (numbers, dates, ...).
    text: String,
}

impl HtmlWriter {
    /// Renders one part of the page with `rows` (empty outside the rows part).
    fn render(&self, part: Part, rows: Vec<Value>, out: &mut Vec<u8>) -> Result<()> {
        self.render_with(part, rows, Value::from_safe_string(String::new()), out)
    }

    /// Renders one part with `insights` (safe HTML, empty but in `tail`).
    fn render_with(
        &self,
        part: Part,
        rows: Vec<Value>,
        insights: Value,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let section = self.section.as_ref();
        let audience = match self.audience {
            Audience::Executive => "executive",
            Audience::Analyst => "analyst",
            Audience::Table => "table",
        };
        let insights_css = if self.audience.shows_report() {
            INSIGHTS_CSS
        } else {
            ""
        };
        let ctx = context! {
            part => part.name(),
            title => &self.title,
            summary => &self.summary,
            columns => &self.columns,
            section_by => &self.section_by,
            section => section.and_then(|s| s.value.clone()),
            section_index => self.section_count,
            section_rows => section.map_or(0, |s| s.rows),
            rows => rows,
            row_count => self.row_count,
            section_count => self.section_count,
            audience => audience,
            insights => insights,
            insights_css => Value::from_safe_string(insights_css.to_owned()),
        };
        let template = self
            .env
            .get_template(&self.template)
            .map_err(|err| template_error(&self.template, &err))?;
        template
            .render_captured_to(ctx, &mut *out)
            .map(|_| ())
            .map_err(|err| template_error(&self.template, &err))
    }

    /// Writes the head once, then, without `section_by`, opens the one section.
    fn ensure_started(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.started {
            return Ok(());
        }
        self.started = true;
        self.render(Part::Head, Vec::new(), out)?;
        if self.section_column.is_none() && self.audience.shows_table() {
            self.open_section(None, out)?;
        }
        Ok(())
    }

    fn open_section(&mut self, value: Option<String>, out: &mut Vec<u8>) -> Result<()> {
        self.section_count += 1;
        self.section = Some(Section { value, rows: 0 });
        self.render(Part::SectionStart, Vec::new(), out)
    }

    fn close_section(&mut self, out: &mut Vec<u8>) -> Result<()> {
        if self.section.is_some() {
            self.render(Part::SectionEnd, Vec::new(), out)?;
            self.section = None;
        }
        Ok(())
    }

    /// Renders `rows` into the open section.
    fn flush_rows(&mut self, rows: Vec<Value>, out: &mut Vec<u8>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let count = rows.len() as u64;
        self.row_count += count;
        if let Some(section) = &mut self.section {
            section.rows += count;
        }
        self.render(Part::Rows, rows, out)
    }

    /// The text of a section cell, `None` for a null.
    fn cell_text(&mut self, cell: Cell<'_>) -> Option<String> {
        match cell {
            Cell::Null => None,
            Cell::Text(text) => Some(text.to_owned()),
            other => {
                self.text.clear();
                // Writing into a String cannot fail.
                let _ = write!(self.text, "{other}");
                Some(self.text.clone())
            }
        }
    }
}

impl FormatWriter for HtmlWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        self.ensure_started(out)?;
        if let Some(insights) = &mut self.insights {
            insights.add(batch)?;
        }
        if !self.audience.shows_table() {
            self.row_count += batch.num_rows() as u64;
            return Ok(());
        }
        let rows = Rows::new(batch)?;
        let mut pending: Vec<Value> = Vec::new();
        for row in rows.iter() {
            if let Some(column) = self.section_column {
                let value = self.cell_text(row.get(column));
                if self.section.as_ref().is_none_or(|s| s.value != value) {
                    self.flush_rows(std::mem::take(&mut pending), out)?;
                    self.close_section(out)?;
                    self.open_section(value, out)?;
                }
            }
            let cells: Vec<Value> = row
                .cells()
                .map(|cell| match self.cell_text(cell) {
                    Some(text) => Value::from(text),
                    None => Value::from(()),
                })
                .collect();
            pending.push(Value::from(cells));
        }
        self.flush_rows(pending, out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.ensure_started(out)?;
        self.close_section(out)?;
        let insights = match self.insights.take() {
            Some(builder) => insights_html(&builder.finish()),
            None => String::new(),
        };
        self.render_with(
            Part::Tail,
            Vec::new(),
            Value::from_safe_string(insights),
            out,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin;
    use export_plugin_api::arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use export_plugin_api::arrow_schema::{DataType, Field, Schema};
    use export_plugin_api::testing::{run_formatter_parts, text_columns};
    use export_plugin_api::ErrorKind;
    use serde_json::{json, Value as Json};
    use std::sync::Arc;

    /// Formats `batches` with `options` and plugin `config`; returns the page
    /// and what each call (per batch, then finish) wrote.
    fn format_parts(
        config: Json,
        options: Json,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(String, Vec<String>)> {
        let parts: Vec<String> = run_formatter_parts(
            &plugin(),
            "html",
            &config.to_string(),
            &options.to_string(),
            schema,
            batches,
        )?
        .into_iter()
        .map(|part| String::from_utf8(part).unwrap())
        .collect();
        Ok((parts.concat(), parts))
    }

    fn format(options: Json, batches: &[RecordBatch]) -> Result<String> {
        let schema = batches[0].schema();
        format_parts(json!({}), options, schema, batches).map(|(page, _)| page)
    }

    fn start_error(config: Json, options: Json) -> PluginError {
        let schema = text_columns(&[("a", vec![Some("x")])]).schema();
        match plugin().start_formatter("html", &config.to_string(), &options.to_string(), schema) {
            Ok(_) => panic!("{options} was accepted"),
            Err(err) => err,
        }
    }

    const NASTY: &str = r#"<script>alert("x&y's")</script>"#;

    #[test]
    fn escapes_cells_titles_summaries_and_column_names() {
        let batch = text_columns(&[
            (NASTY, vec![Some(NASTY), Some("a & b < c > d \"e\" 'f'")]),
            (
                "plain",
                vec![Some("</td></tr></table><img src=x onerror=alert(1)>"), None],
            ),
        ]);
        let page = format(json!({ "title": NASTY, "summary": NASTY }), &[batch]).unwrap();
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(!page.contains("x&y"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(&quot;x&amp;y&#x27;s&quot;)&lt;&#x2f;script&gt;"),
            "{page}"
        );
        assert!(
            page.contains("<td>a &amp; b &lt; c &gt; d &quot;e&quot; &#x27;f&#x27;</td>"),
            "{page}"
        );
        // Title (tab and heading), summary, column list, header cell, data cell.
        assert_eq!(page.matches("&lt;script&gt;").count(), 6, "{page}");
        // The page forbids scripts even if one got through.
        assert!(page.contains("default-src 'none'"), "{page}");
    }

    #[test]
    fn nulls_and_empty_strings_are_empty_cells() {
        let batch = text_columns(&[("a", vec![None, Some("")])]);
        let page = format(json!({}), &[batch]).unwrap();
        assert!(page.contains("<tr><td class=\"null\"></td></tr>"), "{page}");
        assert!(page.contains("<tr><td></td></tr>"), "{page}");
    }

    #[test]
    fn carriage_returns_survive_html_parsing() {
        let batch = text_columns(&[("a", vec![Some("one\r\ntwo\rthree\n<4>")])]);
        let page = format(json!({}), &[batch]).unwrap();
        assert!(
            page.contains("<td>one&#13;\ntwo&#13;three\n&lt;4&gt;</td>"),
            "{page}"
        );
    }

    #[test]
    fn numbers_are_written_as_text() {
        let batch = RecordBatch::try_from_iter([
            (
                "i",
                Arc::new(Int64Array::from(vec![Some(-7), None])) as ArrayRef,
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![1.5, f64::NAN])) as ArrayRef,
            ),
        ])
        .unwrap();
        let page = format(json!({}), &[batch]).unwrap();
        assert!(page.contains("<tr><td>-7</td><td>1.5</td></tr>"), "{page}");
        assert!(
            page.contains("<tr><td class=\"null\"></td><td>NaN</td></tr>"),
            "{page}"
        );
    }

    #[test]
    fn empty_input_is_a_complete_page() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        let (page, parts) = format_parts(json!({}), json!({}), schema, &[]).unwrap();
        assert_eq!(parts.len(), 1);
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(page.trim_end().ends_with("</html>"), "{page}");
        assert!(page.contains("<th scope=\"col\">id</th>"), "{page}");
        assert!(page.contains("No rows."), "{page}");
        assert!(page.contains("0 rows."), "{page}");
        // No columns at all.
        let (page, _) = format_parts(json!({}), json!({}), Arc::new(Schema::empty()), &[]).unwrap();
        assert!(page.contains("0 columns"), "{page}");
    }

    #[test]
    fn each_batch_writes_only_its_own_rows() {
        let first = text_columns(&[("n", vec![Some("one"), Some("two")])]);
        let second = text_columns(&[("n", vec![Some("three")])]);
        let (page, parts) =
            format_parts(json!({}), json!({}), first.schema(), &[first, second]).unwrap();
        assert!(parts[0].starts_with("<!DOCTYPE html>"));
        assert!(parts[0].contains("<td>two</td>") && !parts[0].contains("three"));
        assert_eq!(parts[1], "<tr><td>three</td></tr>\n");
        assert!(parts[2].contains("3 rows.") && parts[2].trim_end().ends_with("</html>"));
        assert_eq!(page.matches("<table>").count(), 1);
    }

    #[test]
    fn sections_follow_the_section_column_across_batches() {
        let first = text_columns(&[
            ("group", vec![Some("a"), Some("a"), Some("b")]),
            ("v", vec![Some("1"), Some("2"), Some("3")]),
        ]);
        let second = text_columns(&[
            ("group", vec![Some("b"), None]),
            ("v", vec![Some("4"), Some("5")]),
        ]);
        let page = format(json!({ "section_by": "group" }), &[first, second]).unwrap();
        assert_eq!(page.matches("<table>").count(), 3, "{page}");
        assert!(page.contains("<h2>group: a</h2>"), "{page}");
        assert!(page.contains("<h2>group: b</h2>"), "{page}");
        assert!(page.contains("<h2>group: (null)</h2>"), "{page}");
        assert!(page.contains("5 rows in 3 sections."), "{page}");
        let b = page.find("group: b").unwrap();
        let null = page.find("group: (null)").unwrap();
        let four = page.find("<td>4</td>").unwrap();
        assert!(b < four && four < null, "row 4 stays in section b");
    }

    /// Numbers per day and per team, over `days` days.
    fn daily_batch(days: usize) -> RecordBatch {
        let day: Vec<String> = (0..days)
            .map(|d| format!("2024-05-{:02}", d % 28 + 1))
            .collect();
        let team: Vec<&str> = (0..days)
            .map(|d| ["<ops>", "sales & co", "dev"][d % 3])
            .collect();
        let n: Vec<i64> = (0..days as i64).map(|d| d * 3 % 17).collect();
        let m: Vec<f64> = (0..days).map(|d| (d as f64).sqrt()).collect();
        RecordBatch::try_from_iter([
            ("day", Arc::new(StringArray::from(day)) as ArrayRef),
            ("team", Arc::new(StringArray::from(team)) as ArrayRef),
            ("n", Arc::new(Int64Array::from(n)) as ArrayRef),
            ("m", Arc::new(Float64Array::from(m)) as ArrayRef),
        ])
        .unwrap()
    }

    #[test]
    fn audiences_add_a_summary_and_svg_charts() {
        let batch = daily_batch(28);
        let options = json!({
            "title": "Daily <report>",
            "audience": "analyst",
            "chart": [
                {"x": "day", "y": "n", "kind": "bar"},
                {"x": "day", "y": ["n", "m"], "kind": "line", "title": "n & m"},
                {"x": "team", "y": "n", "agg": "mean"}
            ]
        });
        let page = format(options.clone(), std::slice::from_ref(&batch)).unwrap();
        if let Ok(path) = std::env::var("HTML_REPORT_SAMPLE") {
            std::fs::write(path, &page).unwrap();
        }
        assert_eq!(page.matches("<svg").count(), 3, "{page}");
        assert_eq!(page.matches("<rect class=\"bar\"").count(), 28 + 3);
        assert_eq!(page.matches("<circle class=\"point\"").count(), 56);
        assert!(page.contains("<td>&lt;ops&gt;</td>"), "the table is there");
        assert!(page.contains(">&lt;ops&gt;</text>"), "labels are escaped");
        assert!(page.contains("<strong>n &amp; m</strong>"), "{page}");
        assert!(
            page.contains("<p class=\"row-count\">28 rows.</p>"),
            "{page}"
        );
        assert!(!page.contains("<script"), "{page}");
        // Executive: no table.
        let mut options = options;
        options["audience"] = json!("executive");
        let page = format(options, std::slice::from_ref(&batch)).unwrap();
        assert!(!page.contains("<td>&lt;ops&gt;</td>"), "{page}");
        assert_eq!(page.matches("<svg").count(), 3);
        assert!(page.contains("28 rows."), "{page}");
        // The default audience is byte for byte the page without the option.
        assert_eq!(
            format(json!({"audience": "table"}), std::slice::from_ref(&batch)).unwrap(),
            format(json!({}), std::slice::from_ref(&batch)).unwrap()
        );
        let err = start_error(json!({}), json!({"chart": {"x": "day", "y": "n"}}));
        assert!(err.message.contains("audience"), "{}", err.message);
        let err = start_error(
            json!({}),
            json!({"audience": "analyst", "chart": {"x": "a", "y": "nope"}}),
        );
        assert!(err.message.contains("nope"), "{}", err.message);
    }

    #[test]
    fn template_selection() {
        let batch = text_columns(&[("a", vec![Some("x")])]);
        let report = format(json!({ "title": "T" }), std::slice::from_ref(&batch)).unwrap();
        assert!(report.contains("<h1>T</h1>"), "{report}");
        assert!(report.contains("<footer>"), "{report}");
        let table = format(json!({ "title": "T", "template": "table" }), &[batch]).unwrap();
        assert!(!table.contains("<h1>"), "{table}");
        assert!(!table.contains("<footer>"), "{table}");
        assert!(
            table.contains("<title>T</title>") && table.contains("<td>x</td>"),
            "{table}"
        );
    }

    #[test]
    fn user_template_from_the_configured_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("invoice.html"),
            "{% extends \"report\" %}\n{% block header %}<h1 class=\"invoice\">Invoice {{ title }}</h1>{% endblock %}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("list.html"),
            concat!(
                "{% if part == \"head\" %}<ul>{% elif part == \"rows\" %}",
                "{% for row in rows %}<li>{{ row[0] }}</li>{% endfor %}",
                "{% elif part == \"tail\" %}</ul>{{ row_count }}{% endif %}"
            ),
        )
        .unwrap();
        let config = json!({ "templates_dir": dir.path() });
        let batch = text_columns(&[("a", vec![Some("<x>"), Some("y")])]);
        let (page, _) = format_parts(
            config.clone(),
            json!({ "template": "invoice.html", "title": "<7>" }),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        assert!(
            page.contains("<h1 class=\"invoice\">Invoice &lt;7&gt;</h1>"),
            "{page}"
        );
        assert!(page.contains("<td>&lt;x&gt;</td>"), "{page}");
        let (page, _) = format_parts(
            config,
            json!({ "template": "list.html" }),
            batch.schema(),
            &[batch],
        )
        .unwrap();
        assert_eq!(page, "<ul><li>&lt;x&gt;</li><li>y</li></ul>2");
    }

    #[test]
    fn the_example_user_template_renders() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/templates");
        let batch = text_columns(&[("a", vec![Some("<x>"), None])]);
        let (page, _) = format_parts(
            json!({ "templates_dir": dir }),
            json!({ "template": "compact.html", "title": "Q&A" }),
            batch.schema(),
            &[batch],
        )
        .unwrap();
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(page.contains("<h1>Q&amp;A</h1>"), "{page}");
        assert!(page.contains("th, td { padding: .15rem .4rem;"), "{page}");
        assert!(
            page.contains("--stripe"),
            "the built-in style is kept: {page}"
        );
        assert!(page.contains("<td>&lt;x&gt;</td>"), "{page}");
        assert!(page.contains("2 rows · 1 column</p>"), "{page}");
    }

    #[test]
    fn template_names_may_not_leave_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("templates");
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(dir.path().join("outside.html"), "secret").unwrap();
        let config = json!({ "templates_dir": inner });
        for name in [
            "../outside.html",
            "..",
            "/etc/passwd",
            "sub/x.html",
            ".hidden",
        ] {
            let err = start_error(config.clone(), json!({ "template": name }));
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{name}: {}", err.message);
            assert!(err.message.contains("not allowed"), "{}", err.message);
        }
    }

    #[test]
    fn invalid_options_are_refused() {
        for (options, needle) in [
            (json!({ "titel": "x" }), "unknown field"),
            (json!({ "title": 5 }), "invalid type"),
            (json!({ "section_by": "nope" }), "nope"),
            (json!({ "template": "nope.html" }), "report, table"),
        ] {
            let err = start_error(json!({}), options.clone());
            assert!(err.message.contains(needle), "{options}: {}", err.message);
        }
        let err = start_error(json!({ "templates_dir": "/no/such/folder" }), json!({}));
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        let err = start_error(json!({ "templates_dir": "/tmp", "extra": 1 }), json!({}));
        assert!(err.message.contains("unknown field"), "{}", err.message);
    }

    #[test]
    fn options_schema_declares_defaults_and_refuses_unknown_keys() {
        let schema = export_plugin_api::schemars::schema_for!(HtmlOptions).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(schema["properties"]["title"]["default"], json!("Export"));
        assert_eq!(schema["properties"]["template"]["default"], json!("report"));
        assert_eq!(
            schema["properties"]["template"]["pattern"],
            json!(NAME_PATTERN)
        );
    }

    #[test]
    fn a_template_error_names_the_template_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("typo.html"),
            "{% if part == \"rows\" %}\n{{ rowz }}\n{% endif %}",
        )
        .unwrap();
        let batch = text_columns(&[("a", vec![Some("x")])]);
        let mut writer = plugin()
            .start_formatter(
                "html",
                &json!({ "templates_dir": dir.path() }).to_string(),
                r#"{"template":"typo.html"}"#,
                batch.schema(),
            )
            .unwrap();
        let err = writer.write(&batch, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidInput);
        assert!(err.message.contains("typo.html:2"), "{}", err.message);
    }
}
