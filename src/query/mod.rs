//! The scrape-variable language (a PromQL subset evaluated on one pod's samples) and PromQL
//! templates for `promql:` variables.
//!
//! Placeholder interface; the query engine replaces it.

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
    pub source: String,
}

pub fn parse(src: &str) -> Result<Query, QueryError> {
    Ok(Query {
        source: src.to_string(),
    })
}

/// A compiled `promql:` template.
#[derive(Debug, Clone)]
pub struct Template {
    pub source: String,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, QueryError> {
        Ok(Template {
            source: src.to_string(),
        })
    }
}
