//! How to reach the Prometheus server, as `podgate run`'s flags give it, and the error for a
//! configuration that cannot be used.

use std::fmt;
use std::path::PathBuf;

use super::redact::redact_url_text;

/// Headers the client sets itself; a custom header must not replace them.
pub(super) const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "accept-encoding",
    "accept",
    "user-agent",
];

/// Basic auth: the username, and the file holding the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub username: String,
    pub password_file: PathBuf,
}

/// How to reach the Prometheus server (from `podgate run`'s flags).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PrometheusConfig {
    /// Base URL, e.g. `http://prometheus.monitoring:9090` or `https://host/prometheus/`.
    pub url: String,
    pub bearer_token_file: Option<PathBuf>,
    pub basic_auth: Option<BasicAuth>,
    /// Extra request headers (name, value), e.g. a tenant header for a multi-tenant proxy.
    pub headers: Vec<(String, String)>,
    /// PEM bundle of the CAs to trust for `https`; None: the system roots.
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_verify: bool,
}

// Header values may be credentials: only their names are shown.
impl fmt::Debug for PrometheusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("PrometheusConfig")
            .field("url", &redact_url_text(&self.url))
            .field("bearer_token_file", &self.bearer_token_file)
            .field("basic_auth", &self.basic_auth)
            .field("headers", &header_names)
            .field("ca_file", &self.ca_file)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// The configuration cannot be used; says which setting and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("prometheus: {0}")]
pub struct PromConfigError(pub String);
