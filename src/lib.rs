//! podgate: Kubernetes pod readiness gates decided from metrics.
//!
//! The library holds everything the `podgate` binary does, so tests and benchmarks use the
//! same code. The decision core (`rules`, `exposition`, `histogram`, `query`, `expr`, `peers`,
//! `decision`, `evaluate`, `time`) has no Kubernetes types and no I/O in it; the daemon's
//! side (`kube`, `controller`, `source`, `reload`, `telemetry`, `webhook`, `cli`) uses it and
//! is never used by it (docs/architecture.md has the map). Each layer has its own error type.

pub mod cli;
pub mod controller;
pub mod decision;
pub mod evaluate;
pub mod exposition;
pub mod expr;
pub mod histogram;
pub mod kube;
pub mod peers;
pub mod query;
pub mod reload;
pub mod rules;
pub mod ruletest;
pub mod source;
pub mod telemetry;
pub mod time;
pub mod webhook;
