//! podgate's decision core: everything that decides a readiness gate from metrics and rule
//! text, with no I/O, no async runtime, no HTTP and no Kubernetes types.
//!
//! The exposition formats (`exposition`, `histogram`), the series store and PromQL subset
//! (`query`), the rule expressions (`expr`), rules and their validation from text (`rules`),
//! what a pod's peers say (`peers`), the per-(pod, rule) state machines and gates
//! (`decision`), one rule's evaluation (`evaluate`), a scraped body into a store (`body`),
//! rule unit tests (`ruletest`) and time in milliseconds (`time`). The `podgate` daemon
//! crate reads files, scrapes, queries Prometheus and talks to Kubernetes around it; this
//! crate never depends on it (docs/architecture.md has the map). Each layer has its own
//! error type.

pub mod body;
pub mod decision;
pub mod evaluate;
pub mod exposition;
pub mod expr;
pub mod histogram;
pub mod peers;
pub mod query;
pub mod rules;
pub mod ruletest;
pub mod time;
