//! The scrape-variable language (a PromQL subset evaluated on one pod's samples) and PromQL
//! templates for `promql:` variables.
//!
//! A scrape query is parsed once ([`parse`]) and evaluated after every scrape of a pod
//! against that pod's [`SeriesStore`] ([`Query::eval`]), yielding one number or "no data"
//! with a reason. The language reference is `docs/query.md`.

#[cfg(test)]
mod alloc_tests;
#[cfg(test)]
mod conformance_tests;
mod eval;
mod parse;
mod store;
#[cfg(test)]
mod store_histogram_tests;
mod template;
#[cfg(test)]
mod tests;

pub use eval::{EvalError, NoData, QueryValue};
pub use parse::MAX_QUERY_BYTES;
pub use store::{
    DEFAULT_MAX_HISTOGRAM_BUCKETS, DEFAULT_MAX_LABEL_BYTES, IngestError, IngestStats, Interest,
    ScrapedSample, SeriesStore, StoreLimits,
};
pub use template::{MAX_TEMPLATE_BYTES, Placeholder, RenderError, Template};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct QueryError {
    /// 1-based column in the query text.
    pub column: usize,
    pub message: String,
}

/// A compiled scrape query.
#[derive(Debug, Clone)]
pub struct Query {
    /// The query as written in the rule.
    pub source: String,
    expr: parse::QueryExpr,
}

/// Compiles a scrape query.
pub fn parse(src: &str) -> Result<Query, QueryError> {
    Ok(Query {
        source: src.to_string(),
        expr: parse::parse(src)?,
    })
}

impl Query {
    /// Evaluates the query on the pod's stored samples at `now_ms` (Unix milliseconds).
    pub fn eval(&self, store: &SeriesStore, now_ms: i64) -> Result<QueryValue, EvalError> {
        eval::eval(&self.expr, store, now_ms)
    }

    /// The metric name the query reads, when its selector names one.
    pub fn metric_name(&self) -> Option<&str> {
        self.expr.vector().selector().name.as_deref()
    }

    /// The range of its `rate`/`increase` window in milliseconds; 0 for an instant query.
    pub fn range_ms(&self) -> i64 {
        self.expr.vector().range_ms()
    }
}
