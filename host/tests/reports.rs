//! Reports with a summary and charts (`audience`, `chart`) through the real
//! binary and the built html, pdf and markdown plugins, on a generated CSV
//! read by the csv loader (its columns are text: the summary and charts
//! read numbers and ISO dates out of it).
//!
//! - html: the page's SVG parses as XML (quick-xml) and holds one
//!   `rect.bar` per chart point (or one `circle.point` per line point), and
//!   the points are the ones the markdown export lists.
//! - pdf: `pdftotext` (poppler-utils, `apt-get install poppler-utils`;
//!   the test fails, never skips, without it) finds the row count and a sum.
//! - markdown: the points table, against hand-computed sums.
//! - memory: the CLI's peak RSS (`/usr/bin/time -v`, GNU time) exporting
//!   1,000,000 rows with two charts grows by less than 8 MiB over 100,000.

mod common;

use common::*;
use quick_xml::events::Event;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::process::Command;

const HTML_LIB: &str = "libexport_html.so";
const PDF_LIB: &str = "libexport_pdf.so";
const MARKDOWN_LIB: &str = "libexport_markdown.so";

/// A sandbox with the csv, html, pdf and markdown plugins.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::empty();
    sandbox.register(&[
        sandbox.csv(),
        Entry::new("html", HTML_LIB),
        Entry::new("pdf", PDF_LIB),
        Entry::new("markdown", MARKDOWN_LIB),
    ]);
    sandbox
}

/// `rows` rows of `day` (20 days of May 2024, in turn), `team` (3 teams,
/// one with markup in its name), `user` (`users` distinct) and `n` (row
/// number mod 7).
fn daily_csv(rows: usize, users: usize) -> String {
    let teams = ["ops", "<sales & co>", "dev"];
    let mut csv = String::with_capacity(rows * 32);
    csv.push_str("day,team,user,n\n");
    for i in 0..rows {
        let _ = writeln!(
            csv,
            "2024-05-{:02},\"{}\",u{},{}",
            i % 20 + 1,
            teams[i % 3],
            i % users.max(1),
            i % 7
        );
    }
    csv
}

/// The sum of `n` per day of [`daily_csv`], by day 1..=20.
fn expected_sums(rows: usize) -> Vec<u64> {
    let mut sums = vec![0u64; 20];
    for i in 0..rows {
        sums[i % 20] += (i % 7) as u64;
    }
    sums
}

fn export(sandbox: &Sandbox, format: &str, options: Value) -> Vec<u8> {
    succeeded(&sandbox.export("csv", format, &json!({"path": "daily.csv"}), &options, &[]))
}

/// Every `<svg>...</svg>` of an HTML page, parsed as XML: per SVG, the
/// `class` of each element.
fn svg_classes(page: &str) -> Vec<Vec<String>> {
    let mut svgs = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find("<svg") {
        let end = rest[start..].find("</svg>").expect("an <svg> is closed") + start + 6;
        let svg = &rest[start..end];
        let mut reader = quick_xml::Reader::from_str(svg);
        reader.config_mut().check_end_names = true;
        let mut classes = Vec::new();
        loop {
            match reader.read_event() {
                Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                    let class = e
                        .try_get_attribute("class")
                        .expect("attributes parse")
                        .map(|a| a.value.into_owned())
                        .unwrap_or_default();
                    classes.push(format!("{}.{class}", e.name().as_ref()));
                }
                Ok(Event::Eof) => break,
                Ok(_) => {}
                Err(err) => panic!("the SVG is not well-formed XML: {err}\n{svg}"),
            }
        }
        svgs.push(classes);
        rest = &rest[end..];
    }
    svgs
}

#[test]
fn html_analyst_report_draws_one_bar_per_point_in_svg_that_parses() {
    let sandbox = sandbox();
    let rows = 1000;
    sandbox.put("daily.csv", daily_csv(rows, 50));
    let options = json!({
        "audience": "analyst",
        "chart": [
            {"x": "day", "y": "n", "kind": "bar"},
            {"x": "team", "y": ["n"], "kind": "line", "agg": "count"}
        ]
    });
    let page = String::from_utf8(export(&sandbox, "html", options.clone())).expect("UTF-8 page");
    let svgs = svg_classes(&page);
    assert_eq!(svgs.len(), 2, "two charts");
    let bars = svgs[0].iter().filter(|c| *c == "rect.bar").count();
    assert_eq!(bars, 20, "one bar per day");
    let points = svgs[1].iter().filter(|c| *c == "circle.point").count();
    assert_eq!(points, 3, "one point per team");
    assert!(!page.contains("<script"), "no script");
    assert!(
        !page.contains(" src=") && !page.contains("href="),
        "nothing loaded"
    );
    assert!(
        page.contains("&lt;sales &amp; co&gt;"),
        "labels are escaped"
    );
    assert!(page.contains("1000 rows."), "the summary's row count");
    assert!(page.contains("<td>2024-05-01</td>"), "the table is there");
    // The markdown export lists the same points.
    let markdown = String::from_utf8(export(&sandbox, "markdown", options)).expect("UTF-8");
    let day_rows = markdown
        .lines()
        .filter(|l| l.starts_with("| 2024-05-") && l.matches('|').count() == 3)
        .count();
    assert_eq!(day_rows, 20, "{markdown}");
    // Executive: the charts and no table.
    let page = String::from_utf8(export(
        &sandbox,
        "html",
        json!({"audience": "executive", "chart": {"x": "day", "y": "n"}}),
    ))
    .expect("UTF-8 page");
    assert!(!page.contains("<td>2024-05-01</td>"), "no table");
    assert_eq!(
        svg_classes(&page)[0]
            .iter()
            .filter(|c| *c == "rect.bar")
            .count(),
        20
    );
}

#[test]
fn markdown_report_lists_the_points_with_their_sums() {
    let sandbox = sandbox();
    let rows = 1234;
    sandbox.put("daily.csv", daily_csv(rows, 50));
    let out = String::from_utf8(export(
        &sandbox,
        "markdown",
        json!({"audience": "executive", "title": "May", "chart": {"x": "day", "y": "n", "kind": "bar"}}),
    ))
    .expect("UTF-8");
    assert!(
        out.starts_with("# May\n\n## Summary\n\n1234 rows.\n"),
        "{out}"
    );
    let total: u64 = expected_sums(rows).iter().sum();
    assert!(
        out.contains(&format!("| n | 0 | 0 | 6 | {total} |")),
        "the sum of n: {out}"
    );
    assert!(
        out.contains("| user | 0 |  |  |  |  | 50 |"),
        "distinct users: {out}"
    );
    let mut table = String::from("| day | n |\n| --- | ---: |\n");
    for (day, sum) in expected_sums(rows).iter().enumerate() {
        let _ = writeln!(table, "| 2024-05-{:02} | {sum} |", day + 1);
    }
    assert!(out.ends_with(&table), "{out}");
    assert!(!out.contains("| 2024-05-01 | ops |"), "no table rows");
}

#[test]
fn pdf_report_text_holds_the_summary_numbers() {
    let sandbox = sandbox();
    let rows = 777;
    sandbox.put("daily.csv", daily_csv(rows, 50));
    let file = sandbox.path().join("report.pdf");
    let output = sandbox.export(
        "csv",
        "pdf",
        &json!({"path": "daily.csv"}),
        &json!({"audience": "analyst", "title": "Daily", "chart": [
            {"x": "day", "y": "n", "kind": "bar"},
            {"x": "day", "y": "n", "kind": "line", "agg": "mean"}
        ]}),
        &["-o", file.to_str().expect("UTF-8 path")],
    );
    succeeded(&output);
    let text = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext must be installed (apt-get install poppler-utils)");
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).expect("UTF-8");
    let pages: Vec<&str> = text.split('\u{c}').collect();
    let words = |page: &str| page.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = words(pages[0]);
    assert!(
        first.contains("Summary") && first.contains("777 rows."),
        "{first}"
    );
    let total: u64 = expected_sums(rows).iter().sum();
    assert!(
        first.contains(&format!(" {total} ")),
        "the sum {total}: {first}"
    );
    assert!(first.contains("Page i"), "{first}");
    let all = words(&text);
    assert!(
        all.contains("sum of n by day") && all.contains("mean of n by day"),
        "{all}"
    );
    assert!(all.contains("day (per day)"), "axis title: {all}");
    assert!(all.contains("Page 1"), "the table follows: {all}");
}

#[test]
fn bad_report_options_are_refused_before_any_output() {
    let sandbox = sandbox();
    sandbox.put("daily.csv", daily_csv(10, 5));
    for format in ["html", "pdf", "markdown"] {
        for (options, needle) in [
            (json!({"chart": {"x": "day", "y": "n"}}), "audience"),
            (
                json!({"audience": "analyst", "chart": {"x": "nope", "y": "n"}}),
                "nope",
            ),
            (json!({"audience": "boss"}), "audience"),
            (
                json!({"audience": "analyst", "chart": {"x": "day", "y": "n", "colour": 1}}),
                "chart",
            ),
        ] {
            let output =
                sandbox.export("csv", format, &json!({"path": "daily.csv"}), &options, &[]);
            refused(&output, Exit::Input, &[needle]);
            assert!(output.stdout.is_empty(), "{format} {options}: no output");
        }
        // A y value that is not a number names its row.
        let output = sandbox.export(
            "csv",
            format,
            &json!({"path": "daily.csv"}),
            &json!({"audience": "executive", "chart": {"x": "day", "y": "team"}}),
            &[],
        );
        refused(&output, Exit::Input, &["team", "row 1"]);
    }
}

/// Peak RSS in KiB of `export-host ARGS` in the sandbox, by GNU time.
fn peak_rss_kib(sandbox: &Sandbox, args: &[&str]) -> u64 {
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_export-host"))
        .arg("--plugins")
        .arg(sandbox.plugins_toml())
        .args(args)
        .current_dir(sandbox.path())
        .env_remove("EXPORT_HOST_LOG")
        .output()
        .expect("/usr/bin/time must be installed (apt-get install time)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in: {stderr}"))
}

#[test]
fn memory_stays_flat_on_a_million_rows_with_charts() {
    let sandbox = sandbox();
    let options = json!({"audience": "analyst", "chart": [
        {"x": "day", "y": "n", "kind": "line"},
        {"x": "user", "y": "n", "kind": "bar"}
    ]})
    .to_string();
    let mut peaks = Vec::new();
    for (rows, name) in [(100_000, "small.csv"), (1_000_000, "large.csv")] {
        // 50,000 users: past the exact distinct count and the tracked categories.
        sandbox.put(name, daily_csv(rows, 50_000));
        let selector = json!({"path": name}).to_string();
        let out = format!("{name}.html");
        let peak = peak_rss_kib(
            &sandbox,
            &[
                "export",
                "--loader",
                "csv",
                "--format",
                "html",
                "--selector",
                &selector,
                "--options",
                &options,
                "-o",
                &out,
            ],
        );
        let page = std::fs::read_to_string(sandbox.path().join(&out)).expect("the page");
        assert!(page.contains(&format!("{rows} rows.")), "{rows}");
        assert!(
            page.contains("≈"),
            "the user count is an estimate past 10,000"
        );
        std::fs::remove_file(sandbox.path().join(&out)).expect("removing the page");
        peaks.push(peak);
    }
    let growth = peaks[1].saturating_sub(peaks[0]);
    eprintln!(
        "peak RSS: 100k rows {} KiB, 1M rows {} KiB, growth {growth} KiB",
        peaks[0], peaks[1]
    );
    assert!(
        growth < 8 * 1024,
        "peak RSS grew by {growth} KiB from 100k to 1M rows: {peaks:?}"
    );
}
