//! podgate's integration tests, one test binary for all of them.
//!
//! Each file under `tests/` is a module of this crate (`tests/daemon.rs` is `daemon`, and
//! `cargo test --test integration daemon::` runs it alone). One binary instead of one per file:
//! every test binary links the whole dependency tree (kube, tokio, reqwest, axum), so twenty
//! of them cost gigabytes of disk and a link each. `exposition_alloc` stays a binary of its
//! own because it installs a counting global allocator.

mod support;

mod alerts;
mod cli;
mod daemon;
mod daemon_ha;
mod daemon_metrics;
mod daemon_pods;
mod daemon_promql;
mod daemon_reload;
mod daemon_safety;
mod daemon_sources;
mod dashboards;
mod deploy_manifests;
mod exposition_fixtures;
mod faults_kube;
mod faults_reload;
mod faults_sources;
mod harness_smoke;
mod helm_chart;
mod image;
mod kube_layer;
mod native_prometheus;
mod openmetrics_suite;
mod prometheus_source;
mod rollout;
mod rollout_peers;
mod scrape;
mod security;
mod webhook;

/// With `autotests = false`, a new file in `tests/` that is not declared above would never be
/// compiled or run, silently: every `*.rs` file there must be a module here or a `[[test]]`
/// of its own in Cargo.toml.
#[test]
fn every_test_file_is_declared() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let this = include_str!("integration.rs");
    let manifest = include_str!("../Cargo.toml");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut missing = Vec::new();
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .path();
        let (Some(stem), Some("rs")) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        let declared = stem == "integration"
            || this.lines().any(|l| l == format!("mod {stem};"))
            || manifest.contains(&format!("path = \"tests/{stem}.rs\""));
        if !declared {
            missing.push(path.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "test files neither declared in tests/integration.rs nor a [[test]] in Cargo.toml \
         (they would never run): {missing:?}"
    );
}
