//! The `pdf` formatter: a paginated table report with an embedded font.

mod document;
mod draw;
mod embed;
mod fonts;
mod insights;
mod layout;
mod options;
mod shape;

pub use options::{Orientation, PageSize, PdfOptions};
use options::{FONT_SIZES, MAX_CELL_LINES};

use crate::config::PdfConfig;
use draw::{Columns, Drawing, Geometry, LaidRow, PageContent, PageFrame, HEADER_LINES};
use export_plugin_api::arrow_array::RecordBatch;
use export_plugin_api::arrow_schema::{DataType, SchemaRef};
use export_plugin_api::report::{self, ReportBuilder};
use export_plugin_api::rows::{Cell, Rows};
use export_plugin_api::{FormatWriter, Formatter, PluginError, Result};
use fonts::Fonts;
use insights::paginate;
use layout::{clean, column_widths, wrap};
use std::fmt::Write as _;
use std::sync::Arc;

/// The `pdf` formatter: a table over as many pages as it takes, the title
/// and the header row on every page, `Page N` at the foot. Text is real
/// text in embedded, subset fonts (DejaVu Sans; Droid Sans Fallback for
/// Chinese and Japanese), so it can be searched and copied. Column
/// widths are set from the header and the first 1,000 rows (or 4 MiB of
/// text); numbers are aligned right; nulls are empty cells.
///
/// Streaming: each page's objects are appended to the output as soon as
/// the page is drawn; `finish` adds the subset fonts, the page tree and
/// the cross-reference table. Memory stays flat whatever the row count:
/// the rows of one page (a few pages while drawing overlaps layout), the
/// glyphs used so far, and an offset per object.
pub struct PdfFormatter;

impl Formatter for PdfFormatter {
    type Config = PdfConfig;
    type Options = PdfOptions;
    const NAME: &'static str = "pdf";
    const DESCRIPTION: &'static str =
        "A paginated PDF table report with searchable text in an embedded font";
    const MIME_TYPE: &'static str = "application/pdf";
    const EXTENSION: &'static str = "pdf";

    fn start(
        &self,
        config: PdfConfig,
        options: PdfOptions,
        schema: SchemaRef,
    ) -> Result<Box<dyn FormatWriter>> {
        // Refuse column types that cannot be shown as text before any output exists.
        Rows::new(&RecordBatch::new_empty(schema.clone()))?;
        if !FONT_SIZES.contains(&options.font_size) {
            return Err(PluginError::invalid_input(format!(
                "font_size {} is out of range: use {} to {} points",
                options.font_size,
                FONT_SIZES.start(),
                FONT_SIZES.end()
            )));
        }
        if !(1..=MAX_CELL_LINES).contains(&options.max_cell_lines) {
            return Err(PluginError::invalid_input(format!(
                "max_cell_lines {} is out of range: use 1 to {MAX_CELL_LINES}",
                options.max_cell_lines
            )));
        }
        let charts = report::check_options(options.audience, options.chart.as_ref())?;
        let insights = if options.audience.shows_report() {
            Some(ReportBuilder::new(&schema, &charts)?)
        } else {
            None
        };
        let geometry = Geometry::new(&options);
        let mut fonts = Fonts::load()?;
        let header: Vec<String> = schema.fields().iter().map(|f| clean(f.name())).collect();
        let numeric: Vec<bool> = schema
            .fields()
            .iter()
            .map(|f| is_numeric(f.data_type()))
            .collect();
        let tallest_row = geometry.row_height(options.max_cell_lines as usize);
        let header_height = geometry.row_height(HEADER_LINES);
        if geometry.body_top() + header_height + tallest_row > geometry.body_bottom() {
            return Err(PluginError::invalid_input(format!(
                "a cell of max_cell_lines {} lines at font_size {} does not fit on a page: \
                 lower max_cell_lines or font_size, or use a larger page",
                options.max_cell_lines, options.font_size
            )));
        }
        let title = {
            let width = geometry.content_width() / geometry.title_size;
            wrap(&mut fonts, &clean(&options.title), true, width, 1).swap_remove(0)
        };
        let drawing = Drawing::start(
            PageFrame {
                geometry,
                title,
                numeric,
            },
            options.title.clone(),
        )?;
        Ok(Box::new(PdfWriter {
            show_table: options.audience.shows_table(),
            insights,
            drawing,
            fonts,
            geometry,
            header,
            max_cell_lines: options.max_cell_lines as usize,
            columns: None,
            sample: Vec::new(),
            sample_bytes: 0,
            page: Vec::new(),
            page_height: 0.0,
            started: false,
            pages: 0,
            rows: 0,
            received: 0,
            max_rows: config.max_rows,
            text: String::new(),
        }))
    }
}

fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_numeric()
}

/// The first rows, up to this many, set the column widths...
const SAMPLE_ROWS: usize = 1000;
/// ...or as many as hold this much text, if that comes first.
const SAMPLE_BYTES: usize = 4 << 20;

/// One running PDF export: lays rows out into pages and hands each full
/// page to the drawing thread.
struct PdfWriter {
    /// Whether rows are drawn (not for the executive audience).
    show_table: bool,
    /// The summary and charts being computed, when the audience wants them.
    insights: Option<ReportBuilder>,
    drawing: Drawing,
    /// For measuring text while wrapping (the drawing thread has its own).
    fonts: Fonts,
    geometry: Geometry,
    header: Vec<String>,
    max_cell_lines: usize,
    /// Fixed once the first rows are sampled.
    columns: Option<Arc<Columns>>,
    /// The first rows' cleaned cells, kept until the columns are fixed.
    sample: Vec<Vec<String>>,
    /// The text they hold, in bytes.
    sample_bytes: usize,
    /// The rows of the page being filled.
    page: Vec<LaidRow>,
    /// Their height so far.
    page_height: f32,
    /// Whether the header of the file has been written.
    started: bool,
    pages: usize,
    rows: u64,
    /// Rows given to `write` so far, and how many the config allows.
    received: u64,
    max_rows: u64,
    /// Reused for cells that are not text already.
    text: String,
}

impl PdfWriter {
    /// Fixes the column widths from the header and the sampled rows (see
    /// [`column_widths`] for how the page width is shared), then lays the
    /// sampled rows out.
    fn set_columns(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let g = self.geometry;
        let pad = 2.0 * g.padding_x;
        let sample = std::mem::take(&mut self.sample);
        self.sample_bytes = 0;
        // What each column asks for, in points: its widest line (`natural`)
        // and its widest word (`words`), which wrapping would have to break.
        // The header counts whole; of the sample, the 90th percentile, so a
        // few outliers wrap instead of taking the room of every other column.
        let mut natural = Vec::with_capacity(self.header.len());
        let mut words = Vec::with_capacity(self.header.len());
        for (column, name) in self.header.iter().enumerate() {
            let mut lines = Vec::with_capacity(sample.len());
            let mut longest_words = Vec::with_capacity(sample.len());
            for row in &sample {
                lines.push(widest_line(&mut self.fonts, &row[column], false));
                longest_words.push(widest_word(&mut self.fonts, &row[column], false));
            }
            let line = percentile_90(lines).max(widest_line(&mut self.fonts, name, true));
            let word = percentile_90(longest_words).max(widest_word(&mut self.fonts, name, true));
            natural.push(line * g.font_size + pad);
            words.push(word * g.font_size + pad);
        }
        let widths = column_widths(&natural, &words, g.content_width());
        let mut x = Vec::with_capacity(widths.len());
        let mut left = 0.0;
        for width in &widths {
            x.push(left);
            left += width;
        }
        let header = lay_out(
            &mut self.fonts,
            &g,
            &widths,
            self.header.iter().map(String::as_str),
            true,
            HEADER_LINES,
        );
        self.columns = Some(Arc::new(Columns { x, widths, header }));
        for row in &sample {
            self.add_row(row, out)?;
        }
        Ok(())
    }

    /// Lays one row out (its cells [`clean`]ed) and adds it to the page.
    fn add_row(&mut self, texts: &[String], out: &mut Vec<u8>) -> Result<()> {
        let columns = self
            .columns
            .as_ref()
            .ok_or_else(|| PluginError::internal("the column layout is missing"))?;
        let laid = lay_out(
            &mut self.fonts,
            &self.geometry,
            &columns.widths,
            texts.iter().map(String::as_str),
            false,
            self.max_cell_lines,
        );
        self.rows += 1;
        self.push_row(laid, out)
    }

    /// Adds a row to the page, first drawing the page if the row does not fit.
    fn push_row(&mut self, row: LaidRow, out: &mut Vec<u8>) -> Result<()> {
        let header_height = self.columns.as_ref().map_or(0.0, |c| c.header.height);
        let room = self.geometry.body_bottom() - self.geometry.body_top() - header_height;
        if !self.page.is_empty() && self.page_height + row.height > room {
            self.draw_page(out)?;
        }
        self.page_height += row.height;
        self.page.push(row);
        Ok(())
    }

    /// Sends the waiting rows to be drawn as the next page, and appends
    /// the pages drawn meanwhile to `out`.
    fn draw_page(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let columns = self
            .columns
            .clone()
            .ok_or_else(|| PluginError::internal("the column layout is missing"))?;
        self.pages += 1;
        let note = match (self.rows, self.header.is_empty()) {
            (0, true) => Some("No columns."),
            (0, false) => Some("No rows."),
            _ => None,
        };
        let rows = std::mem::take(&mut self.page);
        self.page_height = 0.0;
        self.drawing.send(
            PageContent {
                number: self.pages,
                insights: None,
                label: None,
                front: false,
                columns,
                rows,
                note,
            },
            out,
        )
    }

    /// Draws the summary and charts as pages numbered i, ii, ... that
    /// open the document.
    fn draw_insights(&mut self, builder: ReportBuilder, out: &mut Vec<u8>) -> Result<()> {
        let report = builder.finish();
        let pages = paginate(&report, &self.geometry, &mut self.fonts);
        let columns = Arc::new(Columns {
            x: Vec::new(),
            widths: Vec::new(),
            header: LaidRow {
                cells: Vec::new(),
                height: 0.0,
            },
        });
        for (index, page) in pages.into_iter().enumerate() {
            self.drawing.send(
                PageContent {
                    number: index + 1,
                    insights: Some(Box::new(page)),
                    label: Some(format!("Page {}", roman(index + 1))),
                    front: true,
                    columns: columns.clone(),
                    rows: Vec::new(),
                    note: None,
                },
                out,
            )?;
        }
        Ok(())
    }

    /// Writes the file's header, the first time.
    fn start_file(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            out.extend_from_slice(Drawing::header());
            self.started = true;
        }
    }
}

/// Wraps the cells of one row into columns of `widths` points.
fn lay_out<'t>(
    fonts: &mut Fonts,
    g: &Geometry,
    widths: &[f32],
    cells: impl Iterator<Item = &'t str>,
    bold: bool,
    max_lines: usize,
) -> LaidRow {
    let cells: Vec<Vec<String>> = cells
        .zip(widths)
        .map(|(text, width)| {
            let room = ((width - 2.0 * g.padding_x) / g.font_size).max(0.5);
            wrap(fonts, text, bold, room, max_lines)
        })
        .collect();
    let lines = cells.iter().map(Vec::len).max().unwrap_or(1);
    LaidRow {
        cells,
        height: g.row_height(lines),
    }
}

/// The text of a cell: borrowed when it is text already, else formatted
/// into `buffer`. Nulls are empty.
fn cell_text<'c>(cell: Cell<'c>, buffer: &'c mut String) -> &'c str {
    match cell {
        Cell::Null => "",
        Cell::Text(text) => text,
        other => {
            buffer.clear();
            // Writing into a String cannot fail.
            let _ = write!(buffer, "{other}");
            buffer.as_str()
        }
    }
}

/// `n` in lowercase Roman numerals (front-matter page numbers).
fn roman(mut n: usize) -> String {
    const NUMERALS: [(usize, &str); 13] = [
        (1000, "m"),
        (900, "cm"),
        (500, "d"),
        (400, "cd"),
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ];
    let mut text = String::new();
    for (value, numeral) in NUMERALS {
        while n >= value {
            text.push_str(numeral);
            n -= value;
        }
    }
    text
}

/// The value below which 90% of `values` lie (0 for none).
fn percentile_90(mut values: Vec<f32>) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f32::total_cmp);
    let index = ((values.len() - 1) as f32 * 0.9).round() as usize;
    values[index]
}

/// The width in em of the widest word (run without spaces or breaks) of `text`.
fn widest_word(fonts: &mut Fonts, text: &str, bold: bool) -> f32 {
    text.split([' ', '\n'])
        .map(|word| fonts.width(word, bold))
        .fold(0.0, f32::max)
}

/// The width in em of the widest line of `text`.
fn widest_line(fonts: &mut Fonts, text: &str, bold: bool) -> f32 {
    text.split('\n')
        .map(|line| fonts.width(line, bold))
        .fold(0.0, f32::max)
}

impl FormatWriter for PdfWriter {
    fn write(&mut self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        if let Some(insights) = &mut self.insights {
            insights.add(batch)?;
        }
        if !self.show_table {
            // Only the summary and charts: nothing to lay out, no page per row.
            self.start_file(out);
            return Ok(());
        }
        self.received += batch.num_rows() as u64;
        if self.received > self.max_rows {
            return Err(PluginError::limit_exceeded(format!(
                "the PDF would hold more than {} rows (max_rows of the pdf plugin's config): \
                 export fewer rows (a filter or a limit), use csv or xlsx for data to process \
                 further, or raise [plugins.pdf.config] max_rows",
                self.max_rows
            )));
        }
        self.start_file(out);
        let rows = Rows::new(batch)?;
        let mut texts: Vec<String> = Vec::with_capacity(rows.num_columns());
        for row in rows.iter() {
            texts.clear();
            for cell in row.cells() {
                texts.push(clean(cell_text(cell, &mut self.text)));
            }
            if self.columns.is_some() {
                self.add_row(&texts, out)?;
                continue;
            }
            // Still sampling the rows that set the column widths.
            self.sample_bytes += texts.iter().map(String::len).sum::<usize>();
            self.sample.push(std::mem::take(&mut texts));
            if self.sample.len() >= SAMPLE_ROWS || self.sample_bytes >= SAMPLE_BYTES {
                self.set_columns(out)?;
            }
        }
        // Pages drawn meanwhile go out now rather than at the next page.
        self.drawing.drain(out)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.start_file(out);
        if self.show_table {
            if self.columns.is_none() {
                self.set_columns(out)?;
            }
            if !self.page.is_empty() || self.pages == 0 {
                self.draw_page(out)?;
            }
        }
        if let Some(builder) = self.insights.take() {
            self.draw_insights(builder, out)?;
        }
        self.drawing.finish(&self.fonts, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin;
    use export_plugin_api::arrow_array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use export_plugin_api::arrow_schema::{Field, Schema};
    use export_plugin_api::testing::text_columns;
    use export_plugin_api::ErrorKind;
    use serde_json::{json, Value};
    use std::process::Command;
    use std::sync::Arc;

    fn format_pdf(options: Value, schema: SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
        let mut writer = plugin().start_formatter("pdf", "{}", &options.to_string(), schema)?;
        let mut out = Vec::new();
        for batch in batches {
            writer.write(batch, &mut out)?;
        }
        writer.finish(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_pdf_past_max_rows_fails_with_limit_exceeded() {
        let batch = text_columns(&[("a", vec![Some("x"); 6])]);
        let start = |config: &str| {
            plugin()
                .start_formatter("pdf", config, "{}", batch.schema())
                .unwrap()
        };
        let mut writer = start(r#"{"max_rows":12}"#);
        let mut out = Vec::new();
        writer.write(&batch, &mut out).unwrap();
        writer.write(&batch, &mut out).unwrap();
        writer.finish(&mut out).unwrap();
        assert!(out.starts_with(b"%PDF-"));

        let mut writer = start(r#"{"max_rows":11}"#);
        writer.write(&batch, &mut Vec::new()).unwrap();
        let err = writer.write(&batch, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::LimitExceeded, "{err}");
        assert!(err.message.contains("more than 11 rows"), "{err}");
        assert!(
            err.message.contains("[plugins.pdf.config] max_rows"),
            "{err}"
        );
    }

    /// The text of every page, as poppler's `pdftotext -layout` reads it.
    /// Fails (never skips) when pdftotext is missing.
    fn pages_text(pdf: &[u8]) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pdf");
        std::fs::write(&path, pdf).unwrap();
        let output = Command::new("pdftotext")
            .arg("-layout")
            .arg("-enc")
            .arg("UTF-8")
            .arg(&path)
            .arg("-")
            .output()
            .expect("pdftotext must be installed (apt-get install poppler-utils)");
        assert!(
            output.status.success(),
            "pdftotext failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).unwrap();
        let mut pages: Vec<String> = text.split('\u{c}').map(str::to_owned).collect();
        if pages.last().is_some_and(|p| p.trim().is_empty()) {
            pages.pop();
        }
        pages
    }

    fn collapse(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn audiences_add_summary_and_chart_pages_first() {
        let days = 60;
        let day: Vec<String> = (0..days)
            .map(|d| format!("2024-{:02}-{:02}", d / 28 + 1, d % 28 + 1))
            .collect();
        let team: Vec<&str> = (0..days).map(|d| ["ops", "sales", "dev"][d % 3]).collect();
        let n: Vec<i64> = (0..days as i64).map(|d| d * 7 % 23).collect();
        let m: Vec<f64> = (0..days).map(|d| (d as f64).sqrt()).collect();
        let batch = RecordBatch::try_from_iter([
            ("day", Arc::new(StringArray::from(day)) as ArrayRef),
            ("team", Arc::new(StringArray::from(team)) as ArrayRef),
            ("n", Arc::new(Int64Array::from(n.clone())) as ArrayRef),
            ("m", Arc::new(Float64Array::from(m)) as ArrayRef),
        ])
        .unwrap();
        let options = json!({
            "title": "Daily report",
            "audience": "analyst",
            "chart": [
                {"x": "day", "y": "n", "kind": "bar"},
                {"x": "day", "y": ["n", "m"], "kind": "line"},
                {"x": "team", "y": "n", "agg": "mean"}
            ]
        });
        let pdf = format_pdf(
            options.clone(),
            batch.schema(),
            std::slice::from_ref(&batch),
        )
        .unwrap();
        if let Ok(path) = std::env::var("PDF_REPORT_SAMPLE") {
            std::fs::write(path, &pdf).unwrap();
        }
        let pages = pages_text(&pdf);
        let first = collapse(&pages[0]);
        assert!(
            first.contains("Summary") && first.contains("60 rows."),
            "{first}"
        );
        let sum: i64 = n.iter().sum();
        assert!(
            first.contains(&format!(" {sum} ")),
            "the sum {sum}: {first}"
        );
        assert!(first.contains("Page i"), "{first}");
        let all = collapse(&pages.join(" "));
        assert!(
            all.contains("sum of n by day") && all.contains("mean of n by team"),
            "{all}"
        );
        // The table follows, numbered from 1.
        let table = pages.iter().position(|p| p.contains("Page 1")).unwrap();
        assert!(table > 0 && pages[table].contains("2024-01-01"), "{all}");
        // Executive: no table pages.
        let mut options = options;
        options["audience"] = json!("executive");
        let pdf = format_pdf(options, batch.schema(), std::slice::from_ref(&batch)).unwrap();
        let all = collapse(&pages_text(&pdf).join(" "));
        assert!(!all.contains("Page 1"), "{all}");
        assert!(all.contains("60 rows."), "{all}");
        // The default audience draws the same document as no option.
        assert_eq!(
            format_pdf(
                json!({"audience": "table"}),
                batch.schema(),
                std::slice::from_ref(&batch)
            )
            .unwrap(),
            format_pdf(json!({}), batch.schema(), std::slice::from_ref(&batch)).unwrap()
        );
    }

    #[test]
    fn writes_a_pdf_with_embedded_subset_fonts() {
        let batch = text_columns(&[("a", vec![Some("hello")])]);
        let pdf = format_pdf(json!({}), batch.schema(), &[batch]).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
        let raw = String::from_utf8_lossy(&pdf);
        assert!(raw.contains("/FontFile2"), "the font is embedded");
        assert!(raw.contains("/ToUnicode"), "text maps back to Unicode");
        assert!(pdf.len() < 200_000, "fonts are subset: {} bytes", pdf.len());
    }

    #[test]
    fn text_comes_back_in_every_script_the_fonts_cover() {
        let values = [
            "Café näive façade",
            "Ελληνικά κείμενο",
            "Кириллица текст",
            "你好，世界",
            "日本語もOK",
            r#"<script>alert("x&y's")</script>"#,
            r"back\slash (paren) [bracket]",
            "007",
            "1.50",
            "=SUM(A1)",
        ];
        let batch = text_columns(&[("value", values.iter().map(|v| Some(*v)).collect())]);
        let title = r"Report (draft) \ <b>&'";
        let pdf = format_pdf(json!({ "title": title }), batch.schema(), &[batch]).unwrap();
        let pages = pages_text(&pdf);
        assert_eq!(pages.len(), 1);
        let text = collapse(&pages[0]);
        for value in values.iter().chain([&title]) {
            assert!(text.contains(&collapse(value)), "{value:?} not in {text}");
        }
        assert!(text.contains("Page 1"), "{text}");
    }

    #[test]
    fn text_comes_back_where_glyphs_do_not_spell_it() {
        // A combining mark shaped with its base, the base alone after it,
        // and characters no font has (drawn as empty boxes).
        let values = [
            "cafe\u{301} first",
            "then plain e",
            "party 🎉 time",
            "한국어",
        ];
        let batch = text_columns(&[("value", values.iter().map(|v| Some(*v)).collect())]);
        let pdf = format_pdf(json!({}), batch.schema(), &[batch]).unwrap();
        let text = collapse(&pages_text(&pdf)[0]);
        assert!(text.contains("then plain e"), "{text}");
        assert!(text.contains("first"), "{text}");
        assert!(text.contains('🎉'), "{text}");
        assert!(text.contains("한국어"), "{text}");
    }

    #[test]
    fn header_and_title_repeat_on_every_page() {
        let ids: Vec<String> = (0..500).map(|n| format!("row-{n:04}")).collect();
        let batch = text_columns(&[
            ("identifier", ids.iter().map(|s| Some(s.as_str())).collect()),
            ("other_column", vec![Some("x"); 500]),
        ]);
        let pdf = format_pdf(json!({ "title": "Long report" }), batch.schema(), &[batch]).unwrap();
        let pages = pages_text(&pdf);
        assert!(pages.len() >= 5, "{} pages", pages.len());
        for (n, page) in pages.iter().enumerate() {
            assert!(page.contains("Long report"), "page {}", n + 1);
            assert!(
                page.contains("identifier") && page.contains("other_column"),
                "page {}",
                n + 1
            );
            assert!(
                page.contains(&format!("Page {}", n + 1)),
                "page {}: {page}",
                n + 1
            );
        }
        let all = pages.concat();
        for id in &ids {
            assert_eq!(all.matches(id.as_str()).count(), 1, "{id} once");
        }
    }

    #[test]
    fn widths_come_from_the_first_rows_not_the_first_batch() {
        let stamp = "2024-05-06T18:00:00.123456+01:00";
        let batches: Vec<RecordBatch> = (0..10)
            .map(|n| {
                let id = if n % 3 == 2 { stamp } else { "1" };
                text_columns(&[("id", vec![Some(id)]), ("v", vec![Some("x")])])
            })
            .collect();
        let pdf = format_pdf(json!({}), batches[0].schema(), &batches).unwrap();
        let page = &pages_text(&pdf)[0];
        assert_eq!(page.matches(stamp).count(), 3, "whole, on one line: {page}");
    }

    #[test]
    fn long_cells_wrap_and_are_cut() {
        let long = "word ".repeat(5_000);
        let batch = text_columns(&[("a", vec![Some("short")]), ("b", vec![Some(&long)])]);
        let pdf = format_pdf(json!({ "max_cell_lines": 3 }), batch.schema(), &[batch]).unwrap();
        let pages = pages_text(&pdf);
        assert_eq!(pages.len(), 1);
        assert!(pages[0].contains('…'), "{}", pages[0]);
        let lines_with_word = pages[0].lines().filter(|l| l.contains("word")).count();
        assert_eq!(lines_with_word, 3, "{}", pages[0]);
    }

    #[test]
    fn nulls_numbers_and_empty_input() {
        let batch = RecordBatch::try_from_iter([
            (
                "i",
                Arc::new(Int64Array::from(vec![Some(-7), None])) as ArrayRef,
            ),
            (
                "f",
                Arc::new(Float64Array::from(vec![Some(1.5), None])) as ArrayRef,
            ),
        ])
        .unwrap();
        let pdf = format_pdf(json!({}), batch.schema(), &[batch]).unwrap();
        let text = collapse(&pages_text(&pdf)[0]);
        assert!(text.contains("i f -7 1.5"), "{text}");
        assert!(!text.contains("null"), "{text}");

        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        let pdf = format_pdf(json!({}), schema, &[]).unwrap();
        let pages = pages_text(&pdf);
        assert_eq!(pages.len(), 1);
        assert!(
            pages[0].contains("id") && pages[0].contains("No rows."),
            "{}",
            pages[0]
        );

        let pdf = format_pdf(json!({}), Arc::new(Schema::empty()), &[]).unwrap();
        assert!(pages_text(&pdf)[0].contains("No columns."));
    }

    #[test]
    fn page_size_and_orientation_set_the_media_box() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        for (options, width, height) in [
            (json!({}), 841.89, 595.28),
            (json!({ "orientation": "portrait" }), 595.28, 841.89),
            (json!({ "page_size": "letter" }), 792.0, 612.0),
            (
                json!({ "page_size": "letter", "orientation": "portrait" }),
                612.0,
                792.0,
            ),
        ] {
            let pdf = format_pdf(options.clone(), schema.clone(), &[]).unwrap();
            let raw = String::from_utf8_lossy(&pdf);
            let media_box = raw
                .split("/MediaBox [")
                .nth(1)
                .and_then(|rest| rest.split(']').next())
                .unwrap_or_else(|| panic!("no MediaBox for {options}"));
            let numbers: Vec<f64> = media_box
                .split_whitespace()
                .map(|n| n.parse().unwrap())
                .collect();
            assert!((numbers[2] - width).abs() < 0.1, "{options}: {media_box}");
            assert!((numbers[3] - height).abs() < 0.1, "{options}: {media_box}");
        }
    }

    #[test]
    fn invalid_options_are_refused() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        for (options, needle) in [
            (json!({ "font_size": 2 }), "font_size"),
            (json!({ "font_size": 100 }), "font_size"),
            (json!({ "max_cell_lines": 0 }), "max_cell_lines"),
            (
                json!({ "max_cell_lines": 200, "font_size": 24 }),
                "does not fit",
            ),
            (json!({ "page_size": "a3" }), "unknown variant"),
            (json!({ "orientation": "sideways" }), "unknown variant"),
            (json!({ "fontsize": 8 }), "unknown field"),
        ] {
            let err =
                match plugin().start_formatter("pdf", "{}", &options.to_string(), schema.clone()) {
                    Ok(_) => panic!("{options} was accepted"),
                    Err(err) => err,
                };
            assert_eq!(err.kind, ErrorKind::InvalidInput, "{options}");
            assert!(err.message.contains(needle), "{options}: {}", err.message);
        }
    }

    /// Runs a poppler or qpdf tool on `pdf`; fails (never skips) when it is missing.
    fn run_tool(tool: &str, args: &[&str], pdf: &[u8]) -> std::process::Output {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.pdf");
        std::fs::write(&path, pdf).unwrap();
        Command::new(tool)
            .args(args)
            .arg(&path)
            .output()
            .unwrap_or_else(|err| {
                panic!("{tool} must be installed (apt-get install poppler-utils qpdf): {err}")
            })
    }

    /// Batches of `rows` rows each of conversation-like text, some numbers
    /// and text in several scripts.
    fn report_batches(batches: usize, rows: usize) -> Vec<RecordBatch> {
        let texts = [
            "Plain English text, with punctuation: commas, \"quotes\" and 'apostrophes'.",
            "Ελληνικά κείμενο και Кириллица текст",
            "你好，世界！日本語のテキストも。",
            "مرحبا بالعالم",
            "שלום עולם",
            "Zalgo-ish: e\u{301} a\u{300} n\u{303}",
        ];
        (0..batches)
            .map(|b| {
                let ids: Vec<String> = (0..rows).map(|r| format!("id-{b:04}-{r:04}")).collect();
                let text: Vec<&str> = (0..rows).map(|r| texts[(b + r) % texts.len()]).collect();
                let numbers: Vec<i64> = (0..rows).map(|r| (b * rows + r) as i64 * 37).collect();
                RecordBatch::try_from_iter([
                    (
                        "id",
                        Arc::new(StringArray::from(
                            ids.iter().map(String::as_str).collect::<Vec<_>>(),
                        )) as ArrayRef,
                    ),
                    ("text", Arc::new(StringArray::from(text)) as ArrayRef),
                    ("n", Arc::new(Int64Array::from(numbers)) as ArrayRef),
                ])
                .unwrap()
            })
            .collect()
    }

    /// The writer's output after each batch, and after `finish`.
    fn sizes_while_writing(batches: &[RecordBatch]) -> (Vec<usize>, Vec<u8>) {
        let mut writer = plugin()
            .start_formatter("pdf", "{}", "{}", batches[0].schema())
            .unwrap();
        let mut out = Vec::new();
        let mut sizes = Vec::new();
        for batch in batches {
            writer.write(batch, &mut out).unwrap();
            sizes.push(out.len());
        }
        writer.finish(&mut out).unwrap();
        (sizes, out)
    }

    #[test]
    fn pages_stream_out_as_they_are_drawn() {
        // 8,000 rows; the first 1,000 (5 batches) set the column widths
        // before any page is laid out.
        let (sizes, pdf) = sizes_while_writing(&report_batches(40, 200));
        let header = document::HEADER;
        assert!(pdf.starts_with(header), "the header comes first");
        assert_eq!(sizes[0], header.len(), "the header goes out at once");
        let pages = pages_text(&pdf).len();
        assert!(pages >= 100, "{pages} pages");
        // Bytes go out batch after batch, not at the end: all but the last
        // few pages (drawn on the thread) are out before `finish`.
        let grew = sizes.windows(2).filter(|w| w[1] > w[0]).count();
        assert!(grew >= sizes.len() * 3 / 4, "grew {grew} times: {sizes:?}");
        let before = *sizes.last().unwrap();
        assert!(
            before * 10 >= pdf.len() * 7,
            "{before} of {} bytes before finish",
            pdf.len()
        );
        // What `finish` adds (fonts, page tree, xref) hardly grows with
        // pages; what goes out before it does.
        let (small_sizes, small) = sizes_while_writing(&report_batches(20, 200));
        let small_before = *small_sizes.last().unwrap();
        let tail = pdf.len() - before;
        let small_tail = small.len() - small_before;
        assert!(
            tail.abs_diff(small_tail) * 4 < before - small_before,
            "tails {small_tail} and {tail}, streamed {small_before} and {before}"
        );
    }

    #[test]
    fn the_pdf_is_structurally_valid() {
        let batches = report_batches(30, 40);
        let pdf = format_pdf(json!({ "title": "Valid" }), batches[0].schema(), &batches).unwrap();
        let pages = pages_text(&pdf);
        let info = run_tool("pdfinfo", &[], &pdf);
        let stdout = String::from_utf8_lossy(&info.stdout);
        let stderr = String::from_utf8_lossy(&info.stderr);
        assert!(info.status.success(), "pdfinfo failed: {stderr}");
        assert!(stderr.trim().is_empty(), "pdfinfo complains: {stderr}");
        let count: usize = stdout
            .lines()
            .find_map(|line| line.strip_prefix("Pages:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no page count: {stdout}"));
        assert_eq!(count, pages.len(), "{stdout}");
        assert!(pages[count - 1].contains(&format!("Page {count}")));
        assert!(
            stdout.contains("Title:") && stdout.contains("Valid"),
            "{stdout}"
        );
        assert!(stdout.contains("export-host pdf"), "{stdout}");
        // Every row came back once, on some page.
        let all = pages.concat();
        for batch in 0..30 {
            for row in 0..40 {
                let id = format!("id-{batch:04}-{row:04}");
                assert_eq!(all.matches(&id).count(), 1, "{id}");
            }
        }

        let check = run_tool("qpdf", &["--check"], &pdf);
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success(),
            "qpdf --check: {report}{}",
            String::from_utf8_lossy(&check.stderr)
        );
        assert!(
            report.contains("No syntax or stream encoding errors"),
            "{report}"
        );
        assert!(!report.contains("WARNING"), "{report}");
    }

    #[test]
    fn fonts_are_subset_to_the_glyphs_drawn() {
        let batches = report_batches(50, 100);
        let pdf = format_pdf(json!({}), batches[0].schema(), &batches).unwrap();
        // pdffonts: every font embedded, subset, with a Unicode map.
        let fonts = run_tool("pdffonts", &[], &pdf);
        let listing = String::from_utf8_lossy(&fonts.stdout);
        assert!(fonts.status.success(), "{listing}");
        let rows: Vec<&str> = listing.lines().skip(2).collect();
        assert_eq!(rows.len(), 3, "regular, bold and CJK: {listing}");
        for row in &rows {
            let columns: Vec<&str> = row.split_whitespace().collect();
            assert!(row.contains("CID TrueType"), "{row}");
            assert!(
                columns[0].len() > 7 && columns[0].as_bytes()[6] == b'+',
                "{row}"
            );
            let flags = &columns[columns.len() - 5..columns.len() - 2];
            assert_eq!(flags, ["yes", "yes", "yes"], "emb sub uni: {row}");
        }
        // The embedded programs (their unpacked sizes, /Length1) are a
        // small part of the source fonts.
        let raw = String::from_utf8_lossy(&pdf);
        let embedded: Vec<usize> = raw
            .split("/Length1 ")
            .skip(1)
            .map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().unwrap()
            })
            .collect();
        assert_eq!(embedded.len(), 3, "three font programs");
        let smallest_source = fonts::Face::ALL
            .iter()
            .map(|face| face.data().len())
            .min()
            .unwrap();
        for size in &embedded {
            assert!(
                size * 10 < smallest_source,
                "a {size}-byte font program: sources are {smallest_source} bytes and more"
            );
        }
        assert!(pdf.len() < 2_000_000, "{} bytes for 5,000 rows", pdf.len());
    }

    #[test]
    fn options_schema_declares_defaults_and_limits() {
        let schema = export_plugin_api::schemars::schema_for!(PdfOptions).to_value();
        assert_eq!(schema["additionalProperties"], json!(false));
        let properties = &schema["properties"];
        assert_eq!(properties["title"]["default"], json!("Export"));
        assert_eq!(properties["font_size"]["default"], json!(8.0));
        assert_eq!(properties["font_size"]["minimum"], json!(5.0));
        assert_eq!(properties["max_cell_lines"]["default"], json!(6));
        assert_eq!(properties["page_size"]["default"], json!("a4"));
        assert_eq!(properties["orientation"]["default"], json!("landscape"));
    }
}
