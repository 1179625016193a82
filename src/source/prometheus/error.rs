//! What a query's failure says: the kind of failure (one line, naming what to fix), the
//! failed query shortened to one line, and the result label of the request metrics.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::query::RenderError;

/// How much of a query is shown in an error message.
pub(super) const QUERY_SHOWN_CHARS: usize = 120;

/// How much of a server's error text is shown in an error message.
pub(super) const DETAIL_SHOWN_CHARS: usize = 400;

/// How a request ended, for `source_requests_total{source="prometheus",result}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestResult {
    Ok,
    Error,
    Timeout,
}

impl RequestResult {
    /// The metric label value: `ok`, `error` or `timeout`.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestResult::Ok => "ok",
            RequestResult::Error => "error",
            RequestResult::Timeout => "timeout",
        }
    }
}

impl fmt::Display for RequestResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Called once per [`PrometheusClient::query`] with how it ended and how long it took.
pub type RequestObserver = Arc<dyn Fn(RequestResult, Duration) + Send + Sync>;

/// What went wrong with a query. The message is one line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromErrorKind {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot connect to {url}: {detail}")]
    Connect { url: String, detail: String },
    /// An HTTP error status without a Prometheus error in the body.
    #[error("HTTP {status}{}", detail_suffix(.detail))]
    Http { status: u16, detail: String },
    /// Prometheus answered `"status": "error"`.
    #[error("{error_type}: {message}")]
    Api {
        status: u16,
        error_type: String,
        message: String,
    },
    /// The answer is not a Prometheus API response.
    #[error("bad response: {0}")]
    BadResponse(String),
    #[error("expected an instant vector, got {result_type}{}", not_vector_hint(.result_type))]
    NotVector { result_type: String },
    /// The request could not be sent or its answer not read.
    #[error("request failed: {0}")]
    Request(String),
    /// A credentials file could not be used (the message names the file, never the secret).
    #[error("{0}")]
    Credentials(String),
    /// A templated query could not be rendered for the pod.
    #[error("{0}")]
    Render(RenderError),
    /// A templated query returned more than one series for a pod.
    #[error(
        "{count} series for one pod; a templated query must return at most one \
         (aggregate it, e.g. max(...))"
    )]
    SeriesCount { count: usize },
}

fn detail_suffix(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

fn not_vector_hint(result_type: &str) -> &'static str {
    if result_type == "matrix" {
        " (a range selector like x[5m] needs a function such as rate() around it)"
    } else {
        ""
    }
}

impl PromErrorKind {
    /// The metric label for a query that failed this way.
    pub fn request_result(&self) -> RequestResult {
        match self {
            PromErrorKind::Timeout(_) => RequestResult::Timeout,
            PromErrorKind::Api { error_type, .. } if error_type == "timeout" => {
                RequestResult::Timeout
            }
            _ => RequestResult::Error,
        }
    }
}

/// A failed query: the query (shortened to one line) and what went wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("prometheus query `{query}`: {kind}")]
pub struct PromError {
    /// The query, whitespace collapsed and cut to a readable length.
    pub query: String,
    pub kind: PromErrorKind,
}

impl PromError {
    pub fn new(query: &str, kind: PromErrorKind) -> PromError {
        PromError {
            query: shorten(query, QUERY_SHOWN_CHARS),
            kind,
        }
    }

    pub fn request_result(&self) -> RequestResult {
        self.kind.request_result()
    }
}

/// Collapses whitespace (newlines included) to single spaces and cuts to `max` characters,
/// so any text fits on one line.
pub(super) fn shorten(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 3));
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > 0 {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= max {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}
