//! Named parameters (`:name`) in a query's SQL, rewritten to the positional
//! placeholders the databases bind (`?1` for SQLite, `$1` for PostgreSQL).
//!
//! Only the placeholder is rewritten: values are bound separately and never
//! become part of the SQL text. The scanner skips what is not code: string
//! literals (`'...'`, `E'...'`), quoted identifiers (`"..."`, `` `...` ``,
//! `[...]` on SQLite), comments (`--`, `/* */`) and PostgreSQL dollar quotes
//! (`$tag$...$tag$`); `::` casts are not parameters.

use super::params::is_param_name;
use crate::config::Backend;

/// SQL with positional placeholders, and the parameter name of every position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Positional {
    /// The SQL the database prepares.
    pub sql: String,
    /// `names[i]` is bound to placeholder `i + 1`.
    pub names: Vec<String>,
}

/// Why SQL could not be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceholderError {
    /// The SQL uses the database's own placeholders instead of names.
    #[error(
        "uses the positional placeholder {found:?}; write parameters as :name and declare them \
         under params"
    )]
    Positional {
        /// The placeholder as written.
        found: String,
    },
    /// A `:name` whose name is not ASCII letters, digits and underscores.
    #[error(
        "uses the parameter {found:?}; parameter names are ASCII letters, digits and underscores"
    )]
    BadName {
        /// The placeholder as written.
        found: String,
    },
    /// A quote or comment is never closed.
    #[error("has an unterminated {what}")]
    Unterminated {
        /// What is open.
        what: &'static str,
    },
}

/// Rewrites every `:name` outside literals and comments to a positional
/// placeholder; a name used twice gets one position.
pub fn rewrite(sql: &str, backend: Backend) -> Result<Positional, PlaceholderError> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut names: Vec<String> = Vec::new();
    // Start of the text not yet copied to `out`.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\'' => {
                // An E'...' string (PostgreSQL) treats backslash as an escape.
                let escapes = backend == Backend::Postgres
                    && i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_word_byte(bytes[i - 2]));
                i = skip_quoted(bytes, i, b'\'', escapes)
                    .ok_or(PlaceholderError::Unterminated { what: "string" })?;
            }
            b'"' => {
                i = skip_quoted(bytes, i, b'"', false).ok_or(PlaceholderError::Unterminated {
                    what: "quoted identifier",
                })?;
            }
            b'`' if backend == Backend::Sqlite => {
                i = skip_quoted(bytes, i, b'`', false).ok_or(PlaceholderError::Unterminated {
                    what: "quoted identifier",
                })?;
            }
            b'[' if backend == Backend::Sqlite => {
                i = find(bytes, i + 1, b"]").ok_or(PlaceholderError::Unterminated {
                    what: "[identifier]",
                })? + 1;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = find(bytes, i + 2, b"\n").map_or(bytes.len(), |end| end + 1);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i, backend == Backend::Postgres)
                    .ok_or(PlaceholderError::Unterminated { what: "comment" })?;
            }
            // `a$1` is an identifier, not a placeholder.
            b'$' if backend == Backend::Postgres && (i == 0 || !is_word_byte(bytes[i - 1])) => {
                if let Some(tag_end) = dollar_tag_end(bytes, i) {
                    let tag = &bytes[i..=tag_end];
                    let close =
                        find(bytes, tag_end + 1, tag).ok_or(PlaceholderError::Unterminated {
                            what: "dollar-quoted string",
                        })?;
                    i = close + tag.len();
                } else if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    return Err(positional(bytes, i));
                } else {
                    i += 1;
                }
            }
            b'?' | b'@' | b'$' if backend == Backend::Sqlite => {
                // `?`, `?1`, `@x` and `$x` are SQLite's own placeholders.
                let next = bytes.get(i + 1).copied();
                if c == b'?' || next.is_some_and(is_word_byte) {
                    return Err(positional(bytes, i));
                }
                i += 1;
            }
            b':' => {
                let cast = bytes.get(i + 1) == Some(&b':') || (i > 0 && bytes[i - 1] == b':');
                let end = word_end(bytes, i + 1);
                let name = &sql[i + 1..end];
                let starts_like_name = name
                    .bytes()
                    .next()
                    .is_some_and(|first| !first.is_ascii_digit());
                if !cast && starts_like_name && !is_param_name(name) {
                    return Err(PlaceholderError::BadName {
                        found: format!(":{name}"),
                    });
                }
                if !cast && is_param_name(name) {
                    let position = match names.iter().position(|known| known == name) {
                        Some(index) => index + 1,
                        None => {
                            names.push(name.to_owned());
                            names.len()
                        }
                    };
                    out.push_str(&sql[copied..i]);
                    out.push(match backend {
                        Backend::Sqlite => '?',
                        Backend::Postgres => '$',
                    });
                    out.push_str(itoa::Buffer::new().format(position));
                    copied = end;
                    i = end;
                } else {
                    i += if cast { 2 } else { 1 };
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copied..]);
    Ok(Positional { sql: out, names })
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// The end of a word starting at `i`; non-ASCII letters count as part of
/// it, so `:café` is one (refused) name, not `:caf` followed by text.
fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && (is_word_byte(bytes[i]) || !bytes[i].is_ascii()) {
        i += 1;
    }
    i
}

fn positional(bytes: &[u8], i: usize) -> PlaceholderError {
    let end = word_end(bytes, i + 1);
    PlaceholderError::Positional {
        found: String::from_utf8_lossy(&bytes[i..end]).into_owned(),
    }
}

/// The index after a literal opened by `quote` at `start` (a doubled quote
/// stays inside; with `escapes`, so does a backslash-escaped one).
fn skip_quoted(bytes: &[u8], start: usize, quote: u8, escapes: bool) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escapes => i += 2,
            byte if byte == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return Some(i + 1);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// The index after a `/* */` comment at `start`; PostgreSQL nests them.
fn skip_block_comment(bytes: &[u8], start: usize, nests: bool) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') if depth == 0 || nests => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// With a `$tag$` (or `$$`) opening at `start`, the index of its closing `$`.
fn dollar_tag_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if bytes.get(i).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while i < bytes.len() && is_word_byte(bytes[i]) {
        i += 1;
    }
    (bytes.get(i) == Some(&b'$')).then_some(i)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|window| window == needle)
        .map(|at| at + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(sql: &str) -> Positional {
        rewrite(sql, Backend::Sqlite).unwrap()
    }

    fn postgres(sql: &str) -> Positional {
        rewrite(sql, Backend::Postgres).unwrap()
    }

    #[test]
    fn names_become_positions_in_order_of_first_use() {
        let sql = "SELECT * FROM m WHERE (:from IS NULL OR t >= :from) AND u = :user_id";
        let got = sqlite(sql);
        assert_eq!(
            got.sql,
            "SELECT * FROM m WHERE (?1 IS NULL OR t >= ?1) AND u = ?2"
        );
        assert_eq!(got.names, ["from", "user_id"]);
        let got = postgres(sql);
        assert_eq!(
            got.sql,
            "SELECT * FROM m WHERE ($1 IS NULL OR t >= $1) AND u = $2"
        );
    }

    #[test]
    fn literals_comments_and_casts_are_left_alone() {
        let sql = "SELECT ':no', \":no\", x::text, y:: int, -- :no\n\
                   /* :no /* nested :no */ :no */ :yes, $$ :no $$, $tag$ :no $tag$, \
                   E'it\\'s :no', 'it''s :no' FROM t WHERE a = :yes2";
        let got = postgres(sql);
        assert_eq!(got.names, ["yes", "yes2"], "{}", got.sql);
        assert!(
            got.sql.contains("/* :no /* nested :no */ :no */ $1"),
            "{}",
            got.sql
        );
        assert!(got.sql.contains("E'it\\'s :no'"), "{}", got.sql);
        assert!(got.sql.ends_with("a = $2"), "{}", got.sql);

        // SQLite comments do not nest; [..] and `..` quote identifiers.
        let got = sqlite("SELECT [a:b], `c:d`, /* :no /* */ :yes -- :no");
        assert_eq!(got.names, ["yes"]);
        assert_eq!(got.sql, "SELECT [a:b], `c:d`, /* :no /* */ ?1 -- :no");
    }

    #[test]
    fn utf8_text_around_placeholders_is_kept() {
        let got = sqlite("SELECT 'é→:x' AS \"naïve\", :n FROM t WHERE n = :n");
        assert_eq!(got.names, ["n"]);
        assert_eq!(
            got.sql,
            "SELECT 'é→:x' AS \"naïve\", ?1 FROM t WHERE n = ?1"
        );
        // A name that is not ASCII is refused rather than cut short.
        assert_eq!(
            rewrite("SELECT :café", Backend::Sqlite),
            Err(PlaceholderError::BadName {
                found: ":café".to_owned()
            })
        );
        // `a[1:2]` slices are not parameters.
        assert_eq!(postgres("SELECT a[1:2] FROM t").names.len(), 0);
    }

    #[test]
    fn positional_placeholders_are_refused() {
        for (sql, backend, found) in [
            ("SELECT ?", Backend::Sqlite, "?"),
            ("SELECT ?1", Backend::Sqlite, "?1"),
            ("SELECT @x", Backend::Sqlite, "@x"),
            ("SELECT $x", Backend::Sqlite, "$x"),
            ("SELECT $1", Backend::Postgres, "$1"),
        ] {
            let err = rewrite(sql, backend).unwrap_err();
            assert_eq!(
                err,
                PlaceholderError::Positional {
                    found: found.to_owned()
                },
                "{sql}"
            );
        }
        // PostgreSQL's jsonb `?` operator and `a$1` identifiers are fine.
        assert_eq!(postgres("SELECT j ? 'k', a$1 FROM t").names.len(), 0);
    }

    #[test]
    fn unterminated_quotes_are_reported() {
        for sql in ["SELECT 'x", "SELECT \"x", "SELECT /* x", "SELECT $a$ x"] {
            assert!(
                matches!(
                    rewrite(sql, Backend::Postgres),
                    Err(PlaceholderError::Unterminated { .. })
                ),
                "{sql}"
            );
        }
    }
}
