//! The summary and charts of a report as HTML: a table of the summary and
//! each chart as inline SVG, with no script and nothing loaded, drawn with
//! presentation attributes so it reads the same printed and without CSS.
//! Every text is escaped for XML (which is also safe HTML).

// XML escaping, which is also safe HTML, for text and attribute values.
use export_plugin_api::escape::xml as escape;
use export_plugin_api::report::{
    format_number, Chart, ChartKind, Report, COLORS, DASHES, SUMMARY_HEADERS,
};
use std::fmt::Write as _;

/// The canvas of a chart, in SVG user units (it scales to the page width).
const WIDTH: f32 = 760.0;
const HEIGHT: f32 = 320.0;
const FONT_SIZE: f32 = 12.0;
const INK: &str = "#1f2328";
const MUTED: &str = "#57606a";
const GRID: &str = "#d8dee4";

fn color(series: usize) -> String {
    let (r, g, b) = COLORS[series % COLORS.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// A number for SVG coordinates: two decimals are plenty.
fn n(value: f32) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The summary table and the charts, as one `<section class="insights">`.
pub(crate) fn insights_html(report: &Report) -> String {
    let summary = &report.summary;
    let mut html = String::new();
    html.push_str("<section class=\"insights\">\n<h2>Summary</h2>\n");
    let _ = writeln!(
        html,
        "<p class=\"row-count\">{} row{}.</p>",
        summary.row_count,
        if summary.row_count == 1 { "" } else { "s" }
    );
    if !summary.columns.is_empty() {
        html.push_str("<div class=\"table-wrap\">\n<table class=\"summary\">\n<thead>\n<tr>");
        for header in SUMMARY_HEADERS {
            let _ = write!(html, "<th scope=\"col\">{}</th>", escape(header));
        }
        html.push_str("</tr>\n</thead>\n<tbody>\n");
        for column in &summary.columns {
            let cells = column.cells();
            html.push_str("<tr>");
            let _ = write!(html, "<th scope=\"row\">{}</th>", escape(&cells[0]));
            for cell in &cells[1..] {
                let _ = write!(html, "<td class=\"num\">{}</td>", escape(cell));
            }
            html.push_str("</tr>\n");
        }
        html.push_str("</tbody>\n</table>\n</div>\n");
    }
    for chart in &report.charts {
        let _ = write!(
            html,
            "<figure class=\"chart\">\n<figcaption><strong>{}</strong><br><span class=\"meta\">{}</span></figcaption>\n",
            escape(&chart.title),
            escape(&chart.caption())
        );
        if chart.points.is_empty() {
            html.push_str("<p class=\"empty\">No points.</p>\n");
        } else {
            html.push_str(&svg(chart));
        }
        html.push_str("</figure>\n");
    }
    html.push_str("</section>\n");
    html
}

/// One chart as a standalone `<svg>` element (also well-formed XML): a
/// `rect.bar` per bar or a `circle.point` per line point, each with a
/// `<title>` tooltip; axes with ticks and titles; a legend for several series.
pub(crate) fn svg(chart: &Chart) -> String {
    let plot = chart.plot(WIDTH, HEIGHT, FONT_SIZE);
    let mut svg = String::with_capacity(4096 + chart.points.len() * 200);
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart-svg\" viewBox=\"0 0 {w} {h}\" \
         width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{label}\" \
         font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif\" \
         font-size=\"{f}\">",
        w = n(WIDTH),
        h = n(HEIGHT),
        label = escape(&chart.title),
        f = n(FONT_SIZE),
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(&chart.title));
    let area = plot.area;
    // Gridlines and y tick labels.
    svg.push_str("<g class=\"y-axis\">\n");
    for tick in &plot.y_ticks {
        let _ = writeln!(
            svg,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{GRID}\" stroke-width=\"1\"/>\
             <text x=\"{}\" y=\"{y}\" dy=\"0.35em\" text-anchor=\"end\" fill=\"{MUTED}\">{}</text>",
            n(area.x),
            n(area.x + area.width),
            n(area.x - FONT_SIZE * 0.4),
            escape(&tick.text),
            y = n(tick.at),
        );
    }
    let _ = writeln!(
        svg,
        "<text class=\"axis-title\" x=\"{}\" y=\"{}\" fill=\"{INK}\" font-weight=\"600\">{}</text>",
        n(plot.y_title.x),
        n(plot.y_title.baseline),
        escape(&plot.y_title.text)
    );
    svg.push_str("</g>\n<g class=\"x-axis\">\n");
    let _ = writeln!(
        svg,
        "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{MUTED}\" stroke-width=\"1\"/>",
        n(area.x),
        n(area.x + area.width),
        y = n(plot.baseline),
    );
    for label in &plot.x_labels {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{MUTED}\">{}</text>",
            n(label.at),
            n(plot.x_label_baseline),
            escape(&label.text)
        );
    }
    let _ = writeln!(
        svg,
        "<text class=\"axis-title\" x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"{INK}\" font-weight=\"600\">{}</text>",
        n(plot.x_title.x),
        n(plot.x_title.baseline),
        escape(&plot.x_title.text)
    );
    svg.push_str("</g>\n");
    let tooltip = |series: usize, point: usize| -> String {
        let p = &chart.points[point];
        let value = p.values[series].map(format_number).unwrap_or_default();
        if chart.series.len() > 1 {
            format!("{} · {}: {value}", p.label, chart.series[series])
        } else {
            format!("{}: {value}", p.label)
        }
    };
    match chart.kind {
        ChartKind::Bar => {
            svg.push_str("<g class=\"bars\">\n");
            for bar in &plot.bars {
                let _ = writeln!(
                    svg,
                    "<rect class=\"bar\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>",
                    n(bar.rect.x),
                    n(bar.rect.y),
                    n(bar.rect.width),
                    n(bar.rect.height),
                    color(bar.series),
                    escape(&tooltip(bar.series, bar.point))
                );
            }
            svg.push_str("</g>\n");
        }
        ChartKind::Line => {
            for (series, marks) in plot.lines.iter().enumerate() {
                let _ = writeln!(
                    svg,
                    "<g class=\"series\" data-series=\"{}\">",
                    escape(&chart.series[series])
                );
                let mut d = String::new();
                for (i, mark) in marks.iter().enumerate() {
                    let _ = write!(
                        d,
                        "{}{} {}",
                        if i == 0 { "M" } else { " L" },
                        n(mark.x),
                        n(mark.y)
                    );
                }
                let dash = DASHES[series % DASHES.len()];
                let dash = if dash.is_empty() {
                    String::new()
                } else {
                    format!(
                        " stroke-dasharray=\"{}\"",
                        dash.iter().map(|d| n(*d)).collect::<Vec<_>>().join(" ")
                    )
                };
                if marks.len() > 1 {
                    let _ = writeln!(
                        svg,
                        "<path d=\"{d}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-linejoin=\"round\"{dash}/>",
                        color(series)
                    );
                }
                for mark in marks {
                    let _ = writeln!(
                        svg,
                        "<circle class=\"point\" cx=\"{}\" cy=\"{}\" r=\"3.5\" fill=\"{}\"><title>{}</title></circle>",
                        n(mark.x),
                        n(mark.y),
                        color(series),
                        escape(&tooltip(series, mark.point))
                    );
                }
                svg.push_str("</g>\n");
            }
        }
    }
    if let Some((mut x, y)) = plot.legend {
        svg.push_str("<g class=\"legend\">\n");
        for (series, name) in chart.series.iter().enumerate() {
            let _ = writeln!(
                svg,
                "<rect x=\"{}\" y=\"{}\" width=\"{f}\" height=\"{f}\" fill=\"{}\"/>\
                 <text x=\"{}\" y=\"{}\" fill=\"{INK}\">{}</text>",
                n(x),
                n(y),
                color(series),
                n(x + FONT_SIZE * 1.4),
                n(y + FONT_SIZE * 0.85),
                escape(name),
                f = n(FONT_SIZE),
            );
            x += FONT_SIZE * (2.6 + 0.6 * name.chars().count().min(40) as f32);
        }
        svg.push_str("</g>\n");
    }
    svg.push_str("</svg>\n");
    svg
}

/// The CSS the insights use, added to the page only when they are shown:
/// the summary and charts come first on screen and in print, though the
/// page streams them after the table (they are known only at the end).
pub(crate) const INSIGHTS_CSS: &str = "\
main { display: flex; flex-direction: column; }
main > .insights { order: -1; }
.insights h2 { margin-top: 1rem; }
table.summary { width: auto; min-width: 40rem; }
table.summary td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th[scope=row] { background: transparent; position: static; font-weight: 600; }
figure.chart { margin: 1.5rem 0; break-inside: avoid; page-break-inside: avoid; }
figure.chart figcaption { margin-bottom: .5rem; }
svg.chart-svg { display: block; max-width: 100%; height: auto; }
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_controls() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(escape("a\u{1}b"), "a\u{fffd}b");
    }
}
