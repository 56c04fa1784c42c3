//! Storage keys and download names.
//!
//! Keys are made by the host only, never from user text: a user id is hashed
//! into a per-user prefix, an export id must be one the host minted, and an
//! extension must be short and plain. Nothing a user types can therefore name
//! a path outside `u/<hash>/`.
//!
//! The file name a user asked for is only ever shown back to them, through
//! [`sanitize_file_name`] and [`content_disposition`]; it never reaches a key.

use sha2::{Digest, Sha256};
use std::fmt;

/// The first segment of every key that holds an export file. Orphan cleanup
/// lists this prefix only, so nothing else under the storage root is touched.
pub const USERS_PREFIX: &str = "u";

/// Longest key accepted, in bytes.
const MAX_KEY_LEN: usize = 512;
/// Longest key segment accepted, in bytes.
const MAX_SEGMENT_LEN: usize = 128;
/// Longest sanitised file name, in bytes.
pub const MAX_FILE_NAME_LEN: usize = 128;
/// Hex digits of sha256(user id) in a user prefix (64 bits).
const USER_HASH_HEX: usize = 16;

/// A key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An export id that the host did not mint.
    #[error("invalid export id {0:?}: expected \"exp_\" followed by 32 lower-case hex digits")]
    ExportId(String),
    /// A file extension that is not short and plain.
    #[error("invalid file extension {0:?}: expected 1 to 16 of a-z, 0-9 and '.', not starting or ending with '.' and without \"..\"")]
    Extension(String),
    /// An empty user id.
    #[error("empty user id: every stored file belongs to a user")]
    EmptyUserId,
    /// A stored key that is not one the host makes.
    #[error("invalid storage key {key:?}: {reason}")]
    Key {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A validated storage key: `/`-separated segments of `[A-Za-z0-9._-]`, no
/// segment empty, starting with `.` or `-`, and at most 512 bytes.
///
/// Keys reach storage only as this type. Build one with [`export_key`] or
/// [`user_prefix`]; [`StorageKey::parse`] re-validates a key read back from
/// the database.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorageKey(String);

impl StorageKey {
    /// Validates a key read back from a record (or from a listing).
    pub fn parse(key: &str) -> Result<Self, KeyError> {
        let bad = |reason| KeyError::Key {
            key: key.chars().take(MAX_KEY_LEN).collect(),
            reason,
        };
        if key.is_empty() {
            return Err(bad("it is empty"));
        }
        if key.len() > MAX_KEY_LEN {
            return Err(bad("it is longer than 512 bytes"));
        }
        for segment in key.split('/') {
            if segment.is_empty() {
                return Err(bad(
                    "it has an empty segment (leading, trailing or double '/')",
                ));
            }
            if segment.len() > MAX_SEGMENT_LEN {
                return Err(bad("a segment is longer than 128 bytes"));
            }
            if segment.starts_with('.') || segment.starts_with('-') {
                return Err(bad("a segment starts with '.' or '-'"));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            {
                return Err(bad("only A-Z, a-z, 0-9, '.', '_', '-' and '/' are allowed"));
            }
        }
        Ok(StorageKey(key.to_owned()))
    }

    /// The key as text, e.g. for the `storage_key` column.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this key is `prefix` or lies under it (whole segments:
    /// `u/ab` is not under `u/a`).
    pub fn starts_with(&self, prefix: &StorageKey) -> bool {
        self.0 == prefix.0
            || (self.0.starts_with(&prefix.0)
                && self.0.as_bytes().get(prefix.0.len()) == Some(&b'/'))
    }
}

impl fmt::Display for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StorageKey({:?})", self.0)
    }
}

impl AsRef<str> for StorageKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Whether `id` is an export id the host mints: `exp_` + 32 lower-case hex.
pub fn is_export_id(id: &str) -> bool {
    id.strip_prefix("exp_").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

fn is_extension(ext: &str) -> bool {
    (1..=16).contains(&ext.len())
        && ext
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.'))
        && !ext.starts_with('.')
        && !ext.ends_with('.')
        && !ext.contains("..")
}

/// The hashed directory name for a user: the first 16 hex digits of
/// sha256(user id). Any user text, `../../etc` included, maps to 16 hex digits.
fn user_hash(user_id: &str) -> String {
    let digest = Sha256::digest(user_id.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(USER_HASH_HEX);
    hex
}

/// The prefix that holds every file of `user_id`: `u/<16 hex>`.
pub fn user_prefix(user_id: &str) -> Result<StorageKey, KeyError> {
    if user_id.is_empty() {
        return Err(KeyError::EmptyUserId);
    }
    Ok(StorageKey(format!("{USERS_PREFIX}/{}", user_hash(user_id))))
}

/// The key of an export's file: `u/<first 16 hex of sha256(user_id)>/<export_id>.<extension>`.
///
/// `export_id` must be `exp_` + 32 lower-case hex digits and `extension`
/// 1 to 16 of `[a-z0-9.]` (e.g. `csv`, `csv.gz`).
pub fn export_key(user_id: &str, export_id: &str, extension: &str) -> Result<StorageKey, KeyError> {
    if !is_export_id(export_id) {
        return Err(KeyError::ExportId(export_id.chars().take(64).collect()));
    }
    if !is_extension(extension) {
        return Err(KeyError::Extension(extension.chars().take(64).collect()));
    }
    let prefix = user_prefix(user_id)?;
    Ok(StorageKey(format!("{prefix}/{export_id}.{extension}")))
}

/// Characters removed from a download name: invisible format characters
/// that can disguise an extension (right-to-left override) or hide text.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{061C}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}')
}

fn clean_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * MAX_FILE_NAME_LEN));
    for c in text.chars() {
        match c {
            // Path separators and characters Windows refuses in names.
            '/' | '\\' | ':' | '<' | '>' | '|' | '?' | '*' => out.push('_'),
            '"' => {}
            c if c.is_control() || is_invisible(c) => {}
            // Any other whitespace (tabs were removed above) becomes a space.
            c if c.is_whitespace() => out.push(' '),
            c => out.push(c),
        }
    }
    let trimmed = out
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let mut end = trimmed.len().min(MAX_FILE_NAME_LEN);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    trimmed[..end]
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace())
        .to_owned()
}

/// A safe download name from user text, for `Content-Disposition` only.
///
/// Path separators (and `: < > | ? *`) become `_`; quotes, control and
/// invisible formatting characters (e.g. U+202E) are dropped; leading dots,
/// and leading and trailing spaces and dots, are trimmed; the result is cut to
/// 128 bytes on a character boundary. An empty result gives `fallback`
/// (sanitised the same way, or `export` if that is empty too).
pub fn sanitize_file_name(user_text: &str, fallback: &str) -> String {
    let name = clean_name(user_text);
    if !name.is_empty() {
        return name;
    }
    let fallback = clean_name(fallback);
    if fallback.is_empty() {
        "export".to_owned()
    } else {
        fallback
    }
}

/// RFC 5987 `attr-char`: sent as is in `filename*`; all else is %-encoded.
fn is_attr_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'&' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// A `Content-Disposition` header value for downloading a file as `name`
/// (RFC 6266, RFC 5987):
/// `attachment; filename="<ascii fallback>"; filename*=UTF-8''<percent-encoded>`.
///
/// The fallback keeps printable ASCII except `"`, `\` and `%` and turns every
/// other character into `_`. The value is header-safe whatever `name` holds;
/// pass a name from [`sanitize_file_name`] for a sensible one.
pub fn content_disposition(name: &str) -> String {
    let name = if name.is_empty() { "export" } else { name };
    let mut fallback = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '"' | '\\' | '%' => fallback.push('_'),
            ' '..='~' => fallback.push(c),
            _ => fallback.push('_'),
        }
    }
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if is_attr_char(b) {
            encoded.push(char::from(b));
        } else {
            encoded.push('%');
            encoded.push_str(&format!("{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "exp_0123456789abcdef0123456789abcdef";

    #[test]
    fn export_keys_are_hashed_per_user() {
        let key = export_key("alice", ID, "csv.gz").unwrap();
        let hash = &hex::encode(Sha256::digest(b"alice"))[..16];
        assert_eq!(key.as_str(), format!("u/{hash}/{ID}.csv.gz"));
        assert!(key.starts_with(&user_prefix("alice").unwrap()));
        assert!(!key.starts_with(&user_prefix("bob").unwrap()));
        assert_eq!(StorageKey::parse(key.as_str()).unwrap(), key);
    }

    #[test]
    fn bad_export_ids_and_extensions_are_refused() {
        for id in [
            "",
            "exp_",
            "exp_0123",
            "EXP_0123456789abcdef0123456789abcdef",
            "exp_0123456789ABCDEF0123456789abcdef",
            "exp_0123456789abcdef0123456789abcdef0",
            "exp_../../../../../../../etc/passwd",
            "../exp_0123456789abcdef0123456789abcdef",
        ] {
            assert!(
                matches!(export_key("a", id, "csv"), Err(KeyError::ExportId(_))),
                "{id}"
            );
        }
        for ext in [
            "",
            ".",
            "..",
            ".csv",
            "csv.",
            "c..v",
            "CSV",
            "c/v",
            "c\\v",
            "abcdefghijklmnopq",
            "csv\0",
            "c v",
        ] {
            assert!(
                matches!(export_key("a", ID, ext), Err(KeyError::Extension(_))),
                "{ext:?}"
            );
        }
        assert_eq!(export_key("", ID, "csv"), Err(KeyError::EmptyUserId));
    }

    #[test]
    fn parse_refuses_what_the_host_never_makes() {
        for key in [
            "",
            "/u/a",
            "u/a/",
            "u//a",
            "u/../a",
            "u/./a",
            ".incoming/x",
            "u/.x",
            "u/a b",
            "u/a#1",
            "u/-rf",
            "u/\u{e9}",
        ] {
            assert!(StorageKey::parse(key).is_err(), "{key:?}");
        }
        assert!(StorageKey::parse(&"a".repeat(129)).is_err());
        assert!(StorageKey::parse("u/0123abcd/exp_1.csv").is_ok());
    }

    #[test]
    fn prefix_matching_is_by_whole_segments() {
        let key = StorageKey::parse("u/ab/x.csv").unwrap();
        assert!(key.starts_with(&StorageKey::parse("u").unwrap()));
        assert!(key.starts_with(&StorageKey::parse("u/ab").unwrap()));
        assert!(!key.starts_with(&StorageKey::parse("u/a").unwrap()));
    }
}
