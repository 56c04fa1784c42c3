//! The sql plugin as the tests run it over the example database: its
//! shipped configuration pointed at the test's database, the flags of an
//! export run as a user, and the rows of its JSON Lines exports.

use serde_json::{Map, Value};
use std::path::Path;

/// The built sql plugin.
pub const SQL_LIB: &str = "libexport_sql.so";

/// One exported row, a JSON object.
pub type Row = Map<String, Value>;

/// The `[plugins.sql.config]` table of `file` (a plugins.toml, by its path
/// from the repository's root) as shipped, with `database` pointed at
/// `database`.
pub fn shipped_sql_config(file: &str, database: &str) -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{file}: {err}"));
    let shipped: toml::Table = text
        .parse()
        .unwrap_or_else(|err| panic!("{file} is not TOML: {err}"));
    let mut config = shipped["plugins"]["sql"]["config"]
        .as_table()
        .unwrap_or_else(|| panic!("{file} has no [plugins.sql.config]"))
        .clone();
    config.insert("database".into(), database.into());
    config
}

/// The presets of `examples/sql/presets.toml` as shipped, on `database`,
/// with the test's own queries beside them: `extra_queries` is TOML, a
/// `[name]` table a query.
pub fn presets_config(database: &str, extra_queries: &str) -> toml::Table {
    let mut config = shipped_sql_config("examples/sql/presets.toml", database);
    let extra: toml::Table = extra_queries.parse().expect("test queries are TOML");
    queries_of(&mut config).extend(extra);
    config
}

/// The `queries` table of a sql config.
pub fn queries_of(config: &mut toml::Table) -> &mut toml::Table {
    config
        .get_mut("queries")
        .and_then(toml::Value::as_table_mut)
        .expect("the config defines queries")
}

/// The flags of an export run as `user` (`--user USER`), or none for the
/// operator, who is an admin.
pub fn as_user(user: Option<&str>) -> Vec<&str> {
    match user {
        Some(user) => vec!["--user", user],
        None => Vec::new(),
    }
}

/// The rows of a JSON Lines export, each of which must be a JSON object.
pub fn jsonl_rows(jsonl: &[u8]) -> Vec<Row> {
    let text = std::str::from_utf8(jsonl).expect("JSON Lines are UTF-8");
    text.lines()
        .map(|line| match serde_json::from_str(line) {
            Ok(Value::Object(row)) => row,
            other => panic!("not a JSON object: {other:?}: {line}"),
        })
        .collect()
}
