//! podgate's integration tests, one test binary for all of them.
//!
//! Each file under `tests/` is a module of this crate (`tests/daemon.rs` is `daemon`, and
//! `cargo test --test integration daemon::` runs it alone). One binary instead of one per file:
//! every test binary links the whole dependency tree (kube, tokio, reqwest, axum), so twenty
//! of them cost gigabytes of disk and a link each. `exposition_alloc` stays a binary of its
//! own because it installs a counting global allocator.

mod support;

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
mod kube_layer;
mod prometheus_source;
mod scrape;
mod security;
mod webhook;
