//! podgate: Kubernetes pod readiness gates decided from metrics.
//!
//! The library holds everything the `podgate` binary does, so tests and benchmarks use the
//! same code. The decision core is the `podgate-core` crate (no I/O, no async runtime, no
//! HTTP, no Kubernetes types); its modules are re-exported here so that `podgate::query`,
//! `podgate::rules`… name the same items. This crate is the daemon's side around it
//! (`kube`, `controller`, `source`, `rules_dir`, `reload`, `telemetry`, `webhook`, `cli`),
//! which the core never uses (docs/architecture.md has the map). Each layer has its own error
//! type.

pub use podgate_core::{
    body, decision, evaluate, exposition, expr, histogram, peers, query, rules, ruletest, time,
};

pub mod cli;
pub mod controller;
pub mod kube;
pub mod reload;
pub mod rules_dir;
pub mod source;
pub mod telemetry;
pub mod webhook;
