//! The `table` layout: columns aligned in a box of ASCII rules.
//!
//! ```text
//! +----+----------------+
//! | id | text           |
//! +----+----------------+
//! |  1 | Hi! Can you    |
//! :    : sum column A?  :
//! |  2 |                |
//! +----+----------------+
//! ```
//!
//! A row taller than one line (a wrapped value, or a value with line breaks)
//! continues on lines whose rules are `:` instead of `|`, so a continuation
//! can never be mistaken for a row of empty values.

use super::options::Overflow;
use super::text::{
    display_width, push_visible, single_line, split_lines, truncate, widest_line, wrap,
};

/// No column is narrower than this, so that any character (CJK and emoji
/// take two columns) fits in it.
pub const MIN_COLUMN_WIDTH: usize = 2;

/// How values are fitted to their columns.
pub struct Fit {
    pub overflow: Overflow,
    pub max_width: usize,
}

impl Fit {
    /// The columns `value` would like: its widest line when wrapping, its
    /// one-line form when truncating.
    pub fn natural_width(&self, value: &str) -> usize {
        if is_plain_ascii(value) {
            return value.len();
        }
        match self.overflow {
            Overflow::Wrap => widest_line(value),
            Overflow::Truncate => {
                let mut line = String::new();
                single_line(value, &mut line);
                display_width(&line)
            }
        }
    }

    /// The column width for values that would like `natural` columns.
    pub fn column_width(&self, natural: usize) -> usize {
        natural.clamp(MIN_COLUMN_WIDTH, self.max_width.max(MIN_COLUMN_WIDTH))
    }

    /// `value` as lines of at most `width` columns.
    pub fn lines(&self, value: &str, width: usize) -> Vec<String> {
        if value.len() <= width && is_plain_ascii(value) {
            // The common case, without the work below: it is its own one line.
            return vec![value.to_owned()];
        }
        let mut out = Vec::new();
        match self.overflow {
            Overflow::Wrap => {
                let mut visible = String::new();
                for line in split_lines(value) {
                    visible.clear();
                    push_visible(line, &mut visible);
                    wrap(&visible, width, &mut out);
                }
            }
            Overflow::Truncate => {
                let mut line = String::new();
                single_line(value, &mut line);
                out.push(truncate(&line, width));
            }
        }
        out
    }
}

/// Printable ASCII only: one column per byte, nothing to make visible.
fn is_plain_ascii(value: &str) -> bool {
    value.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// Draws the table's lines for fixed column widths.
pub struct Grid {
    pub widths: Vec<usize>,
    /// Right-align the column (numbers).
    pub right: Vec<bool>,
}

impl Grid {
    /// `+------+----+`
    pub fn rule(&self, out: &mut String) {
        out.push('+');
        for width in &self.widths {
            out.extend(std::iter::repeat_n('-', width + 2));
            out.push('+');
        }
        out.push('\n');
    }

    /// One row: each cell's lines, already fitted to its column.
    pub fn row(&self, cells: &[Vec<String>], out: &mut String) {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for n in 0..height {
            let rule = if n == 0 { '|' } else { ':' };
            out.push(rule);
            for (column, lines) in cells.iter().enumerate() {
                let text = lines.get(n).map_or("", String::as_str);
                let pad = self.widths[column].saturating_sub(display_width(text));
                out.push(' ');
                if self.right[column] {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(text);
                } else {
                    out.push_str(text);
                    out.extend(std::iter::repeat_n(' ', pad));
                }
                out.push(' ');
                out.push(rule);
            }
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(widths: &[usize], right: &[bool]) -> Grid {
        Grid {
            widths: widths.to_vec(),
            right: right.to_vec(),
        }
    }

    fn lines(cells: &[&[&str]]) -> Vec<Vec<String>> {
        cells
            .iter()
            .map(|c| c.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn rows_pad_to_the_display_width() {
        let grid = grid(&[4, 3], &[false, true]);
        let mut out = String::new();
        grid.rule(&mut out);
        grid.row(&lines(&[&["你好"], &["1"]]), &mut out);
        grid.row(&lines(&[&["ab", "c"], &[]]), &mut out);
        assert_eq!(
            out,
            "+------+-----+\n| 你好 |   1 |\n| ab   |     |\n: c    :     :\n"
        );
    }

    #[test]
    fn fitting_wraps_or_truncates_every_line_break_away() {
        let wrap = Fit {
            overflow: Overflow::Wrap,
            max_width: 10,
        };
        assert_eq!(wrap.natural_width("ab\r\nabcd\rx"), 4);
        assert_eq!(wrap.lines("ab\r\nabcd\rx", 4), ["ab", "abcd", "x"]);
        assert_eq!(wrap.lines("", 4), [""]);
        assert_eq!(wrap.column_width(0), MIN_COLUMN_WIDTH);
        assert_eq!(wrap.column_width(50), 10);
        let cut = Fit {
            overflow: Overflow::Truncate,
            max_width: 10,
        };
        assert_eq!(cut.natural_width("ab\nc"), 4);
        assert_eq!(cut.lines("ab\ncdef", 4), ["ab↵…"]);
        assert_eq!(cut.lines("ab\nc", 4), ["ab↵c"]);
    }
}
