//! What the format tests share: the hard-case export, golden files, and
//! reading compressed exports back.

use super::{hard_table, succeeded, write_csv, Entry, Sandbox, Table};
use serde_json::{json, Value};
use std::io::Read as _;
use std::path::PathBuf;

/// Set to regenerate the golden files instead of comparing with them.
pub const UPDATE_GOLDEN: &str = "UPDATE_GOLDEN";

/// A sandbox with the csv plugin, the plugins `entries` gives for it, and
/// `data/hard.csv` holding [`hard_table`]; returns the table too.
pub fn hard_sandbox_with(entries: impl FnOnce(&Sandbox) -> Vec<Entry>) -> (Sandbox, Table) {
    let sandbox = Sandbox::empty();
    let mut all = vec![sandbox.csv()];
    all.extend(entries(&sandbox));
    sandbox.register(&all);
    let table = hard_table();
    sandbox.put("hard.csv", write_csv(&table));
    (sandbox, table)
}

/// Exports `data/hard.csv` in `format` with `-o FILE`; returns the file.
pub fn export_hard(sandbox: &Sandbox, format: &str, options: Value, extra: &[&str]) -> Vec<u8> {
    let file = format!("out-{}.{format}", std::process::id());
    let mut flags = vec!["-o", file.as_str()];
    flags.extend_from_slice(extra);
    let output = sandbox.export(
        "csv",
        format,
        &json!({"path": "hard.csv"}),
        &options,
        &flags,
    );
    succeeded(&output);
    let path = sandbox.path().join(&file);
    let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    std::fs::remove_file(&path).expect("removing the export");
    bytes
}

/// `tests/golden/<name>`.
pub fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `got` with the golden file `name`, or rewrites it when
/// `UPDATE_GOLDEN` is set. `test` names the test binary, for the command
/// that regenerates it.
pub fn assert_golden(name: &str, got: &[u8], test: &str) {
    let path = golden_path(name);
    let regenerate = format!("{UPDATE_GOLDEN}=1 cargo test --release -p export-host --test {test}");
    if std::env::var_os(UPDATE_GOLDEN).is_some() {
        std::fs::create_dir_all(path.parent().expect("a folder")).expect("creating golden/");
        std::fs::write(&path, got).expect("writing the golden file");
        return;
    }
    let want = std::fs::read(&path)
        .unwrap_or_else(|err| panic!("{}: {err}; create it with {regenerate}", path.display()));
    if got != want {
        let got = String::from_utf8_lossy(got);
        let want = String::from_utf8_lossy(&want);
        let line = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
        panic!(
            "{name} differs from {} at line {}:\n got: {:.300?}\nwant: {:.300?}\n\
             If the change is intended: {regenerate}, and review the diff.",
            path.display(),
            line + 1,
            got.lines().nth(line).unwrap_or("<end>"),
            want.lines().nth(line).unwrap_or("<end>"),
        );
    }
}

/// `bytes` decompressed with `codec` (`gzip` or `zstd`).
pub fn decompress(codec: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match codec {
        "gzip" => {
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        "zstd" => out = zstd::decode_all(bytes).expect("valid zstd"),
        other => panic!("unknown codec {other}"),
    }
    out
}

/// Exports the hard cases in `format` plain, then with each compression,
/// and checks each decompresses to exactly the plain bytes.
pub fn assert_compression_round_trips(sandbox: &Sandbox, format: &str) {
    let plain = export_hard(sandbox, format, json!({}), &[]);
    for codec in ["gzip", "zstd"] {
        let packed = export_hard(sandbox, format, json!({ "compression": codec }), &[]);
        assert!(packed != plain, "{format} {codec}: not compressed");
        assert!(
            decompress(codec, &packed) == plain,
            "{format} {codec}: decompressed bytes differ"
        );
    }
}
