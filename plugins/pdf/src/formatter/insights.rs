//! The summary and charts of a report as PDF pages: laid out into pages by
//! the writer ([`paginate`]), drawn as vector shapes and real text by the
//! drawing thread ([`Painter::insights_page`]).

use super::draw::{
    Canvas, Color, Geometry, PaintBody, Painter, INK, MUTED, RULE_LIGHT, RULE_STRONG,
};
use super::fonts::Fonts;
use super::layout::{clean, wrap};
use export_plugin_api::report::{Chart, ChartKind, Report, COLORS, DASHES, SUMMARY_HEADERS};
use std::sync::Arc;

/// Share of the width each summary column gets (the name first).
const SUMMARY_SHARES: [f32; 7] = [0.28, 0.09, 0.13, 0.13, 0.13, 0.12, 0.12];
const HEADER_FILL: Color = (230, 234, 239);
const GRID: Color = (216, 222, 228);
const STRIPE: Color = (246, 248, 250);

/// Something on a report page, with its top (points from the page top).
pub(crate) enum Block {
    /// A heading line, bold.
    Heading(String),
    /// A line of text.
    Text(String),
    /// A row of the summary table (cut to fit), the header when `header`.
    SummaryRow { cells: Vec<String>, header: bool },
    /// A chart filling the content width.
    Chart { chart: Arc<Chart>, height: f32 },
}

/// One report page, ready to draw.
pub(crate) struct InsightsPage {
    /// Blocks and their tops.
    pub(crate) blocks: Vec<(f32, Block)>,
}

impl Block {
    fn height(&self, g: &Geometry) -> f32 {
        match self {
            Block::Heading(_) => g.title_size * 1.9,
            Block::Text(_) => g.line_height * 1.4,
            Block::SummaryRow { .. } => g.row_height(1),
            Block::Chart { height, .. } => *height,
        }
    }
}

/// Lays the summary and the charts out into pages.
pub(crate) fn paginate(report: &Report, g: &Geometry, fonts: &mut Fonts) -> Vec<InsightsPage> {
    let mut blocks = vec![
        Block::Heading("Summary".into()),
        Block::Text(format!(
            "{} row{}.",
            report.summary.row_count,
            if report.summary.row_count == 1 {
                ""
            } else {
                "s"
            }
        )),
    ];
    let widths: Vec<f32> = SUMMARY_SHARES
        .iter()
        .map(|share| share * g.content_width())
        .collect();
    let fit = |fonts: &mut Fonts, text: &str, width: f32, bold: bool| -> String {
        let room = ((width - 2.0 * g.padding_x) / g.font_size).max(0.5);
        wrap(fonts, &clean(text).replace('\n', " "), bold, room, 1).swap_remove(0)
    };
    if !report.summary.columns.is_empty() {
        blocks.push(Block::SummaryRow {
            cells: SUMMARY_HEADERS
                .iter()
                .zip(&widths)
                .map(|(h, w)| fit(fonts, h, *w, true))
                .collect(),
            header: true,
        });
        for column in &report.summary.columns {
            blocks.push(Block::SummaryRow {
                cells: column
                    .cells()
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| fit(fonts, c, *w, false))
                    .collect(),
                header: false,
            });
        }
    }
    let room = g.body_bottom() - g.body_top();
    let chart_height = (room - g.title_size * 1.9 - g.line_height * 1.4).min(280.0);
    for chart in &report.charts {
        let width = g.content_width() / g.title_size;
        blocks.push(Block::Heading(
            wrap(fonts, &clean(&chart.title), true, width, 1).swap_remove(0),
        ));
        let width = g.content_width() / g.font_size;
        blocks.push(Block::Text(
            wrap(fonts, &clean(&chart.caption()), false, width, 1).swap_remove(0),
        ));
        if chart.points.is_empty() {
            blocks.push(Block::Text("No points.".into()));
        } else {
            blocks.push(Block::Chart {
                chart: Arc::new(chart.clone()),
                height: chart_height,
            });
        }
    }
    let mut pages = Vec::new();
    let mut page: Vec<(f32, Block)> = Vec::new();
    let mut y = g.body_top();
    let count = blocks.len();
    for (index, block) in blocks.into_iter().enumerate() {
        let own = block.height(g);
        // A heading keeps its caption and chart with it.
        let height = if matches!(block, Block::Heading(_)) && index + 2 < count {
            own + g.line_height * 1.4 + chart_height
        } else {
            own
        };
        if !page.is_empty() && y + height > g.body_bottom() {
            pages.push(InsightsPage {
                blocks: std::mem::take(&mut page),
            });
            y = g.body_top();
        }
        page.push((y, block));
        y += own;
    }
    if !page.is_empty() {
        pages.push(InsightsPage { blocks: page });
    }
    pages
}

/// A piece of text to draw once the shapes are down.
struct Label {
    text: String,
    bold: bool,
    x: f32,
    baseline: f32,
    size: f32,
    color: Color,
    /// Where `x` is: 0 left, 0.5 centre, 1 right of the text.
    anchor: f32,
}

fn rgb(color: Color) -> (f32, f32, f32) {
    let (r, g, b) = color;
    (
        f32::from(r) / 255.0,
        f32::from(g) / 255.0,
        f32::from(b) / 255.0,
    )
}

impl PaintBody for InsightsPage {
    fn paint(&self, painter: &mut Painter, canvas: &mut Canvas) {
        painter.insights_page(canvas, self);
    }
}

impl Painter {
    /// Draws the blocks of a report page (shapes first, then all text);
    /// the caller draws the title and page number in the same text object.
    pub(crate) fn insights_page(&mut self, canvas: &mut Canvas, page: &InsightsPage) {
        let g = self.frame.geometry;
        let mut labels: Vec<Label> = Vec::new();
        let ascent = self.fonts.ascent;
        let mut row_index = 0usize;
        for (top, block) in &page.blocks {
            let top = *top;
            match block {
                Block::Heading(text) => labels.push(Label {
                    text: text.clone(),
                    bold: true,
                    x: g.margin,
                    baseline: top + g.title_size * 0.4 + g.title_size * ascent,
                    size: g.title_size,
                    color: INK,
                    anchor: 0.0,
                }),
                Block::Text(text) => labels.push(Label {
                    text: text.clone(),
                    bold: false,
                    x: g.margin,
                    baseline: top + g.font_size * (0.2 + ascent),
                    size: g.font_size,
                    color: MUTED,
                    anchor: 0.0,
                }),
                Block::SummaryRow { cells, header } => {
                    let height = g.row_height(1);
                    if *header {
                        canvas.fill_rect(g.margin, top, g.content_width(), height, HEADER_FILL);
                        row_index = 0;
                    } else {
                        if row_index % 2 == 1 {
                            canvas.fill_rect(g.margin, top, g.content_width(), height, STRIPE);
                        }
                        row_index += 1;
                    }
                    let rule_color = if *header { RULE_STRONG } else { RULE_LIGHT };
                    canvas.fill_rect(
                        g.margin,
                        top + height - 0.25,
                        g.content_width(),
                        0.5,
                        rule_color,
                    );
                    let mut left = g.margin;
                    for (column, text) in cells.iter().enumerate() {
                        let width = SUMMARY_SHARES[column] * g.content_width();
                        let right = column > 0;
                        labels.push(Label {
                            text: text.clone(),
                            bold: *header || column == 0,
                            x: if right {
                                left + width - g.padding_x
                            } else {
                                left + g.padding_x
                            },
                            baseline: top + g.padding_y + g.font_size * ascent,
                            size: g.font_size,
                            color: INK,
                            anchor: if right { 1.0 } else { 0.0 },
                        });
                        left += width;
                    }
                }
                Block::Chart { chart, height } => {
                    self.chart(
                        canvas,
                        chart,
                        g.margin,
                        top,
                        g.content_width(),
                        *height,
                        &mut labels,
                    );
                }
            }
        }
        canvas.content.begin_text();
        for label in labels {
            if label.text.is_empty() {
                continue;
            }
            let width = self.fonts.width(&label.text, label.bold) * label.size;
            canvas.set_fill(label.color);
            self.line(
                canvas,
                &label.text,
                label.bold,
                label.x - width * label.anchor,
                label.baseline,
                label.size,
            );
        }
        canvas.content.end_text();
    }

    /// Draws one chart's shapes in the box at (`left`, `top`), and queues
    /// its labels.
    #[allow(clippy::too_many_arguments)]
    fn chart(
        &mut self,
        canvas: &mut Canvas,
        chart: &Chart,
        left: f32,
        top: f32,
        width: f32,
        height: f32,
        labels: &mut Vec<Label>,
    ) {
        let g = self.frame.geometry;
        let size = g.font_size;
        let plot = chart.plot(width, height, size);
        let ascent = self.fonts.ascent;
        let area = plot.area;
        let page_height = canvas.page_height;
        let px = |x: f32| left + x;
        let py = |y: f32| page_height - (top + y);
        for tick in &plot.y_ticks {
            canvas.fill_rect(px(area.x), top + tick.at - 0.25, area.width, 0.5, GRID);
            labels.push(Label {
                text: tick.text.clone(),
                bold: false,
                x: px(area.x - size * 0.4),
                baseline: top + tick.at + size * (ascent - 0.5),
                size,
                color: MUTED,
                anchor: 1.0,
            });
        }
        labels.push(Label {
            text: plot.y_title.text.clone(),
            bold: true,
            x: px(plot.y_title.x),
            baseline: top + plot.y_title.baseline,
            size,
            color: INK,
            anchor: 0.0,
        });
        for label in &plot.x_labels {
            labels.push(Label {
                text: label.text.clone(),
                bold: false,
                x: px(label.at),
                baseline: top + plot.x_label_baseline,
                size,
                color: MUTED,
                anchor: 0.5,
            });
        }
        labels.push(Label {
            text: plot.x_title.text.clone(),
            bold: true,
            x: px(plot.x_title.x),
            baseline: top + plot.x_title.baseline,
            size,
            color: INK,
            anchor: 0.5,
        });
        match chart.kind {
            ChartKind::Bar => {
                for bar in &plot.bars {
                    let color = COLORS[bar.series % COLORS.len()];
                    canvas.fill_rect(
                        px(bar.rect.x),
                        top + bar.rect.y,
                        bar.rect.width,
                        bar.rect.height.max(0.01),
                        color,
                    );
                }
            }
            ChartKind::Line => {
                for (series, marks) in plot.lines.iter().enumerate() {
                    let color = COLORS[series % COLORS.len()];
                    let (r, gr, b) = rgb(color);
                    if marks.len() > 1 {
                        let content = &mut canvas.content;
                        content.save_state();
                        content.set_stroke_rgb(r, gr, b);
                        content.set_line_width(1.5);
                        content
                            .set_dash_pattern(DASHES[series % DASHES.len()].iter().copied(), 0.0);
                        for (i, mark) in marks.iter().enumerate() {
                            if i == 0 {
                                content.move_to(px(mark.x), py(mark.y));
                            } else {
                                content.line_to(px(mark.x), py(mark.y));
                            }
                        }
                        content.stroke();
                        content.restore_state();
                    }
                    canvas.set_fill(color);
                    for mark in marks {
                        circle(canvas, px(mark.x), py(mark.y), 2.2);
                    }
                }
            }
        }
        // The zero line over the bars' feet.
        canvas.fill_rect(
            px(area.x),
            top + plot.baseline - 0.4,
            area.width,
            0.8,
            MUTED,
        );
        if let Some((mut x, y)) = plot.legend {
            for (series, name) in chart.series.iter().enumerate() {
                canvas.fill_rect(px(x), top + y, size, size, COLORS[series % COLORS.len()]);
                labels.push(Label {
                    text: name.clone(),
                    bold: false,
                    x: px(x + size * 1.4),
                    baseline: top + y + size * 0.85,
                    size,
                    color: INK,
                    anchor: 0.0,
                });
                x += size * 2.6 + self.fonts.width(name, false) * size;
            }
        }
    }
}

/// A filled circle of radius `r` centred at (`x`, `y`) in PDF coordinates.
fn circle(canvas: &mut Canvas, x: f32, y: f32, r: f32) {
    // Four Bézier arcs; 0.5523 puts their midpoints on the circle.
    let k = r * 0.5523;
    canvas
        .content
        .move_to(x + r, y)
        .cubic_to(x + r, y + k, x + k, y + r, x, y + r)
        .cubic_to(x - k, y + r, x - r, y + k, x - r, y)
        .cubic_to(x - r, y - k, x - k, y - r, x, y - r)
        .cubic_to(x + k, y - r, x + r, y - k, x + r, y)
        .close_path()
        .fill_nonzero();
}
