//! The import rules of docs/architecture.md ("Layers of the host", "No
//! import cycles"), checked on the sources: the host's top-level modules
//! import only from the layers below them, and no crate of the workspace
//! (first-party plugins and test plugins included) has two top-level
//! modules that import each other, directly or around a loop.
//!
//! An import is a `crate::NAME` path (also inside `crate::{...}`) outside a
//! comment, or `super::NAME` in a file directly under `src/`. Re-exports at
//! the crate root (`crate::Caller`) name no module and are not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The host's layers from the top down, as docs/architecture.md draws them.
/// A module may import any module listed after it, never one before it.
/// `cli/` is the binary's and sees the library only as `export_host::`.
const HOST_LAYERS: &[&str] = &[
    "server",
    "service",
    "pipeline",
    "conformance",
    "plugins",
    "isolation",
    "library",
    "webhooks",
    "records",
    "storage",
    "config",
    "scaffold",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf()
}

/// Every crate's `src/` in the workspace.
fn crate_sources() -> Vec<PathBuf> {
    let root = workspace();
    let mut sources = vec![root.join("host/src"), root.join("plugin-api/src")];
    for group in ["plugins", "test-plugins"] {
        let mut members: Vec<PathBuf> = fs::read_dir(root.join(group))
            .expect("workspace member folder")
            .map(|entry| entry.expect("directory entry").path().join("src"))
            .filter(|src| src.is_dir())
            .collect();
        members.sort();
        sources.extend(members);
    }
    sources
}

/// The top-level modules of a crate: `src/NAME.rs` and `src/NAME/`, not
/// the crate roots and not `src/bin/`.
fn top_level_modules(src: &Path) -> BTreeSet<String> {
    fs::read_dir(src)
        .expect("src folder")
        .filter_map(|entry| {
            let path = entry.expect("directory entry").path();
            let name = path.file_name()?.to_str()?.to_owned();
            if path.is_dir() {
                (name != "bin").then_some(name)
            } else {
                let stem = name.strip_suffix(".rs")?;
                (!matches!(stem, "lib" | "main")).then(|| stem.to_owned())
            }
        })
        .collect()
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

fn identifier_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first path segment of each item of a `{...}` group that starts
/// `text` (after the `{`), up to its matching `}`.
fn group_heads(text: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut item_start = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                heads.push(identifier_at(text[item_start..].trim_start()));
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                heads.push(identifier_at(text[item_start..].trim_start()));
                item_start = i + 1;
            }
            _ => {}
        }
    }
    heads
}

/// The names that follow `prefix` in `code`: `prefix NAME` and every head
/// of `prefix {A, B::C}`.
fn names_after<'c>(code: &'c str, prefix: &str) -> Vec<&'c str> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let preceded_by_ident = code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if preceded_by_ident {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        match rest.strip_prefix('{') {
            Some(group) => names.extend(group_heads(group)),
            None => names.push(identifier_at(rest)),
        }
    }
    names
}

/// Which top-level modules each top-level module of the crate at `src`
/// imports.
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules = top_level_modules(src);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).expect("file under src");
        let mut parts = relative.components();
        let first = parts
            .next()
            .and_then(|part| part.as_os_str().to_str())
            .expect("a path inside src");
        let module = first.strip_suffix(".rs").unwrap_or(first);
        if !modules.contains(module) {
            continue;
        }
        let directly_under_src = relative.components().count() == 1;
        let text = fs::read_to_string(&file).expect("readable source");
        let code: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let mut named = names_after(&code, "crate::");
        if directly_under_src {
            named.extend(names_after(&code, "super::"));
        }
        for name in named {
            if name != module && modules.contains(name) {
                imports
                    .entry(module.to_owned())
                    .or_default()
                    .insert(name.to_owned());
            }
        }
    }
    imports
}

/// A loop through `start`, as the list of modules around it, if any.
fn loop_through(start: &str, imports: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_owned()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("a path is never empty");
        for next in imports.get(last).into_iter().flatten() {
            if next == start {
                let mut around = path.clone();
                around.push(start.to_owned());
                return Some(around);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

#[test]
fn no_crate_has_an_import_loop_between_its_top_level_modules() {
    let mut loops = Vec::new();
    for src in crate_sources() {
        let imports = module_imports(&src);
        for module in imports.keys() {
            if let Some(around) = loop_through(module, &imports) {
                loops.push(format!("{}: {}", src.display(), around.join(" -> ")));
            }
        }
    }
    assert!(
        loops.is_empty(),
        "import loops between top-level modules (move the shared part below both):\n{}",
        loops.join("\n")
    );
}

#[test]
fn host_modules_import_only_from_the_layers_below_them() {
    let src = workspace().join("host/src");
    let modules = top_level_modules(&src);
    for module in &modules {
        assert!(
            module == "cli" || HOST_LAYERS.contains(&module.as_str()),
            "host/src/{module} is in no layer: place it in docs/architecture.md and in HOST_LAYERS"
        );
    }
    let rank = |name: &str| HOST_LAYERS.iter().position(|layer| *layer == name);
    let mut upward = Vec::new();
    for (module, imported) in module_imports(&src) {
        let Some(own) = rank(&module) else { continue };
        for name in imported {
            if rank(&name).is_some_and(|theirs| theirs <= own) {
                upward.push(format!("{module} imports {name}"));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layer order of docs/architecture.md:\n{}",
        upward.join("\n")
    );
}

/// The scan must see the imports it is there to police: if it found none,
/// the two tests above would pass whatever the code does.
#[test]
fn the_scan_sees_known_imports() {
    let host = module_imports(&workspace().join("host/src"));
    assert!(host["server"].contains("service"), "{host:?}");
    assert!(host["pipeline"].contains("plugins"), "{host:?}");
    assert_eq!(
        names_after("use crate::{a::B, c, d::{e, f}};", "crate::"),
        ["a", "c", "d"]
    );
    assert_eq!(names_after("(super::y, my_super::z)", "super::"), ["y"]);
    let around = loop_through(
        "a",
        &BTreeMap::from([
            ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
            ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
        ]),
    );
    assert_eq!(around, Some(vec!["a".into(), "b".into(), "a".into()]));
}
