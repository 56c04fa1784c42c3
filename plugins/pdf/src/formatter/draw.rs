//! Drawing pages into PDF objects, on a thread of the export's own.
//!
//! The writer lays rows out into pages ([`PageContent`]) and sends each
//! finished page over a bounded channel to the drawing thread, whose
//! [`Painter`] turns it into a content stream (choosing glyphs, noting
//! which the fonts must keep) and sends it back; the writer's side
//! ([`Drawing`]) writes it and its page object to the output and keeps the
//! offsets. Deflating the stream, the biggest single cost, goes to
//! whichever side would otherwise wait: the thread deflates a page when no
//! next page is queued, the writer when one is. So layout and drawing
//! overlap with the work split about evenly, and at most [`IN_FLIGHT`]
//! pages are on their way. At `finish` the thread hands
//! back the glyphs it drew, and the writer's side writes the subset fonts,
//! the page tree and the cross-reference table.

use super::document::{deflate, PdfFile, HEADER};
use super::embed::GlyphSet;
use super::fonts::{Face, Fonts};
use super::options::{Orientation, PageSize, PdfOptions};
use super::shape::{Placed, Shaper};
use export_plugin_api::{PluginError, Result};
use pdf_writer::{Content, Filter, Name, Rect, Ref, Str, TextStr};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Lines a header cell may take.
pub(crate) const HEADER_LINES: usize = 3;

/// Pages sent to the drawing thread whose bytes have not come back yet,
/// at most (after that, `write` waits for the oldest).
const IN_FLIGHT: usize = 3;

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

/// A page whose body is not table rows (the report's summary and charts):
/// it paints its own shapes and text, and the painter adds the title and
/// page label around it. A trait, so the drawing core knows nothing of what
/// such a page shows.
pub(crate) trait PaintBody: Send {
    fn paint(&self, painter: &mut Painter, canvas: &mut Canvas);
}

/// One page, ready to draw.
pub(crate) struct PageContent {
    pub(crate) number: usize,
    /// A report page (summary and charts) instead of table rows.
    pub(crate) insights: Option<Box<dyn PaintBody>>,
    /// The page's label at the foot instead of its number (`Page i` for
    /// report pages, which come first though they are drawn last).
    pub(crate) label: Option<String>,
    /// Whether the page goes before the table's pages in the page tree.
    pub(crate) front: bool,
    pub(crate) columns: Arc<Columns>,
    pub(crate) rows: Vec<LaidRow>,
    /// A line under the header when there are no rows (`No rows.`).
    pub(crate) note: Option<&'static str>,
}

pub(crate) type Color = (u8, u8, u8);
pub(crate) const INK: Color = (31, 35, 40);
pub(crate) const MUTED: Color = (87, 96, 106);
const HEADER_FILL: Color = (230, 234, 239);
const STRIPE_FILL: Color = (246, 248, 250);
pub(crate) const RULE_LIGHT: Color = (216, 222, 228);
pub(crate) const RULE_STRONG: Color = (140, 149, 159);

/// The resource names of the faces' fonts, by [`Face::index`].
const FONT_NAMES: [&[u8]; 3] = [b"F0", b"F1", b"F2"];

/// Draws pages into content streams, noting the glyphs they use.
pub(crate) struct Painter {
    pub(crate) fonts: Fonts,
    shaper: Shaper,
    /// The glyphs drawn so far, by [`Face::index`].
    glyphs: [GlyphSet; 3],
    pub(crate) frame: PageFrame,
    /// Reused for each run: its glyphs, their CIDs and their bytes.
    placed: Vec<Placed>,
    cids: Vec<u16>,
    bytes: Vec<u8>,
}

/// The drawing state within one page's content stream.
pub(crate) struct Canvas {
    pub(crate) content: Content,
    pub(crate) page_height: f32,
    fill: Option<Color>,
    font: Option<(Face, f32)>,
    /// Which faces the page used, by [`Face::index`].
    used: [bool; 3],
}

impl Canvas {
    pub(crate) fn set_fill(&mut self, color: Color) {
        if self.fill != Some(color) {
            let (r, g, b) = color;
            self.content.set_fill_rgb(
                f32::from(r) / 255.0,
                f32::from(g) / 255.0,
                f32::from(b) / 255.0,
            );
            self.fill = Some(color);
        }
    }

    /// A filled rectangle with its top left at (`x`, `y`), y downwards.
    pub(crate) fn fill_rect(&mut self, x: f32, y: f32, w: f32, h: f32, color: Color) {
        if w <= 0.0 || h <= 0.0 {
            return;
        }
        self.set_fill(color);
        self.content
            .rect(x, self.page_height - y - h, w, h)
            .fill_nonzero();
    }
}

impl Painter {
    pub(crate) fn new(frame: PageFrame) -> Result<Painter> {
        let fonts = Fonts::load()?;
        let glyphs = Face::ALL.map(|face| GlyphSet::new(&fonts, face));
        Ok(Painter {
            shaper: Shaper::new()?,
            glyphs,
            fonts,
            frame,
            placed: Vec::new(),
            cids: Vec::new(),
            bytes: Vec::new(),
        })
    }

    /// Draws one page: its content stream, uncompressed, and the faces it uses.
    pub(crate) fn page(&mut self, content: &PageContent) -> Drawn {
        let g = self.frame.geometry;
        let columns = &content.columns;
        let mut canvas = Canvas {
            content: Content::with_capacity(16 << 10),
            page_height: g.height,
            fill: None,
            font: None,
            used: [false; 3],
        };

        if let Some(body) = &content.insights {
            body.paint(self, &mut canvas);
            canvas.content.begin_text();
            canvas.set_fill(INK);
            self.frame_text(&mut canvas, content);
            canvas.content.end_text();
            return Drawn::Page {
                content: canvas.content.finish().into_vec(),
                deflated: false,
                used: canvas.used,
                front: content.front,
            };
        }

        // Shapes first (the header band, stripes and rules), then the text
        // over them, in one text object.
        let mut y = g.body_top();
        if !columns.widths.is_empty() {
            canvas.fill_rect(
                g.margin,
                y,
                g.content_width(),
                columns.header.height,
                HEADER_FILL,
            );
            y += columns.header.height;
            rule(&mut canvas, &g, y, RULE_STRONG);
        }
        for (index, row) in content.rows.iter().enumerate() {
            if index % 2 == 1 {
                canvas.fill_rect(g.margin, y, g.content_width(), row.height, STRIPE_FILL);
            }
            y += row.height;
            rule(&mut canvas, &g, y, RULE_LIGHT);
        }

        canvas.content.begin_text();
        canvas.set_fill(INK);
        let ascent = self.fonts.ascent;
        let title = std::mem::take(&mut self.frame.title);
        self.line(
            &mut canvas,
            &title,
            true,
            g.margin,
            g.margin + g.title_size * ascent,
            g.title_size,
        );
        self.frame.title = title;
        let mut y = g.body_top();
        if !columns.widths.is_empty() {
            self.row(&mut canvas, columns, &columns.header, false, y, true);
            y += columns.header.height;
        }
        for row in &content.rows {
            self.row(&mut canvas, columns, row, true, y, false);
            y += row.height;
        }
        canvas.set_fill(MUTED);
        if let Some(note) = content.note {
            let baseline = y + g.padding_y + g.font_size * ascent;
            self.line(
                &mut canvas,
                note,
                false,
                g.margin + g.padding_x,
                baseline,
                g.font_size,
            );
        }
        self.page_number(&mut canvas, content);
        canvas.content.end_text();

        Drawn::Page {
            content: canvas.content.finish().into_vec(),
            deflated: false,
            used: canvas.used,
            front: content.front,
        }
    }

    /// The title and the page label, inside a text object.
    fn frame_text(&mut self, canvas: &mut Canvas, content: &PageContent) {
        let g = self.frame.geometry;
        let ascent = self.fonts.ascent;
        let title = std::mem::take(&mut self.frame.title);
        self.line(
            canvas,
            &title,
            true,
            g.margin,
            g.margin + g.title_size * ascent,
            g.title_size,
        );
        self.frame.title = title;
        canvas.set_fill(MUTED);
        self.page_number(canvas, content);
    }

    /// The page number (or label), centred at the foot, inside a text object.
    fn page_number(&mut self, canvas: &mut Canvas, content: &PageContent) {
        let g = self.frame.geometry;
        let ascent = self.fonts.ascent;
        let label = content
            .label
            .clone()
            .unwrap_or_else(|| format!("Page {}", content.number));
        let size = g.font_size * 0.9;
        let width = self.fonts.width(&label, false) * size;
        let baseline = g.height - g.margin - size * (1.0 - ascent);
        self.line(
            canvas,
            &label,
            false,
            (g.width - width) / 2.0,
            baseline,
            size,
        );
    }

    /// The glyphs drawn, for the fonts.
    pub(crate) fn finish(self) -> Drawn {
        Drawn::Glyphs(Box::new(self.glyphs))
    }

    /// Draws the cells of `row` with its top at `top`.
    fn row(
        &mut self,
        canvas: &mut Canvas,
        columns: &Columns,
        row: &LaidRow,
        align_numbers: bool,
        top: f32,
        bold: bool,
    ) {
        let g = self.frame.geometry;
        for (column, lines) in row.cells.iter().enumerate() {
            let left = g.margin + columns.x[column] + g.padding_x;
            let inner = columns.widths[column] - 2.0 * g.padding_x;
            let right_aligned =
                align_numbers && self.frame.numeric.get(column).copied().unwrap_or(false);
            for (n, line) in lines.iter().enumerate() {
                if line.is_empty() {
                    continue;
                }
                let baseline =
                    top + g.padding_y + n as f32 * g.line_height + g.font_size * self.fonts.ascent;
                let x = if right_aligned {
                    left + (inner - self.fonts.width(line, bold) * g.font_size).max(0.0)
                } else {
                    left
                };
                self.line(canvas, line, bold, x, baseline, g.font_size);
            }
        }
    }

    /// Draws one line of text with its baseline at (`x`, `baseline`), each
    /// run in the face that covers it. Inside a text object.
    pub(crate) fn line(
        &mut self,
        canvas: &mut Canvas,
        text: &str,
        bold: bool,
        x: f32,
        baseline: f32,
        size: f32,
    ) {
        let mut x = x;
        let y = canvas.page_height - baseline;
        for run in self.fonts.runs(text, bold) {
            if !run.text.trim().is_empty() {
                let face = run.face;
                self.shaper.place(
                    &mut self.fonts,
                    face,
                    bold,
                    run.text,
                    run.rtl,
                    &mut self.placed,
                );
                let set = &mut self.glyphs[face.index()];
                canvas.used[face.index()] = true;
                if canvas.font != Some((face, size)) {
                    canvas
                        .content
                        .set_font(Name(FONT_NAMES[face.index()]), size);
                    canvas.font = Some((face, size));
                }
                canvas.content.set_text_matrix([1.0, 0.0, 0.0, 1.0, x, y]);
                self.cids.clear();
                for glyph in &self.placed {
                    let cid = set.cid(&self.fonts, glyph.id, &run.text[glyph.text.clone()]);
                    self.cids.push(cid);
                }
                show_glyphs(
                    canvas,
                    set,
                    run.text,
                    &self.placed,
                    &self.cids,
                    size,
                    &mut self.bytes,
                );
            }
            x += run.width * size;
        }
    }
}

/// Shows the glyphs of a run (`placed`, whose CIDs are `cids`) from the
/// current text position.
///
/// Where the glyphs of a cluster do not spell its text through the
/// ToUnicode map (`.notdef` boxes for characters no font has, a glyph
/// first drawn for other text), they are wrapped in a span whose
/// `ActualText` is the text, so it is still extracted.
fn show_glyphs(
    canvas: &mut Canvas,
    set: &GlyphSet,
    text: &str,
    placed: &[Placed],
    cids: &[u16],
    size: f32,
    bytes: &mut Vec<u8>,
) {
    // Whether each glyph's cluster spells its text (a cluster is its first
    // glyph, which holds the text, and the glyphs after it with none).
    let mut faithful = vec![true; placed.len()];
    let mut start = 0;
    while start < placed.len() {
        let end = placed[start + 1..]
            .iter()
            .position(|g| !g.text.is_empty())
            .map_or(placed.len(), |n| start + 1 + n);
        let wanted = text.get(placed[start].text.clone()).unwrap_or("");
        let mut spelled = String::new();
        let simple = end == start + 1 && set.text(cids[start]) == wanted;
        if !simple {
            for cid in &cids[start..end] {
                spelled.push_str(set.text(*cid));
            }
        }
        if !simple && spelled != wanted {
            faithful[start..end].fill(false);
        }
        start = end;
    }

    let mut rise = 0.0;
    let mut start = 0;
    while start < placed.len() {
        let end = faithful[start..]
            .iter()
            .position(|f| *f != faithful[start])
            .map_or(placed.len(), |n| start + n);
        let span = !faithful[start];
        if span {
            // The text of the span's glyphs, in reading (logical) order.
            let mut ranges: Vec<_> = placed[start..end].iter().map(|g| g.text.clone()).collect();
            ranges.sort_by_key(|range| range.start);
            let actual: String = ranges
                .into_iter()
                .map(|range| text.get(range).unwrap_or(""))
                .collect();
            canvas
                .content
                .begin_marked_content_with_properties(Name(b"Span"))
                .properties()
                .actual_text(TextStr(&actual));
        }
        // Within it, runs of glyphs on one baseline (marks may sit off it).
        let mut from = start;
        while from < end {
            let y_offset = placed[from].y_offset;
            let to = placed[from..end]
                .iter()
                .position(|g| g.y_offset != y_offset)
                .map_or(end, |n| from + n);
            if y_offset * size != rise {
                rise = y_offset * size;
                canvas.content.set_rise(rise);
            }
            show_string(canvas, set, &placed[from..to], &cids[from..to], bytes);
            from = to;
        }
        if span {
            canvas.content.end_marked_content();
        }
        start = end;
    }
    if rise != 0.0 {
        canvas.content.set_rise(0.0);
    }
}

/// One `Tj` string when each glyph advances by its own width; else a `TJ`
/// array with the adjustments that give each its shaped offset and advance.
fn show_string(
    canvas: &mut Canvas,
    set: &GlyphSet,
    placed: &[Placed],
    cids: &[u16],
    bytes: &mut Vec<u8>,
) {
    let adjustments = |glyph: &Placed, cid: u16| {
        let before = -glyph.x_offset * 1000.0;
        let after = -(glyph.advance * 1000.0 - set.width(cid)) + glyph.x_offset * 1000.0;
        (before, after)
    };
    let positioned = placed.iter().zip(cids).any(|(glyph, cid)| {
        let (before, after) = adjustments(glyph, *cid);
        before.abs() > 0.01 || after.abs() > 0.01
    });
    bytes.clear();
    if !positioned {
        for cid in cids {
            bytes.extend_from_slice(&cid.to_be_bytes());
        }
        canvas.content.show(Str(bytes));
        return;
    }
    let mut show = canvas.content.show_positioned();
    let mut items = show.items();
    for (glyph, cid) in placed.iter().zip(cids) {
        let (before, after) = adjustments(glyph, *cid);
        if before.abs() > 0.01 {
            if !bytes.is_empty() {
                items.show(Str(bytes));
                bytes.clear();
            }
            items.adjust(before);
        }
        bytes.extend_from_slice(&cid.to_be_bytes());
        if after.abs() > 0.01 {
            items.show(Str(bytes));
            bytes.clear();
            items.adjust(after);
        }
    }
    if !bytes.is_empty() {
        items.show(Str(bytes));
    }
}

/// A horizontal rule across the table at `y`.
fn rule(canvas: &mut Canvas, g: &Geometry, y: f32, color: Color) {
    canvas.fill_rect(g.margin, y - 0.25, g.content_width(), 0.5, color);
}

/// What the drawing thread sends back.
pub(crate) enum Drawn {
    /// A page's content stream, deflated or not yet, and the faces it
    /// uses, by [`Face::index`].
    Page {
        content: Vec<u8>,
        deflated: bool,
        used: [bool; 3],
        /// Goes before the table's pages.
        front: bool,
    },
    /// At the end: the glyphs drawn, by [`Face::index`].
    Glyphs(Box<[GlyphSet; 3]>),
}

impl Drawn {
    /// The same, with the page's content deflated.
    fn deflate(self) -> Result<Drawn> {
        match self {
            Drawn::Page {
                content,
                deflated: false,
                used,
                front,
            } => Ok(Drawn::Page {
                content: deflate(&content)?,
                deflated: true,
                used,
                front,
            }),
            other => Ok(other),
        }
    }
}

/// The drawing thread of one export, and the file its pages go to.
pub(crate) struct Drawing {
    pages: Option<SyncSender<PageContent>>,
    /// Each page's content, then the glyphs, in order.
    done: Receiver<Result<Drawn>>,
    thread: Option<JoinHandle<()>>,
    /// Pages sent whose content has not been received.
    in_flight: usize,
    file: PdfFile,
    media_box: Rect,
    /// Each face's Type 0 font, once a page uses it, by [`Face::index`].
    fonts: [Option<Ref>; 3],
    metadata_title: String,
}

impl Drawing {
    /// Starts the thread; `metadata_title` goes into the document's properties.
    pub(crate) fn start(frame: PageFrame, metadata_title: String) -> Result<Drawing> {
        let g = frame.geometry;
        let (pages, receiver) = sync_channel::<PageContent>(IN_FLIGHT);
        let (sender, done) = channel();
        let thread = std::thread::Builder::new()
            .name("export-pdf".to_owned())
            .spawn(move || {
                let mut painter = match Painter::new(frame) {
                    Ok(painter) => painter,
                    Err(err) => {
                        let _ = sender.send(Err(err));
                        return;
                    }
                };
                let mut pending = receiver.recv().ok();
                while let Some(page) = pending.take() {
                    let drawn = painter.page(&page);
                    drop(page);
                    // Deflating is shared: the next page waiting means the
                    // writer is ahead, so it deflates this one; none waiting,
                    // this thread would idle, so it deflates it here.
                    let (drawn, next) = match receiver.try_recv() {
                        Ok(next) => (Ok(drawn), Some(next)),
                        Err(_) => (drawn.deflate(), None),
                    };
                    if sender.send(drawn).is_err() {
                        return;
                    }
                    pending = next.or_else(|| receiver.recv().ok());
                }
                let _ = sender.send(Ok(painter.finish()));
            })
            .map_err(|err| {
                PluginError::internal(format!("starting the PDF thread failed: {err}"))
            })?;
        Ok(Drawing {
            pages: Some(pages),
            done,
            thread: Some(thread),
            in_flight: 0,
            file: PdfFile::new(),
            media_box: Rect::new(0.0, 0.0, g.width, g.height),
            fonts: [None; 3],
            metadata_title,
        })
    }

    /// The first bytes of the file, written before any page.
    pub(crate) fn header() -> &'static [u8] {
        HEADER
    }

    /// Hands a page to the thread, then appends to `out` the pages drawn
    /// meanwhile (waiting while more than [`IN_FLIGHT`] are on their way).
    pub(crate) fn send(&mut self, page: PageContent, out: &mut Vec<u8>) -> Result<()> {
        let sent = self
            .pages
            .as_ref()
            .is_some_and(|pages| pages.send(page).is_ok());
        if !sent {
            return Err(self.stopped());
        }
        self.in_flight += 1;
        self.collect(out, IN_FLIGHT)
    }

    /// Appends to `out` the pages drawn so far, without waiting.
    pub(crate) fn drain(&mut self, out: &mut Vec<u8>) -> Result<()> {
        self.collect(out, IN_FLIGHT)
    }

    /// Appends to `out` the pages drawn so far, waiting until at most
    /// `waiting` pages are still on their way.
    fn collect(&mut self, out: &mut Vec<u8>, waiting: usize) -> Result<()> {
        while self.in_flight > 0 {
            let received = if self.in_flight > waiting {
                self.done.recv().map_err(|_| TryRecvError::Disconnected)
            } else {
                self.done.try_recv()
            };
            match received {
                Ok(Ok(Drawn::Page {
                    content,
                    deflated,
                    used,
                    front,
                })) => {
                    self.in_flight -= 1;
                    let stream = if deflated {
                        content
                    } else {
                        deflate(&content)?
                    };
                    self.write_page(&stream, used, front, out)?;
                }
                Ok(Ok(Drawn::Glyphs(_))) => {
                    return Err(PluginError::internal(
                        "the PDF thread ended before its last page",
                    ))
                }
                Ok(Err(err)) => return Err(err),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err(self.stopped()),
            }
        }
        Ok(())
    }

    /// Appends a page's content stream (deflated) and page object to `out`.
    fn write_page(
        &mut self,
        stream: &[u8],
        used: [bool; 3],
        front: bool,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let stream_ref = self.file.alloc();
        let page_ref = self.file.alloc();
        self.file
            .object(stream_ref)
            .stream(stream_ref, stream)
            .filter(Filter::FlateDecode);
        let mut fonts = [None; 3];
        for face in Face::ALL {
            let i = face.index();
            if used[i] {
                let file = &mut self.file;
                fonts[i] = Some(*self.fonts[i].get_or_insert_with(|| file.alloc()));
            }
        }
        let tree = self.file.page_tree();
        let mut page = self.file.object(page_ref).page(page_ref);
        page.parent(tree)
            .media_box(self.media_box)
            .contents(stream_ref);
        let mut resources = page.resources();
        let mut dict = resources.fonts();
        for face in Face::ALL {
            if let Some(font) = fonts[face.index()] {
                dict.pair(Name(FONT_NAMES[face.index()]), font);
            }
        }
        drop(dict);
        drop(resources);
        drop(page);
        if front {
            self.file.add_front_page(page_ref);
        } else {
            self.file.add_page(page_ref);
        }
        out.extend_from_slice(&self.file.take());
        Ok(())
    }

    /// Appends the last pages, the subset fonts (`fonts` reads their
    /// metrics) and the closing objects to `out`.
    pub(crate) fn finish(&mut self, fonts: &Fonts, out: &mut Vec<u8>) -> Result<()> {
        self.pages = None;
        self.collect(out, 0)?;
        let glyphs = match self.done.recv() {
            Ok(Ok(Drawn::Glyphs(glyphs))) => glyphs,
            Ok(Err(err)) => return Err(err),
            Ok(Ok(Drawn::Page { .. })) | Err(_) => return Err(self.stopped()),
        };
        self.join()?;
        for face in Face::ALL {
            if let Some(font) = self.fonts[face.index()] {
                glyphs[face.index()].write(fonts, &mut self.file, font)?;
            }
        }
        let file = std::mem::replace(&mut self.file, PdfFile::new());
        out.extend_from_slice(&file.finish(&self.metadata_title)?);
        Ok(())
    }

    /// Why the thread stopped before it was done: its panic, or its error.
    fn stopped(&mut self) -> PluginError {
        self.pages = None;
        while let Ok(result) = self.done.try_recv() {
            if let Err(err) = result {
                return err;
            }
        }
        self.join()
            .err()
            .unwrap_or_else(|| PluginError::internal("the PDF thread stopped before the last page"))
    }

    fn join(&mut self) -> Result<()> {
        let thread = self
            .thread
            .take()
            .ok_or_else(|| PluginError::internal("the PDF was already finished"))?;
        thread.join().map_err(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            PluginError::internal(format!("drawing the PDF panicked: {message}"))
        })
    }
}
