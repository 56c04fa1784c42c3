//! Helpers shared by the integration tests.
//!
//! Every test gets its own [`Sandbox`]: a temporary folder with a `data/`
//! root for loaders and a `plugins.toml` naming the plugin libraries that
//! `cargo build --release --workspace` left in the target folder. The tests
//! drive the real `export-host` binary as a process through those libraries,
//! never depend on the working directory, and run in parallel.

// Each test binary uses only some of these helpers.
#![allow(dead_code)]

mod formats;
#[allow(unused_imports)]
pub use formats::*;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use std::fmt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// File names of the libraries the workspace builds.
pub const CSV_LIB: &str = "libexport_csv.so";
pub const JSON_LIB: &str = "libexport_json.so";
pub const PANICKY_LIB: &str = "libexport_test_panicky.so";
pub const PANIC_ON_LOAD_LIB: &str = "libexport_test_panic_on_load.so";
pub const API_V2_LIB: &str = "libexport_test_api_v2.so";

/// Where cargo put the binary and the plugin libraries: the test executable
/// lives in `target/<profile>/deps/`, the libraries one folder up.
pub fn target_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        exe.parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps")
            .to_owned()
    })
}

/// The absolute path of a built plugin library; fails the test with what to
/// do when it is missing.
pub fn library(file: &str) -> PathBuf {
    let path = target_dir().join(file);
    assert!(
        path.is_file(),
        "{} is missing: build the plugins first: cargo build --release --workspace",
        path.display()
    );
    path
}

/// The example data shipped in the repository.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/data")
}

/// One `[plugins.NAME]` table of a plugins.toml.
#[derive(Debug, Clone)]
pub struct Entry {
    name: String,
    table: toml::Table,
}

impl Entry {
    /// Plugin `name` from `library` (absolute, or a file in the target
    /// folder), with `isolation = "in-process"` written out, as the shipped
    /// plugins.toml does for first-party plugins (the default is sandboxed
    /// workers); `.set("isolation", "process")` isolates it.
    pub fn new(name: &str, library: impl AsRef<Path>) -> Entry {
        let library = library.as_ref();
        let library = if library.is_absolute() {
            library.to_owned()
        } else {
            self::library(&library.to_string_lossy())
        };
        let mut table = toml::Table::new();
        table.insert("library".into(), path_value(&library));
        table.insert("isolation".into(), "in-process".into());
        Entry {
            name: name.to_owned(),
            table,
        }
    }

    /// Sets another key of the table (`sha256`, `enabled`, ...).
    pub fn set(mut self, key: &str, value: impl Into<toml::Value>) -> Entry {
        self.table.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `[plugins.NAME.config] root`.
    pub fn root(self, root: &Path) -> Entry {
        let mut config = toml::Table::new();
        config.insert("root".into(), path_value(root));
        self.set("config", config)
    }
}

fn path_value(path: &Path) -> toml::Value {
    toml::Value::String(path.to_str().expect("test paths are UTF-8").to_owned())
}

/// Which exit status a failed command must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 2: bad usage or input.
    Input,
    /// 1: anything else.
    Failure,
    /// 1 or 2: either is a clean refusal.
    Refused,
}

/// A private folder with `data/` (the loaders' root) and `plugins.toml`.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    /// An empty sandbox: no plugins.toml yet.
    pub fn empty() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("export-host-test-")
            .tempdir()
            .expect("a temporary folder");
        std::fs::create_dir(dir.path().join("data")).expect("creating data/");
        Sandbox { dir }
    }

    /// A sandbox whose plugins.toml holds `entries`.
    pub fn new(entries: &[Entry]) -> Sandbox {
        let sandbox = Sandbox::empty();
        sandbox.register(entries);
        sandbox
    }

    /// A sandbox with the `csv` plugin rooted at its `data/`.
    pub fn with_csv() -> Sandbox {
        let sandbox = Sandbox::empty();
        sandbox.register(&[sandbox.csv()]);
        sandbox
    }

    /// A sandbox with the `csv` and `json` plugins rooted at its `data/`.
    pub fn with_csv_and_json() -> Sandbox {
        let sandbox = Sandbox::empty();
        sandbox.register(&[sandbox.csv(), sandbox.json()]);
        sandbox
    }

    /// The `csv` plugin, rooted at `data/`.
    pub fn csv(&self) -> Entry {
        Entry::new("csv", CSV_LIB).root(&self.data())
    }

    /// The `json` plugin, rooted at `data/`.
    pub fn json(&self) -> Entry {
        Entry::new("json", JSON_LIB).root(&self.data())
    }

    /// The sandbox folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The loaders' root.
    pub fn data(&self) -> PathBuf {
        self.path().join("data")
    }

    /// The plugins.toml.
    pub fn plugins_toml(&self) -> PathBuf {
        self.path().join("plugins.toml")
    }

    /// Writes plugins.toml with `entries` and no `dir` (every library path is absolute).
    pub fn register(&self, entries: &[Entry]) {
        let mut plugins = toml::Table::new();
        for entry in entries {
            plugins.insert(entry.name.clone(), toml::Value::Table(entry.table.clone()));
        }
        let mut file = toml::Table::new();
        file.insert("plugins".into(), toml::Value::Table(plugins));
        let text = toml::to_string(&file).expect("plugins.toml serialises");
        std::fs::write(self.plugins_toml(), text).expect("writing plugins.toml");
    }

    /// Writes `bytes` to `name` under `data/`; returns the file's path.
    pub fn put(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.data().join(name);
        std::fs::write(&path, bytes).expect("writing test data");
        path
    }

    /// Copies a file into the sandbox folder (not `data/`) under `name`.
    pub fn copy_in(&self, from: &Path, name: &str) -> PathBuf {
        let to = self.path().join(name);
        std::fs::copy(from, &to).unwrap_or_else(|err| panic!("copying {}: {err}", from.display()));
        to
    }

    /// Runs `export-host --plugins <plugins.toml> ARGS` in the sandbox folder.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_export-host"))
            .arg("--plugins")
            .arg(self.plugins_toml())
            .args(args)
            .current_dir(self.path())
            .env_remove("EXPORT_HOST_LOG")
            .env_remove("EXPORT_HOST_PLUGINS")
            .env_remove("NO_COLOR")
            .output()
            .expect("running export-host")
    }

    /// Runs `export-host export` with the selector and options as JSON, plus `extra` flags.
    pub fn export(
        &self,
        loader: &str,
        format: &str,
        selector: &Value,
        options: &Value,
        extra: &[&str],
    ) -> Output {
        let selector = selector.to_string();
        let options = options.to_string();
        let mut args = vec![
            "export",
            "--loader",
            loader,
            "--format",
            format,
            "--selector",
            &selector,
            "--options",
            &options,
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Exports `data/<path>` with `loader` in `format` and returns standard output.
    pub fn convert(&self, loader: &str, path: &str, format: &str) -> Vec<u8> {
        succeeded(&self.export(loader, format, &json!({ "path": path }), &json!({}), &[]))
    }

    /// `plugins list --json`: one JSON object per plugin.
    pub fn listed(&self) -> Vec<Value> {
        let output = succeeded(&self.run(&["plugins", "list", "--json"]));
        serde_json::from_slice(&output).expect("plugins list --json prints a JSON array")
    }

    /// The status `plugins list --json` gives plugin `name`.
    pub fn status(&self, name: &str) -> String {
        let listed = self.listed();
        listed
            .iter()
            .find(|p| p["plugin"] == name)
            .and_then(|p| p["status"].as_str())
            .unwrap_or_else(|| panic!("{name} is not listed: {listed:?}"))
            .to_owned()
    }

    /// Exports a small file csv -> csv, asserts it comes back unchanged and
    /// returns standard error (the load failures of other plugins are logged there).
    pub fn assert_csv_works(&self) -> String {
        self.put("small.csv", "id\n007\n");
        let output = self.export("csv", "csv", &json!({"path": "small.csv"}), &json!({}), &[]);
        assert_eq!(succeeded(&output), b"id\n007\n", "csv still works");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// Names in the sandbox folder, sorted.
    pub fn listing(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path())
            .expect("listing the sandbox")
            .map(|e| {
                e.expect("a folder entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

fn describe(output: &Output) -> String {
    format!(
        "status: {:?}\n--- stderr ---\n{}\n--- stdout (first 2000 bytes) ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout[..output.stdout.len().min(2000)])
    )
}

/// Asserts the command succeeded; returns its standard output.
pub fn succeeded(output: &Output) -> Vec<u8> {
    assert!(
        output.status.success(),
        "expected success\n{}",
        describe(output)
    );
    output.stdout.clone()
}

/// Asserts the command failed cleanly (an exit code, not a signal; no panic
/// of the host) with `exit`, and that standard error holds every needle.
/// Returns standard error.
pub fn refused(output: &Output, exit: Exit, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.signal(),
        None,
        "killed by a signal\n{}",
        describe(output)
    );
    let code = output.status.code().expect("an exit code");
    let wanted: &[i32] = match exit {
        Exit::Input => &[2],
        Exit::Failure => &[1],
        Exit::Refused => &[1, 2],
    };
    assert!(
        wanted.contains(&code),
        "expected exit code {wanted:?}\n{}",
        describe(output)
    );
    assert!(
        !stderr.contains("panicked at"),
        "the host itself panicked\n{}",
        describe(output)
    );
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "standard error lacks {needle:?}\n{}",
            describe(output)
        );
    }
    stderr
}

// ---------------------------------------------------------------------------
// Hard-case data

/// A CSV table: the header and the rows, every value as text.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Parses CSV bytes strictly (every row as wide as the header).
pub fn read_csv(bytes: &[u8]) -> Table {
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(bytes);
    let header = reader
        .headers()
        .expect("a CSV header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.expect("a CSV row").iter().map(str::to_owned).collect())
        .collect();
    Table { header, rows }
}

/// Writes a table as CSV, quoting only where needed, rows ended by `\n`.
pub fn write_csv(table: &Table) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer
        .write_record(&table.header)
        .expect("writing the header");
    for row in &table.rows {
        writer.write_record(row).expect("writing a row");
    }
    writer.into_inner().expect("flushing CSV")
}

/// The example conversations.
pub fn example_conversations() -> Table {
    let bytes = std::fs::read(examples_dir().join("conversations.csv"))
        .expect("examples/data/conversations.csv");
    read_csv(&bytes)
}

/// About 70 KB of text with every awkward character, for one cell.
pub fn big_cell() -> String {
    let piece = "Lorem, \"ipsum\"\n\tdolor\r\n你好 👋🏽 مرحبا e\u{301} =SUM(A1) ";
    let mut cell = String::with_capacity(72 * 1024);
    while cell.len() < 70 * 1024 {
        cell.push_str(piece);
    }
    cell
}

/// Every hard case: the example conversations, a row with a 70 KB cell and
/// a row whose fields are all empty.
pub fn hard_table() -> Table {
    let mut table = example_conversations();
    let width = table.header.len();
    let mut big = vec![String::new(); width];
    big[0] = "21".into();
    big[width - 1] = big_cell();
    table.rows.push(big);
    table.rows.push(vec![String::new(); width]);
    table
}

/// Whether a CSV text is the canonical spelling of a JSON number that fits
/// 64 bits: an integer without leading zeros or `+` that fits i64, or a
/// decimal without exponent, leading or trailing zeros, whose f64 prints back
/// as the same text. `007`, `1.50`, `1e5`, `NaN`, `-0` and integers beyond 64
/// bits are not.
pub fn canonical_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    let plain_int = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && (int == "0" || !int.starts_with('0'));
    if !plain_int || text == "-0" {
        return false;
    }
    match frac {
        None => text.parse::<i64>().is_ok(),
        Some(frac) => {
            !frac.is_empty()
                && frac.bytes().all(|b| b.is_ascii_digit())
                && !frac.ends_with('0')
                && text
                    .parse::<f64>()
                    .is_ok_and(|f| f.is_finite() && f.to_string() == text)
        }
    }
}

// ---------------------------------------------------------------------------
// JSON output

/// A JSON object with its members in document order and every value as raw text.
pub struct RawObject(pub Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(member);
                }
                Ok(RawObject(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

impl RawObject {
    /// The member names, in order.
    pub fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Parses JSON Lines: one object per non-empty line.
pub fn read_jsonl(bytes: &[u8]) -> Vec<RawObject> {
    let text = std::str::from_utf8(bytes).expect("JSON Lines output is UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "JSON Lines output must end with a newline"
    );
    text.lines()
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_str(line).unwrap_or_else(|err| {
                panic!("line {} is not a JSON object: {err}: {line:.200}", n + 1)
            })
        })
        .collect()
}

/// Parses a JSON document that is an array of objects.
pub fn read_json_array(bytes: &[u8]) -> Vec<RawObject> {
    serde_json::from_slice(bytes).unwrap_or_else(|err| {
        panic!(
            "output is not a JSON array of objects: {err}\n{}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])
        )
    })
}

/// Asserts that JSON rows carry the CSV table: the columns in order, and
/// every value a string equal to the CSV text, except canonical numbers
/// ([`canonical_number`]), which are numbers spelt exactly as the text.
pub fn assert_json_rows_match_csv(rows: &[RawObject], table: &Table) {
    assert_eq!(rows.len(), table.rows.len(), "row count");
    for (n, (row, record)) in rows.iter().zip(&table.rows).enumerate() {
        assert_eq!(row.keys(), table.header, "row {n}: member names and order");
        for ((name, raw), text) in row.0.iter().zip(record) {
            let raw = raw.get();
            if canonical_number(text) {
                assert_eq!(
                    raw, text,
                    "row {n}, {name}: a canonical number stays a number, spelt as written"
                );
            } else {
                let value: String = serde_json::from_str(raw).unwrap_or_else(|_| {
                    panic!("row {n}, {name}: {text:?} must be a JSON string, not {raw:.200}")
                });
                assert!(
                    value == *text,
                    "row {n}, {name}: {value:.200?} != {text:.200?}"
                );
            }
        }
    }
}

/// Asserts that two JSON values are the same: strings by their decoded text,
/// objects and arrays structurally, numbers and literals by their exact spelling.
pub fn assert_same_json(got: &RawValue, want: &RawValue, context: &str) {
    let (got, want) = (got.get(), want.get());
    match want.as_bytes().first() {
        Some(b'"') | Some(b'{') | Some(b'[') => {
            let got: Value = serde_json::from_str(got).expect("valid JSON");
            let want: Value = serde_json::from_str(want).expect("valid JSON");
            assert_eq!(got, want, "{context}");
        }
        _ => assert_eq!(got, want, "{context}: spelt as in the input"),
    }
}
