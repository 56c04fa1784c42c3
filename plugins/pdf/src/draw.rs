//! Drawing pages with krilla, on a thread of the export's own.
//!
//! krilla's `Document` is not `Send` (it shares font state through `Rc`),
//! while a formatter's writer must be. So each export starts one drawing
//! thread that owns the document: the writer lays rows out into pages and
//! sends each finished page over a bounded channel; `finish` closes the
//! channel and takes the PDF bytes from the thread. Two pages at most wait
//! in the channel.

use crate::fonts::Fonts;
use crate::formatter::{Orientation, PageSize, PdfOptions};
use export_plugin_api::{PluginError, Result};
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule};
use krilla::surface::Surface;
use krilla::text::TextDirection;
use krilla::{Document, SerializeSettings};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Lines a header cell may take.
pub(crate) const HEADER_LINES: usize = 3;

/// Sizes and positions on the page, in points (y grows downwards).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) width: f32,
    pub(crate) height: f32,
    pub(crate) margin: f32,
    pub(crate) font_size: f32,
    pub(crate) title_size: f32,
    pub(crate) line_height: f32,
    pub(crate) padding_x: f32,
    pub(crate) padding_y: f32,
}

impl Geometry {
    pub(crate) fn new(options: &PdfOptions) -> Geometry {
        let (short, long) = match options.page_size {
            PageSize::A4 => (595.28, 841.89),
            PageSize::Letter => (612.0, 792.0),
        };
        let (width, height) = match options.orientation {
            Orientation::Portrait => (short, long),
            Orientation::Landscape => (long, short),
        };
        let font_size = options.font_size as f32;
        Geometry {
            width,
            height,
            margin: 36.0,
            font_size,
            title_size: font_size * 1.5,
            line_height: font_size * 1.25,
            padding_x: font_size * 0.4,
            padding_y: font_size * 0.3,
        }
    }
    pub(crate) fn content_width(&self) -> f32 {
        self.width - 2.0 * self.margin
    }
    /// Where the table starts: below the title.
    pub(crate) fn body_top(&self) -> f32 {
        self.margin + self.title_size * 1.25 + self.font_size * 0.8
    }
    /// Where the table must end: above the page number.
    pub(crate) fn body_bottom(&self) -> f32 {
        self.height - self.margin - self.line_height * 1.5
    }
    pub(crate) fn row_height(&self, lines: usize) -> f32 {
        lines as f32 * self.line_height + 2.0 * self.padding_y
    }
}

/// A row wrapped into its columns, waiting for its page.
pub(crate) struct LaidRow {
    /// Per column, the lines of the cell.
    pub(crate) cells: Vec<Vec<String>>,
    pub(crate) height: f32,
}

/// Column widths and the header laid out in them, fixed at the first batch.
pub(crate) struct Columns {
    /// Left edge of each column, from the left margin.
    pub(crate) x: Vec<f32>,
    pub(crate) widths: Vec<f32>,
    pub(crate) header: LaidRow,
}

/// What every page shows besides its rows.
pub(crate) struct PageFrame {
    pub(crate) geometry: Geometry,
    /// The title, cut to one line.
    pub(crate) title: String,
    /// Which columns are aligned right.
    pub(crate) numeric: Vec<bool>,
}

/// One page, ready to draw.
pub(crate) struct PageContent {
    pub(crate) number: usize,
    pub(crate) columns: Arc<Columns>,
    pub(crate) rows: Vec<LaidRow>,
    /// A line under the header when there are no rows (`No rows.`).
    pub(crate) note: Option<&'static str>,
}

/// The drawing thread of one export.
pub(crate) struct Drawing {
    pages: Option<SyncSender<PageContent>>,
    thread: Option<JoinHandle<Result<Vec<u8>>>>,
}

impl Drawing {
    /// Starts the thread; `metadata_title` goes into the document's properties.
    pub(crate) fn start(frame: PageFrame, metadata_title: String) -> Result<Drawing> {
        let (pages, receiver) = sync_channel(2);
        let thread = std::thread::Builder::new()
            .name("export-pdf".to_owned())
            .spawn(move || draw_document(frame, metadata_title, receiver))
            .map_err(|err| {
                PluginError::internal(format!("starting the PDF thread failed: {err}"))
            })?;
        Ok(Drawing {
            pages: Some(pages),
            thread: Some(thread),
        })
    }

    /// Hands a page to the thread (waits while two are queued).
    pub(crate) fn send(&mut self, page: PageContent) -> Result<()> {
        let sent = self
            .pages
            .as_ref()
            .is_some_and(|pages| pages.send(page).is_ok());
        if sent {
            Ok(())
        } else {
            // The thread ended early: its result says why.
            Err(self.join().err().unwrap_or_else(|| {
                PluginError::internal("the PDF thread stopped before the last page")
            }))
        }
    }

    /// Closes the document and returns the PDF.
    pub(crate) fn finish(&mut self) -> Result<Vec<u8>> {
        self.join()
    }

    fn join(&mut self) -> Result<Vec<u8>> {
        self.pages = None;
        let thread = self
            .thread
            .take()
            .ok_or_else(|| PluginError::internal("the PDF was already finished"))?;
        match thread.join() {
            Ok(result) => result,
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Err(PluginError::internal(format!(
                    "drawing the PDF panicked: {message}"
                )))
            }
        }
    }
}

/// The thread's work: every page received, then the whole document.
fn draw_document(
    frame: PageFrame,
    metadata_title: String,
    pages: Receiver<PageContent>,
) -> Result<Vec<u8>> {
    let mut fonts = Fonts::load()?;
    let mut document = Document::new_with(SerializeSettings::default());
    document.set_metadata(
        Metadata::new()
            .title(metadata_title)
            .creator("export-host pdf".to_owned()),
    );
    let g = frame.geometry;
    let settings = PageSettings::from_wh(g.width, g.height)
        .ok_or_else(|| PluginError::internal("invalid page size"))?;
    for content in pages {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        draw_page(&mut surface, &mut fonts, &frame, &content);
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|err| PluginError::internal(format!("writing the PDF failed: {err:?}")))
}

/// Draws the title, the header, the rows and the page number.
fn draw_page(
    surface: &mut Surface<'_>,
    fonts: &mut Fonts,
    frame: &PageFrame,
    content: &PageContent,
) {
    let g = frame.geometry;
    let columns = &content.columns;
    set_fill(surface, INK);
    draw_line(
        surface,
        fonts,
        &frame.title,
        true,
        g.margin,
        g.margin + g.title_size * fonts.ascent,
        g.title_size,
    );

    let mut y = g.body_top();
    if !columns.widths.is_empty() {
        // The header row, on a tinted band.
        fill_rect(
            surface,
            g.margin,
            y,
            g.content_width(),
            columns.header.height,
            HEADER_FILL,
        );
        set_fill(surface, INK);
        draw_row(surface, fonts, &g, columns, &columns.header, &[], y, true);
        y += columns.header.height;
        rule(surface, &g, y, RULE_STRONG);
    }
    for (index, row) in content.rows.iter().enumerate() {
        if index % 2 == 1 {
            fill_rect(
                surface,
                g.margin,
                y,
                g.content_width(),
                row.height,
                STRIPE_FILL,
            );
        }
        set_fill(surface, INK);
        draw_row(surface, fonts, &g, columns, row, &frame.numeric, y, false);
        y += row.height;
        rule(surface, &g, y, RULE_LIGHT);
    }
    if let Some(note) = content.note {
        set_fill(surface, MUTED);
        let baseline = y + g.padding_y + g.font_size * fonts.ascent;
        draw_line(
            surface,
            fonts,
            note,
            false,
            g.margin + g.padding_x,
            baseline,
            g.font_size,
        );
    }

    // The page number, centred at the foot.
    set_fill(surface, MUTED);
    let label = format!("Page {}", content.number);
    let size = g.font_size * 0.9;
    let width = fonts.width(&label, false) * size;
    let baseline = g.height - g.margin - size * (1.0 - fonts.ascent);
    draw_line(
        surface,
        fonts,
        &label,
        false,
        (g.width - width) / 2.0,
        baseline,
        size,
    );
}

type Color = (u8, u8, u8);
const INK: Color = (31, 35, 40);
const MUTED: Color = (87, 96, 106);
const HEADER_FILL: Color = (230, 234, 239);
const STRIPE_FILL: Color = (246, 248, 250);
const RULE_LIGHT: Color = (216, 222, 228);
const RULE_STRONG: Color = (140, 149, 159);

fn set_fill(surface: &mut Surface<'_>, (r, g, b): Color) {
    surface.set_fill(Some(Fill {
        paint: rgb::Color::new(r, g, b).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }));
}

fn fill_rect(surface: &mut Surface<'_>, x: f32, y: f32, w: f32, h: f32, color: Color) {
    let Some(rect) = Rect::from_xywh(x, y, w, h) else {
        return;
    };
    let mut builder = PathBuilder::new();
    builder.push_rect(rect);
    if let Some(path) = builder.finish() {
        set_fill(surface, color);
        surface.draw_path(&path);
    }
}

/// A horizontal rule across the table at `y`.
fn rule(surface: &mut Surface<'_>, g: &Geometry, y: f32, color: Color) {
    fill_rect(surface, g.margin, y - 0.25, g.content_width(), 0.5, color);
}

/// Draws one line of text with its baseline at (`x`, `baseline`), each run
/// in the face that covers it.
fn draw_line(
    surface: &mut Surface<'_>,
    fonts: &mut Fonts,
    text: &str,
    bold: bool,
    x: f32,
    baseline: f32,
    size: f32,
) {
    let mut x = x;
    for run in fonts.runs(text, bold) {
        if !run.text.trim().is_empty() {
            let direction = if run.rtl {
                TextDirection::RightToLeft
            } else {
                TextDirection::LeftToRight
            };
            surface.draw_text(
                Point::from_xy(x, baseline),
                fonts.pdf(run.face),
                size,
                run.text,
                false,
                direction,
            );
        }
        x += run.width * size;
    }
}

/// Draws the cells of `row` with its top at `top`.
#[allow(clippy::too_many_arguments)]
fn draw_row(
    surface: &mut Surface<'_>,
    fonts: &mut Fonts,
    g: &Geometry,
    columns: &Columns,
    row: &LaidRow,
    numeric: &[bool],
    top: f32,
    bold: bool,
) {
    for (column, lines) in row.cells.iter().enumerate() {
        let left = g.margin + columns.x[column] + g.padding_x;
        let inner = columns.widths[column] - 2.0 * g.padding_x;
        let right_aligned = numeric.get(column).copied().unwrap_or(false);
        for (n, line) in lines.iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            let baseline =
                top + g.padding_y + n as f32 * g.line_height + g.font_size * fonts.ascent;
            let x = if right_aligned {
                left + (inner - fonts.width(line, bold) * g.font_size).max(0.0)
            } else {
                left
            };
            draw_line(surface, fonts, line, bold, x, baseline, g.font_size);
        }
    }
}
