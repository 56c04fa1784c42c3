//! The worker pool of an isolated plugin, driven through the host library
//! with the real `export-host` binary as the worker: the host never maps the
//! library, workers are reused across exports and ended when idle, and a
//! reload that replaces the library ends the old workers (so the old code
//! is truly gone) and starts fresh ones.

mod common;

use common::*;
use export_host::pipeline::{self, ExportRequest, RunLimits, Sink};
use export_host::plugins::{LiveRegistry, PluginsConfig, Registry};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FAULTY_LIB: &str = "libexport_test_faulty.so";

fn use_the_real_binary_as_worker() {
    export_host::isolation::set_worker_executable(PathBuf::from(env!("CARGO_BIN_EXE_export-host")));
}

/// A sandbox whose plugin `plugin` is an isolated copy of the faulty
/// library at `lib/libplugin.so`, next to an in-process csv.
fn sandbox(idle_timeout: &str) -> (Sandbox, PathBuf) {
    use_the_real_binary_as_worker();
    let sandbox = Sandbox::empty();
    std::fs::create_dir(sandbox.path().join("lib")).expect("lib/");
    let copy = sandbox.path().join("lib/libplugin.so");
    std::fs::copy(library(FAULTY_LIB), &copy).expect("copying the plugin");
    sandbox.register(&[
        sandbox.csv(),
        Entry::new("plugin", &copy)
            .set("isolation", "process")
            .set("idle_timeout", idle_timeout),
    ]);
    (sandbox, copy)
}

fn load(sandbox: &Sandbox) -> Registry {
    let config = PluginsConfig::load(&sandbox.plugins_toml()).expect("plugins.toml");
    Registry::load(&config)
}

/// Runs `plugin/whoami` -> csv and returns the pid the loader ran in.
fn whoami(registry: &Registry) -> u32 {
    let request = ExportRequest {
        loader: "plugin/whoami".into(),
        format: "csv/csv".into(),
        selector: json!({}),
        options: json!({}),
        callback_url: None,
    };
    let prepared = pipeline::prepare(registry, &request, None).expect("a valid request");
    let limits = RunLimits {
        max_rows: 1000,
        max_bytes: 1 << 20,
        batch_size: 1024,
    };
    let sink = Sink::new(Vec::new(), limits.max_bytes, None, false).expect("a sink");
    let (bytes, summary) =
        pipeline::stream_export(&prepared, limits, sink, &mut |_| {}).expect("the export runs");
    assert_eq!(summary.rows, 1);
    let table = read_csv(&bytes);
    assert_eq!(table.header, ["pid"]);
    table.rows[0][0].parse().expect("a pid")
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn plugin_pids(registry: &Registry) -> Vec<u32> {
    registry
        .plugins()
        .iter()
        .find(|p| p.name == "plugin")
        .expect("plugin is loaded")
        .handle()
        .worker_pids()
}

#[test]
fn the_host_never_maps_an_isolated_library_and_reuses_its_worker() {
    let (sandbox, _) = sandbox("1h");
    let registry = load(&sandbox);
    assert!(registry.failures().is_empty(), "{:?}", registry.failures());
    let maps = std::fs::read_to_string("/proc/self/maps").expect("/proc/self/maps");
    assert!(
        !maps.contains("libplugin"),
        "the isolated library is mapped into the host"
    );
    let first = whoami(&registry);
    assert_ne!(first, std::process::id(), "the loader ran in a worker");
    assert_eq!(whoami(&registry), first, "the idle worker is reused");
    assert_eq!(plugin_pids(&registry), [first]);
    drop(registry);
    assert!(!alive(first), "dropping the registry ends its workers");
}

#[test]
fn idle_workers_are_ended() {
    let (sandbox, _) = sandbox("300ms");
    let registry = load(&sandbox);
    let pid = whoami(&registry);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) || !plugin_pids(&registry).is_empty() {
        assert!(Instant::now() < deadline, "idle worker {pid} still alive");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next export starts a new worker on demand.
    let next = whoami(&registry);
    assert_ne!(next, pid);
}

#[test]
fn a_reload_that_replaces_the_library_restarts_its_workers() {
    let (sandbox, copy) = sandbox("1h");
    let live = LiveRegistry::new(Arc::new(load(&sandbox)));
    let old = whoami(&live.current());
    assert!(alive(old));

    // Same file, same table: the plugin and its worker are kept.
    let report = live.reload(&sandbox.plugins_toml()).expect("reload");
    assert_eq!(report.kept.len(), 2, "{report:?}");
    assert_eq!(whoami(&live.current()), old);

    // A new library in place of the old one.
    let replacement = sandbox.path().join("lib/new.so");
    std::fs::copy(library(PANICKY_LIB), &replacement).expect("copying the new library");
    std::fs::rename(&replacement, &copy).expect("replacing the library");
    let report = live.reload(&sandbox.plugins_toml()).expect("reload");
    assert_eq!(report.replaced, ["plugin"], "{report:?}");
    assert!(!alive(old), "the old library's worker is gone with it");

    let current = live.current();
    let plugin = current
        .plugins()
        .iter()
        .find(|p| p.name == "plugin")
        .expect("the replaced plugin is loaded");
    assert_eq!(plugin.manifest().name, "panicky", "the new code is served");
    let fresh = plugin.handle().worker_pids();
    assert_eq!(fresh.len(), 1, "one fresh worker read the new manifest");
    assert!(!fresh.contains(&old));
}
