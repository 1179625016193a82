//! Rule files: the model, and validation from their text.
//!
//! A rule file holds `rules:`, a list of rules (see `docs/rules.md`). Loading validates the
//! whole set and either returns a [`RuleSet`] (plus warnings) or every [`Diagnostic`] found,
//! each with its file, line, column, rule and field. [`check_sources`] is what `podgate
//! check` reports. Reading the files from disk is the daemon's (`podgate::rules_dir`).

mod diag;
pub mod duration;
mod load;
mod model;
pub mod names;
mod selector;
mod validate;
mod yaml;

pub use diag::{Diagnostic, RulesError, Severity};
pub use load::{
    CheckReport, MAX_FILE_BYTES, MAX_RULES, RuleSource, SourceError, check_bytes, check_sources,
    decode_file, file_error, load_sources, load_str,
};
pub use model::{
    DEFAULT_FAILURE_THRESHOLD, DEFAULT_INTERVAL, DEFAULT_ON_ERROR, DEFAULT_ON_NO_DATA,
    DEFAULT_SUCCESS_THRESHOLD, DEFAULT_TIMEOUT, MaxUnavailable, Mode, Origin, PeersSpec, Policy,
    Port, PrometheusLabels, Rule, RuleSet, Scheme, ScrapeConfig, Var, VarSource,
};
pub use selector::{Operator, Requirement, Selector};
pub use validate::MAX_VARS;

// Rule texts shared with the daemon's tests through the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub mod testing;
#[cfg(test)]
mod tests;
