//! Text layout without drawing: cleaning a value for the page, wrapping it
//! into a column, and sharing the page width among the columns.

use super::fonts::{joins_previous, Fonts};

/// What a cut cell ends with.
pub(crate) const ELLIPSIS: char = '…';

/// A value as it is drawn: line breaks (LF, CRLF, CR) split lines, a tab
/// becomes a space, and other control characters are dropped.
pub(crate) fn clean(text: &str) -> String {
    let mut cleaned = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    cleaned.push('\n');
                }
            }
            '\n' => cleaned.push('\n'),
            '\t' => cleaned.push(' '),
            ch if ch.is_control() => {}
            ch => cleaned.push(ch),
        }
    }
    cleaned
}

/// Wraps `text` (already [`clean`]ed) into lines at most `width` em wide:
/// at spaces where possible, inside a word only when the word alone is too
/// wide. Keeps at most `max_lines`; if there is more, the last kept line ends
/// with `…`. Returns at least one line (empty for empty text).
///
/// Not `textwrap`: its widths are terminal columns per `char`, these the
/// PDF font's advances; and it cuts a long word per `char`, splitting
/// grapheme clusters (an emoji family, a letter and its combining marks).
pub(crate) fn wrap(
    fonts: &mut Fonts,
    text: &str,
    bold: bool,
    width: f32,
    max_lines: usize,
) -> Vec<String> {
    let max_lines = max_lines.max(1);
    let mut lines: Vec<String> = Vec::new();
    let mut truncated = false;
    'paragraphs: for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut line_width = 0.0;
        for word in split_keeping_spaces(paragraph) {
            let word_width = fonts.width(word, bold);
            if line_width + word_width <= width {
                line.push_str(word);
                line_width += word_width;
                continue;
            }
            if word.trim().is_empty() {
                // A space at the end of a line is dropped, not carried over.
                continue;
            }
            if !line.is_empty() {
                if lines.len() + 1 == max_lines {
                    lines.push(line);
                    truncated = true;
                    break 'paragraphs;
                }
                lines.push(std::mem::take(&mut line).trim_end().to_owned());
                line_width = 0.0;
            }
            // Break the word into pieces that fit, keeping clusters whole.
            for cluster in clusters(word) {
                let cluster_width = fonts.width(cluster, bold);
                if line_width + cluster_width > width && !line.is_empty() {
                    if lines.len() + 1 == max_lines {
                        lines.push(line);
                        truncated = true;
                        break 'paragraphs;
                    }
                    lines.push(std::mem::take(&mut line));
                    line_width = 0.0;
                }
                line.push_str(cluster);
                line_width += cluster_width;
            }
        }
        if lines.len() == max_lines {
            truncated = true;
            break;
        }
        lines.push(line);
    }
    if truncated {
        if let Some(last) = lines.last_mut() {
            end_with_ellipsis(fonts, last, bold, width);
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// Shortens `line` until it and a final `…` fit in `width` em.
fn end_with_ellipsis(fonts: &mut Fonts, line: &mut String, bold: bool, width: f32) {
    let ellipsis = fonts.glyph(ELLIPSIS, bold).1;
    while !line.is_empty() && fonts.width(line, bold) + ellipsis > width {
        // Drop the last cluster, combining marks with their base.
        while let Some(ch) = line.pop() {
            if !joins_previous(ch) {
                break;
            }
        }
    }
    let kept = line.trim_end().len();
    line.truncate(kept);
    line.push(ELLIPSIS);
}

/// `text` cut into words and the runs of spaces between them.
fn split_keeping_spaces(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let space = rest.starts_with(' ');
        let end = rest
            .find(|c: char| (c == ' ') != space)
            .unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// `word` cut into characters, each with the marks that join it.
fn clusters(word: &str) -> impl Iterator<Item = &str> {
    let mut rest = word;
    std::iter::from_fn(move || {
        let mut chars = rest.char_indices();
        chars.next()?;
        let end = chars
            .find(|(_, ch)| !joins_previous(*ch))
            .map_or(rest.len(), |(index, _)| index);
        let (cluster, tail) = rest.split_at(end);
        rest = tail;
        Some(cluster)
    })
}

/// Shares `available` points among columns that would like `natural`
/// widths (their widest line) and need `words` (their widest word, which
/// a narrower column would have to break), so that words are broken only
/// when nothing else helps:
///
/// 1. every column gets its widest word, capped at a third of the line; if
///    even that does not fit, those widths shrink in proportion;
/// 2. what is left goes to the columns whose lines are wider than that:
///    each gets what it lacks if it can, the widest ones share the rest
///    equally;
/// 3. if every line fits whole, the spare room is shared in proportion.
pub(crate) fn column_widths(natural: &[f32], words: &[f32], available: f32) -> Vec<f32> {
    if natural.is_empty() {
        return Vec::new();
    }
    let cap = available / 3.0;
    let base: Vec<f32> = words
        .iter()
        .zip(natural)
        .map(|(word, line)| word.min(*line).min(cap))
        .collect();
    let base_total: f32 = base.iter().sum();
    if base_total >= available {
        let scale = available / base_total;
        return base.iter().map(|w| w * scale).collect();
    }
    let wanted: Vec<f32> = natural
        .iter()
        .zip(&base)
        .map(|(n, b)| (n - b).max(0.0))
        .collect();
    let extra = share(&wanted, available - base_total);
    let mut widths: Vec<f32> = base.iter().zip(&extra).map(|(b, e)| b + e).collect();
    let total: f32 = widths.iter().sum();
    if total < available {
        let spare = available - total;
        if total > 0.0 {
            for width in &mut widths {
                *width += spare * *width / total;
            }
        } else {
            let each = available / widths.len() as f32;
            widths.iter_mut().for_each(|w| *w = each);
        }
    }
    widths
}

/// Water-filling: gives each of `wanted` at most what it wants out of
/// `room`, the smallest first, so the largest ones share what is left.
fn share(wanted: &[f32], room: f32) -> Vec<f32> {
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_by(|a, b| wanted[*a].total_cmp(&wanted[*b]));
    let mut given = vec![0.0; wanted.len()];
    let mut remaining = room;
    for (done, index) in order.iter().enumerate() {
        let fair = remaining / (wanted.len() - done) as f32;
        given[*index] = wanted[*index].min(fair);
        remaining -= given[*index];
    }
    given
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> Fonts {
        Fonts::load().unwrap()
    }

    #[test]
    fn clean_keeps_text_and_normalises_breaks() {
        assert_eq!(clean("a\r\nb\rc\nd"), "a\nb\nc\nd");
        assert_eq!(clean("tab\there\u{0}\u{7}"), "tab here");
        assert_eq!(clean("Café 你好 مرحبا"), "Café 你好 مرحبا");
    }

    #[test]
    fn short_text_is_one_line() {
        let mut fonts = fonts();
        assert_eq!(
            wrap(&mut fonts, "hello world", false, 100.0, 3),
            ["hello world"]
        );
        assert_eq!(wrap(&mut fonts, "", false, 10.0, 3), [""]);
    }

    #[test]
    fn wraps_at_spaces_then_inside_words() {
        let mut fonts = fonts();
        let width = fonts.width("hello world", false);
        let lines = wrap(&mut fonts, "hello world hello world", false, width, 10);
        assert_eq!(lines, ["hello world", "hello world"]);
        let four = fonts.width("abcd", false);
        let lines = wrap(&mut fonts, "abcdefghij", false, four, 10);
        assert_eq!(lines, ["abcd", "efgh", "ij"]);
        for line in wrap(&mut fonts, "你好，世界！这是一个测试。", false, 3.0, 10) {
            assert!(fonts.width(&line, false) <= 3.0, "{line}");
        }
    }

    #[test]
    fn keeps_line_breaks_and_cuts_long_cells() {
        let mut fonts = fonts();
        assert_eq!(
            wrap(&mut fonts, "one\ntwo\n\nfour", false, 50.0, 10),
            ["one", "two", "", "four"]
        );
        let lines = wrap(&mut fonts, "one\ntwo\nthree", false, 50.0, 2);
        assert_eq!(lines, ["one", "two…"]);
        let long = "word ".repeat(10_000);
        let lines = wrap(&mut fonts, &long, false, 10.0, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with(ELLIPSIS), "{lines:?}");
        assert!(fonts.width(&lines[2], false) <= 10.0);
    }

    #[test]
    fn never_splits_a_cluster() {
        let mut fonts = fonts();
        let zalgo = "Z\u{335}a\u{336}l\u{337}g\u{338}o";
        for line in wrap(&mut fonts, zalgo, false, 0.1, 10) {
            assert!(!line.starts_with(joins_previous), "{line:?}");
        }
    }

    #[test]
    fn widths_fill_or_share_the_page() {
        // Everything fits: spare room in proportion.
        assert_eq!(
            column_widths(&[10.0, 30.0], &[10.0, 10.0], 80.0),
            [20.0, 60.0]
        );
        // Words first, then the lines that want more share what is left.
        let widths = column_widths(&[20.0, 100.0, 200.0], &[20.0, 10.0, 30.0], 110.0);
        assert_eq!(widths, [20.0, 35.0, 55.0]);
        // A long id (one word) is kept whole; the prose column wraps.
        let widths = column_widths(&[60.0, 300.0], &[60.0, 20.0], 150.0);
        assert_eq!(widths, [60.0, 90.0]);
        // Not even the words fit: they shrink in proportion.
        assert_eq!(
            column_widths(&[40.0, 40.0], &[40.0, 40.0], 40.0),
            [20.0, 20.0]
        );
        assert_eq!(column_widths(&[0.0, 0.0], &[0.0, 0.0], 10.0), [5.0, 5.0]);
        assert!(column_widths(&[], &[], 10.0).is_empty());
        let widths = column_widths(&[5.0; 100], &[5.0; 100], 100.0);
        assert!((widths.iter().sum::<f32>() - 100.0).abs() < 0.01);
    }
}
