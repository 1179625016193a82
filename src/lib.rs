//! podgate: Kubernetes pod readiness gates decided from metrics.
//!
//! The library holds everything the `podgate` binary does, so tests and benchmarks use the
//! same code. The decision core (`rules`, `exposition`, `histogram`, `query`, `expr`, `peers`,
//! `decision`) has no Kubernetes types and no I/O in it.

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

/// Every error podgate reports. Each variant carries what the user needs to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Exposition(#[from] exposition::ParseError),
    #[error("{0}")]
    Query(#[from] query::QueryError),
    #[error("{0}")]
    Expr(#[from] expr::ExprError),
    #[error("{0}")]
    Rules(#[from] rules::RulesError),
    #[error("{0}")]
    Kube(#[from] kube::KubeError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
