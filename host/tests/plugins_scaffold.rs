//! `export-host plugins new`: the crate it writes builds on its own, passes
//! its unit tests (plugin-api's test helpers) and passes `plugins check`
//! unchanged. Bad names and occupied folders are refused.
//!
//! The new crates build into one shared folder, `target/scaffold`, so a
//! second run is incremental; the builds run one at a time.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// One cargo build at a time: they share `target/scaffold`.
static BUILDS: Mutex<()> = Mutex::new(());

/// `target/scaffold`, next to the profile folder the host was built in.
fn scaffold_target() -> PathBuf {
    target_dir()
        .parent()
        .expect("the profile folder is inside the target folder")
        .join("scaffold")
}

fn cargo(dir: &Path, args: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", scaffold_target())
        // The outer `cargo test` sets these for its own package.
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PKG_NAME")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .output()
        .expect("running cargo");
    assert!(
        output.status.success(),
        "cargo {args:?} failed in {}\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `export-host plugins new NAME --kind KIND --path DIR`.
fn plugins_new(sandbox: &Sandbox, name: &str, kind: &str, dir: &Path) -> Output {
    sandbox.run(&[
        "plugins",
        "new",
        name,
        "--kind",
        kind,
        "--path",
        dir.to_str().unwrap(),
    ])
}

/// Writes plugin `name` of `kind`, builds and tests it, and returns the
/// crate's folder and the built library.
fn new_plugin(sandbox: &Sandbox, name: &str, kind: &str) -> (PathBuf, PathBuf) {
    let dir = sandbox.path().join(name);
    let output = plugins_new(sandbox, name, kind, &dir);
    let report = String::from_utf8(succeeded(&output)).unwrap();
    assert!(
        report.contains(&format!("lib{}.so", name.replace('-', "_"))),
        "{report}"
    );
    for file in ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"] {
        assert!(dir.join(file).is_file(), "{file} was not written");
    }
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains("crate-type = [\"cdylib\"]"), "{manifest}");
    assert!(manifest.contains("\n[workspace]"), "{manifest}");
    let plugin_api = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugin-api")
        .canonicalize()
        .unwrap();
    assert!(
        manifest.contains(&format!("path = \"{}\"", plugin_api.display())),
        "the dependency points at this checkout's plugin-api:\n{manifest}"
    );

    // Pin the dependencies to this checkout's versions: the build needs no
    // registry and reuses `target/scaffold` from one run to the next.
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock"),
        dir.join("Cargo.lock"),
    )
    .expect("copying Cargo.lock");
    let _one_at_a_time = BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    cargo(&dir, &["build", "--release"]);
    cargo(&dir, &["test", "--release"]);
    let library = scaffold_target()
        .join("release")
        .join(format!("lib{}.so", name.replace('-', "_")));
    assert!(library.is_file(), "{} was not built", library.display());
    (dir, library)
}

/// `plugins check LIBRARY EXTRA...` passes with no FAIL row, and its table
/// has each of `rows`.
fn check_passes(sandbox: &Sandbox, library: &Path, extra: &[&str], rows: &[&str]) {
    let mut args = vec!["plugins", "check", library.to_str().unwrap()];
    args.extend_from_slice(extra);
    let output = sandbox.run(&args);
    let table = String::from_utf8(succeeded(&output)).unwrap();
    assert!(!table.contains("FAIL"), "{table}");
    assert!(table.contains("checks passed"), "{table}");
    for row in rows {
        assert!(table.contains(row), "missing {row:?}:\n{table}");
    }
}

/// A successful export of the file at `path` from `loader` to `format`;
/// returns what it wrote.
fn export_file(sandbox: &Sandbox, loader: &str, format: &str, path: &str) -> String {
    let output = sandbox.export(
        loader,
        format,
        &serde_json::json!({ "path": path }),
        &serde_json::json!({}),
        &[],
    );
    String::from_utf8(succeeded(&output)).unwrap()
}

#[test]
fn a_new_formatter_builds_and_passes_the_battery() {
    let sandbox = Sandbox::empty();
    let (_, library) = new_plugin(&sandbox, "acme-table", "formatter");
    check_passes(
        &sandbox,
        &library,
        &[],
        &[
            "ok    formatter \"acme-table\": empty stream",
            "ok    formatter \"acme-table\": every promised type",
            "ok    formatter \"acme-table\": Unicode",
            "ok    formatter \"acme-table\": 1,000,000 rows in flat memory",
            "ok    formatter \"acme-table\": invalid options refused",
        ],
    );

    // And the host exports through it.
    sandbox.put("people.csv", "id,name\n1,ada | lovelace\n");
    sandbox.register(&[sandbox.csv(), Entry::new("acme-table", &library)]);
    assert_eq!(
        export_file(&sandbox, "csv", "acme-table", "people.csv"),
        "| id | name |\n| --- | --- |\n| 1 | ada \\| lovelace |\n"
    );
}

#[test]
fn a_new_loader_builds_and_passes_the_battery() {
    let sandbox = Sandbox::empty();
    let (dir, library) = new_plugin(&sandbox, "acme_lines", "loader");
    let config = serde_json::json!({ "root": dir }).to_string();
    check_passes(
        &sandbox,
        &library,
        &[
            "--config",
            &config,
            "--selector",
            r#"acme_lines={"path":"README.md"}"#,
        ],
        &[
            "ok    config",
            "ok    loader \"acme_lines\": invalid selectors refused",
            "ok    loader \"acme_lines\": streams a selector",
        ],
    );

    sandbox.put("notes.txt", "first\nsecond, with a comma\n");
    sandbox.register(&[
        sandbox.csv(),
        Entry::new("acme_lines", &library).root(&sandbox.data()),
    ]);
    assert_eq!(
        export_file(&sandbox, "acme_lines", "csv", "notes.txt"),
        "line,text\n1,first\n2,\"second, with a comma\"\n"
    );
}

#[test]
fn bad_names_are_refused() {
    let sandbox = Sandbox::empty();
    for name in [
        "Acme",
        "1acme",
        "acme!",
        "acme-",
        "fn",
        "test",
        "serde",
        "export-plugin-api",
    ] {
        let dir = sandbox.path().join("out");
        let output = plugins_new(&sandbox, name, "loader", &dir);
        refused(&output, Exit::Input, &["cannot be a plugin name", name]);
        assert!(!dir.exists(), "nothing is written for {name:?}");
    }
}

#[test]
fn an_occupied_folder_is_refused_and_left_alone() {
    let sandbox = Sandbox::empty();
    let dir = sandbox.path().join("taken");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("keep.txt"), "mine").unwrap();
    let file = sandbox.path().join("a-file");
    std::fs::write(&file, "mine").unwrap();
    for target in [&dir, &file] {
        let output = plugins_new(&sandbox, "acme", "formatter", target);
        refused(
            &output,
            Exit::Input,
            &["already exists", "not an empty folder"],
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

    // An empty folder is fine, and the default folder is ./NAME.
    let empty = sandbox.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    succeeded(&plugins_new(&sandbox, "acme", "formatter", &empty));
    assert!(empty.join("src/lib.rs").is_file());
    succeeded(&sandbox.run(&["plugins", "new", "acme-default", "--kind", "loader"]));
    assert!(sandbox.path().join("acme-default/Cargo.toml").is_file());
}
