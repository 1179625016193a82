//! Querying a Prometheus server for `promql:` variables: the HTTP API client (instant queries
//! with auth read from files, custom headers and TLS), the parsed result, the join of a
//! batched result to pods, and the per-pod templated query.
//!
//! Behaviour worth knowing:
//! - Queries are POSTed form-encoded to `<url>/api/v1/query` with the per-rule timeout also
//!   passed as Prometheus's own `timeout` parameter. A 405 or 501 answer (a proxy that only
//!   lets GET through) makes the client retry with GET, and use GET from then on.
//! - The bearer token and the basic-auth password are read from files, re-read whenever the
//!   file changes (size, mtime or inode; a Kubernetes Secret volume's symlink swap changes the
//!   inode), and never logged or put into an error message. Custom header values are treated
//!   as secrets too. A server (or a proxy before it) that echoes a request's credentials in
//!   its error answer gets them replaced with `<redacted>` before the text is shown anywhere.
//! - TLS: with a CA file only that bundle is trusted; without one, the system's roots.
//!   `insecure_skip_verify` turns verification off and says so once in the log.
//! - A `vector` result is the normal case. A `scalar` result is accepted as one sample without
//!   labels (so `scalar(...)` or `vector(1)`-style templated queries work; in a batched query
//!   it has no `namespace`/`pod` labels and so gives no pod any data). `matrix` and `string`
//!   results are errors ("expected an instant vector, got matrix").
//! - Sample values keep NaN and ±Inf; whether NaN means "no data" is the caller's decision.
//! - Every [`PrometheusClient::query`] call is reported to an optional [`RequestObserver`]
//!   with its [`RequestResult`] (`ok` when it returned a vector) and duration, for
//!   `source_requests_total{source="prometheus"}` and its duration histogram.

mod client;
mod config;
mod error;
mod join;
mod pod_query;
mod redact;
mod response;
mod secrets;

pub use client::PrometheusClient;
pub use config::{BasicAuth, PromConfigError, PrometheusConfig};
pub use error::{PromError, PromErrorKind, RequestObserver, RequestResult};
pub use join::{DuplicateSeries, Joined, join};
pub use pod_query::{PodFacts, render_for_pod, single_value};
pub use response::{
    MAX_RESPONSE_BYTES, Sample, Vector, format_labels, parse_response, parse_value,
};

/// The `source` label value for this source's request metrics.
pub const SOURCE: &str = "prometheus";

#[cfg(test)]
mod tests;
