//! The scrape-variable language (standard PromQL within "one number per pod", evaluated on
//! one pod's samples) and PromQL templates for `promql:` variables.
//!
//! A scrape query is parsed once ([`parse`]) and evaluated after every scrape of a pod
//! against that pod's [`SeriesStore`] ([`Query::eval`]), yielding one number or "no data"
//! with a reason. The language reference is `docs/query.md`.

mod aggregate;
#[cfg(test)]
mod alloc_tests;
mod ast;
mod binary;
mod catalog;
mod classic;
#[cfg(test)]
mod conformance_native_tests;
#[cfg(test)]
mod conformance_tests;
mod context;
mod elementwise;
mod eval;
#[cfg(test)]
mod expr_tests;
mod float_range;
mod histogram;
mod histogram_range;
mod instant;
mod labels;
#[cfg(test)]
mod native_tests;
mod outcome;
mod parse;
mod range;
mod scan;
mod selector;
mod store;
#[cfg(test)]
mod store_histogram_tests;
#[cfg(test)]
mod store_property_tests;
#[cfg(test)]
mod store_reference;
mod stream;
mod template;
#[cfg(test)]
mod test_load;
#[cfg(test)]
mod tests;
mod types;

pub use outcome::{EvalError, NoData, QueryValue};
pub use parse::MAX_QUERY_BYTES;
pub use scan::QueryError;
pub use store::{
    DEFAULT_MAX_HISTOGRAM_BUCKETS, DEFAULT_MAX_LABEL_BYTES, IngestError, IngestStats, Interest,
    SampleValue, ScrapedSample, SeriesStore, StoreLimits,
};
pub use template::{MAX_TEMPLATE_BYTES, Placeholder, RenderError, Template};

/// A compiled scrape query.
#[derive(Debug, Clone)]
pub struct Query {
    /// The query as written in the rule.
    pub source: String,
    expr: ast::Expr,
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
        eval::eval(&self.expr, &self.source, store, now_ms)
    }

    /// Every element the query yields, labels as PromQL writes them (for tests).
    #[cfg(test)]
    pub(crate) fn eval_vector(
        &self,
        store: &SeriesStore,
        now_ms: i64,
    ) -> Result<Vec<(String, f64)>, EvalError> {
        eval::eval_vector(&self.expr, store, now_ms)
    }

    /// Every element the query yields, native histograms included (for tests).
    #[cfg(test)]
    pub(crate) fn eval_elements(
        &self,
        store: &SeriesStore,
        now_ms: i64,
    ) -> Result<Vec<(String, labels::Value<'static>)>, EvalError> {
        eval::eval_elements(&self.expr, store, now_ms)
    }

    /// The metric name the query reads, when all its selectors that name one name the same.
    pub fn metric_name(&self) -> Option<&str> {
        let mut names = self.metric_names();
        let first = names.next()?;
        names.all(|n| n == first).then_some(first)
    }

    /// The metric names its selectors name, in the order written (repeats included).
    pub fn metric_names(&self) -> impl Iterator<Item = &str> {
        let mut names = Vec::new();
        self.expr.selectors(&mut |s, _| {
            if let Some(n) = &s.name {
                names.push(&**n);
            }
        });
        names.into_iter()
    }

    /// How far back the query reads, in milliseconds: the longest range plus offset over all
    /// its selectors; 0 for an instant query.
    pub fn range_ms(&self) -> i64 {
        self.expr.reach_ms()
    }
}
