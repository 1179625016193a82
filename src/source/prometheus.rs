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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::scrape::error_chain;
use crate::query::{Placeholder, RenderError, Template};
use crate::rules::PrometheusLabels;

/// The `source` label value for this source's request metrics.
pub const SOURCE: &str = "prometheus";

/// The largest API response read (a batched result over many thousand pods fits easily).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// The largest secret file read; anything bigger is not a token or a password.
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// How long after a file's mtime its content may still change without the mtime changing
/// (coarse filesystem timestamps); a file read within this window is re-read next time.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// How much of a query is shown in an error message.
const QUERY_SHOWN_CHARS: usize = 120;

/// How much of a server's error text is shown in an error message.
const DETAIL_SHOWN_CHARS: usize = 400;

/// Headers the client sets itself; a custom header must not replace them.
const RESERVED_HEADERS: &[&str] = &[
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

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// All labels, including `__name__` when the result has one.
    pub labels: BTreeMap<String, String>,
    /// As Prometheus sent it, NaN and ±Inf included.
    pub value: f64,
}

/// The result of an instant query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vector {
    pub samples: Vec<Sample>,
    /// The response's `warnings` (e.g. a partial response).
    pub warnings: Vec<String>,
    /// The response's `infos` (newer Prometheus versions' hints).
    pub infos: Vec<String>,
}

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

/// Whether `needle` (non-empty) occurs in `haystack`.
fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

const REDACTED: &str = "<redacted>";

/// `text` with every occurrence of each (non-empty) secret replaced; longer secrets first, so
/// one that contains another is replaced whole.
fn redact(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in sorted {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

impl PromErrorKind {
    /// The same error with every secret in `secrets` removed from its texts.
    fn redact(self, secrets: &[String]) -> PromErrorKind {
        let r = |t: String| redact(&t, secrets);
        match self {
            PromErrorKind::Connect { url, detail } => PromErrorKind::Connect {
                url: r(url),
                detail: r(detail),
            },
            PromErrorKind::Http { status, detail } => PromErrorKind::Http {
                status,
                detail: r(detail),
            },
            PromErrorKind::Api {
                status,
                error_type,
                message,
            } => PromErrorKind::Api {
                status,
                error_type: r(error_type),
                message: r(message),
            },
            PromErrorKind::BadResponse(t) => PromErrorKind::BadResponse(r(t)),
            PromErrorKind::NotVector { result_type } => PromErrorKind::NotVector {
                result_type: r(result_type),
            },
            PromErrorKind::Request(t) => PromErrorKind::Request(r(t)),
            other => other,
        }
    }

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
fn shorten(text: &str, max: usize) -> String {
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

// ---------------------------------------------------------------------------------------
// Parsing the API response

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

/// Just the envelope: used when the whole answer does not parse, to still show its error.
#[derive(Deserialize)]
struct ApiEnvelope {
    status: String,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<VectorItem>),
    Scalar((f64, String)),
    Matrix(IgnoredAny),
    String(IgnoredAny),
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
    histogram: Option<IgnoredAny>,
}

/// Parses a sample value as Prometheus writes it: a decimal number, `NaN`, `+Inf` or `-Inf`.
pub fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        // Rust would also accept "inf", "infinity" or "nan" in any case; Prometheus never
        // writes those, so they are treated as garbage.
        _ if !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
}

fn sample_value(text: &str, labels: &BTreeMap<String, String>) -> Result<f64, PromErrorKind> {
    parse_value(text).ok_or_else(|| {
        PromErrorKind::BadResponse(format!(
            "sample value {:?} of {} is not a number",
            shorten(text, 40),
            format_labels(labels)
        ))
    })
}

/// `{a="1", b="2"}`, cut to a readable length.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    shorten(&format!("{{{}}}", inner.join(", ")), 200)
}

/// Turns an API answer (HTTP status and body) into a vector or the reason it is not one.
pub fn parse_response(status: u16, body: &[u8]) -> Result<Vector, PromErrorKind> {
    let ok_status = (200..300).contains(&status);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(if ok_status {
            PromErrorKind::BadResponse("empty answer".to_string())
        } else {
            http_error(status, body)
        });
    }
    let parsed: ApiResponse = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(e) => {
            // A malformed `data` must not hide an error the envelope carries.
            if let Ok(envelope) = serde_json::from_slice::<ApiEnvelope>(body)
                && envelope.status == "error"
            {
                return Err(api_error(status, envelope.error_type, envelope.error));
            }
            if !ok_status {
                return Err(http_error(status, body));
            }
            return Err(PromErrorKind::BadResponse(shorten(
                &format!("not a Prometheus API answer ({e})"),
                DETAIL_SHOWN_CHARS,
            )));
        }
    };
    match parsed.status.as_str() {
        "error" => return Err(api_error(status, parsed.error_type, parsed.error)),
        "success" if ok_status => {}
        // Some other JSON (e.g. a Kubernetes Status from a proxy) or a success with an error
        // status: the HTTP status is the best description.
        _ if !ok_status => return Err(http_error(status, body)),
        other => {
            return Err(PromErrorKind::BadResponse(format!(
                "status {:?}, expected \"success\" or \"error\"",
                shorten(other, 40)
            )));
        }
    }
    let Some(data) = parsed.data else {
        return Err(PromErrorKind::BadResponse(
            "a successful answer without data".to_string(),
        ));
    };
    let samples = match data {
        Data::Vector(items) => {
            let mut samples = Vec::with_capacity(items.len());
            for item in items {
                let value = match (item.value, item.histogram) {
                    (Some((_, text)), _) => sample_value(&text, &item.metric)?,
                    (None, Some(_)) => {
                        return Err(PromErrorKind::BadResponse(format!(
                            "{} is a native histogram sample, not a number; use \
                             histogram_quantile(), histogram_count() or histogram_sum()",
                            format_labels(&item.metric)
                        )));
                    }
                    (None, None) => {
                        return Err(PromErrorKind::BadResponse(format!(
                            "vector sample {} has no value",
                            format_labels(&item.metric)
                        )));
                    }
                };
                samples.push(Sample {
                    labels: item.metric,
                    value,
                });
            }
            samples
        }
        Data::Scalar((_, text)) => {
            let labels = BTreeMap::new();
            let value = sample_value(&text, &labels)?;
            vec![Sample { labels, value }]
        }
        Data::Matrix(_) => {
            return Err(PromErrorKind::NotVector {
                result_type: "matrix".to_string(),
            });
        }
        Data::String(_) => {
            return Err(PromErrorKind::NotVector {
                result_type: "string".to_string(),
            });
        }
    };
    Ok(Vector {
        samples,
        warnings: parsed.warnings,
        infos: parsed.infos,
    })
}

fn api_error(status: u16, error_type: Option<String>, error: Option<String>) -> PromErrorKind {
    PromErrorKind::Api {
        status,
        error_type: error_type
            .filter(|t| !t.trim().is_empty())
            .map_or_else(|| "error".to_string(), |t| shorten(&t, 40)),
        message: shorten(
            error.as_deref().unwrap_or("(no error text)"),
            DETAIL_SHOWN_CHARS,
        ),
    }
}

fn http_error(status: u16, body: &[u8]) -> PromErrorKind {
    let text = String::from_utf8_lossy(body.get(..2048).unwrap_or(body));
    PromErrorKind::Http {
        status,
        detail: shorten(&text, 200),
    }
}

// ---------------------------------------------------------------------------------------
// Batched queries: joining a result to pods

/// A pod's entry in a joined result.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    One(f64),
    /// This many series carry the pod's labels: the query must aggregate.
    Many(usize),
}

/// A batched result keyed by `(namespace, pod)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    by_namespace: HashMap<String, HashMap<String, Slot>>,
    ignored: usize,
    ignored_example: Option<BTreeMap<String, String>>,
    namespace_label: String,
    pod_label: String,
}

/// Several series of a batched result carry the same pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{count} series for {namespace}/{pod}; aggregate with max by ({namespace_label}, {pod_label})"
)]
pub struct DuplicateSeries {
    pub namespace: String,
    pub pod: String,
    pub count: usize,
    pub namespace_label: String,
    pub pod_label: String,
}

/// Joins a batched result to pods by the namespace and pod labels. Series without both (an
/// empty value counts as absent, as in Prometheus) are ignored and counted.
pub fn join(vector: Vector, labels: &PrometheusLabels) -> Joined {
    let mut joined = Joined {
        by_namespace: HashMap::new(),
        ignored: 0,
        ignored_example: None,
        namespace_label: labels.namespace_label.clone(),
        pod_label: labels.pod_label.clone(),
    };
    for mut sample in vector.samples {
        let namespace = sample
            .labels
            .remove(&labels.namespace_label)
            .filter(|v| !v.is_empty());
        let pod = sample
            .labels
            .remove(&labels.pod_label)
            .filter(|v| !v.is_empty());
        let (Some(namespace), Some(pod)) = (namespace, pod) else {
            joined.ignored += 1;
            if joined.ignored_example.is_none() {
                joined.ignored_example = Some(sample.labels);
            }
            continue;
        };
        joined
            .by_namespace
            .entry(namespace)
            .or_default()
            .entry(pod)
            .and_modify(|slot| {
                *slot = match *slot {
                    Slot::One(_) => Slot::Many(2),
                    Slot::Many(n) => Slot::Many(n + 1),
                }
            })
            .or_insert(Slot::One(sample.value));
    }
    joined
}

impl Joined {
    /// The pod's value (NaN passed through); `Ok(None)` when the result has no series for it
    /// (no data); an error when it has several.
    pub fn get(&self, namespace: &str, pod: &str) -> Result<Option<f64>, DuplicateSeries> {
        match self.by_namespace.get(namespace).and_then(|p| p.get(pod)) {
            None => Ok(None),
            Some(Slot::One(v)) => Ok(Some(*v)),
            Some(Slot::Many(count)) => Err(DuplicateSeries {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                count: *count,
                namespace_label: self.namespace_label.clone(),
                pod_label: self.pod_label.clone(),
            }),
        }
    }

    /// How many distinct pods the result has series for.
    pub fn pods(&self) -> usize {
        self.by_namespace.values().map(HashMap::len).sum()
    }

    /// How many of those pods have more than one series.
    pub fn duplicated_pods(&self) -> usize {
        self.by_namespace
            .values()
            .flat_map(HashMap::values)
            .filter(|s| matches!(s, Slot::Many(_)))
            .count()
    }

    /// How many series lacked the namespace or pod label and were ignored.
    pub fn ignored(&self) -> usize {
        self.ignored
    }

    /// The labels of the first ignored series (without the join labels), for a log message.
    pub fn ignored_example(&self) -> Option<&BTreeMap<String, String>> {
        self.ignored_example.as_ref()
    }
}

// ---------------------------------------------------------------------------------------
// Templated queries

/// What a templated query may know about a pod (filled from the pod by the caller).
#[derive(Debug, Clone, Copy)]
pub struct PodFacts<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// `spec.nodeName`, None before scheduling.
    pub node: Option<&'a str>,
    /// `status.podIP`, None before it has one.
    pub pod_ip: Option<&'a str>,
    pub labels: &'a BTreeMap<String, String>,
}

impl<'a> PodFacts<'a> {
    /// The value of a placeholder for this pod; None when it has none (an empty name, node or
    /// IP counts as none; a label may be present with an empty value).
    pub fn value(&self, placeholder: &Placeholder) -> Option<&'a str> {
        let non_empty = |s: &'a str| Some(s).filter(|s| !s.is_empty());
        match placeholder {
            Placeholder::Pod => non_empty(self.name),
            Placeholder::Namespace => non_empty(self.namespace),
            Placeholder::Node => self.node.and_then(non_empty),
            Placeholder::PodIp => self.pod_ip.and_then(non_empty),
            Placeholder::Label(key) => self.labels.get(key).map(String::as_str),
        }
    }
}

/// The query a template gives for one pod, values escaped for PromQL string literals.
pub fn render_for_pod(template: &Template, pod: &PodFacts<'_>) -> Result<String, RenderError> {
    template.render(|p| pod.value(p))
}

/// The value of a templated query's result: `Ok(None)` for no series (no data), the value
/// (NaN passed through) for one, an error naming the count for more.
pub fn single_value(vector: &Vector) -> Result<Option<f64>, PromErrorKind> {
    match vector.samples.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.value)),
        many => Err(PromErrorKind::SeriesCount { count: many.len() }),
    }
}

// ---------------------------------------------------------------------------------------
// Credentials read from files

/// When a file was last seen to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    dev: u64,
    ino: u64,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Whether content read at `read_at` from a file with this stamp can be trusted while the
/// stamp stays the same: not when the file had changed so shortly before the read that a
/// later write could keep the same (coarse) mtime and size.
fn stamp_is_settled(stamp: &FileStamp, read_at: SystemTime) -> bool {
    match stamp.modified {
        Some(modified) => modified
            .checked_add(RACY_WINDOW)
            .is_some_and(|settled| settled <= read_at),
        None => false,
    }
}

struct CachedSecret {
    value: String,
    stamp: FileStamp,
    read_at: SystemTime,
}

/// A secret kept in a file, re-read when the file changes. Checking costs one `stat` per use.
struct SecretFile {
    /// E.g. "bearer token file"; used in error messages with the path.
    what: &'static str,
    path: PathBuf,
    cache: Mutex<Option<CachedSecret>>,
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.what, self.path.display())
    }
}

impl SecretFile {
    fn new(what: &'static str, path: &Path) -> SecretFile {
        SecretFile {
            what,
            path: path.to_path_buf(),
            cache: Mutex::new(None),
        }
    }

    fn fail(&self, why: impl fmt::Display) -> String {
        format!("{} {}: {why}", self.what, self.path.display())
    }

    /// The cached secret, when the file still has the stamp it was read with.
    fn cached(&self, stamp: &FileStamp) -> Option<String> {
        // A poisoned lock only means another thread panicked mid-update; the cache is
        // re-validated by its stamp anyway.
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .as_ref()
            .filter(|cached| {
                cached.stamp == *stamp && stamp_is_settled(&cached.stamp, cached.read_at)
            })
            .map(|cached| cached.value.clone())
    }

    fn check_size(&self, meta: &std::fs::Metadata) -> Result<(), String> {
        if meta.len() > MAX_SECRET_BYTES {
            return Err(self.fail(format_args!(
                "larger than {MAX_SECRET_BYTES} bytes; is it the right file?"
            )));
        }
        Ok(())
    }

    /// Validates what was read and caches it.
    fn accept(
        &self,
        raw: Vec<u8>,
        stamp: FileStamp,
        read_at: SystemTime,
    ) -> Result<String, String> {
        let text = String::from_utf8(raw).map_err(|_| self.fail("not UTF-8 text"))?;
        // Files written by editors and `echo` end with a newline that is not part of it.
        let value = text.trim();
        if value.is_empty() {
            return Err(self.fail("empty"));
        }
        // Checked here so the error names the file (without showing the content).
        if HeaderValue::from_str(value).is_err() {
            return Err(self.fail(
                "contains characters not allowed in an HTTP header (control characters or a \
                 line break inside the value)",
            ));
        }
        let value = value.to_string();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        *cache = Some(CachedSecret {
            value: value.clone(),
            stamp,
            read_at,
        });
        Ok(value)
    }

    /// The current secret, for a request: the file system is touched through tokio's blocking
    /// pool, so a slow volume never stalls the runtime's worker threads.
    async fn get(&self) -> Result<String, String> {
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| self.fail(e))?;
        let stamp = FileStamp::of(&meta);
        if let Some(value) = self.cached(&stamp) {
            return Ok(value);
        }
        self.check_size(&meta)?;
        let read_at = SystemTime::now();
        let raw = tokio::fs::read(&self.path)
            .await
            .map_err(|e| self.fail(e))?;
        self.accept(raw, stamp, read_at)
    }

    /// The current secret, read in the calling thread: for the check at construction, which
    /// happens at startup before any request.
    fn get_blocking(&self) -> Result<String, String> {
        let meta = std::fs::metadata(&self.path).map_err(|e| self.fail(e))?;
        let stamp = FileStamp::of(&meta);
        if let Some(value) = self.cached(&stamp) {
            return Ok(value);
        }
        self.check_size(&meta)?;
        let read_at = SystemTime::now();
        let raw = std::fs::read(&self.path).map_err(|e| self.fail(e))?;
        self.accept(raw, stamp, read_at)
    }
}

#[derive(Debug)]
enum Auth {
    None,
    Bearer(SecretFile),
    Basic {
        username: String,
        password: SecretFile,
    },
}

// ---------------------------------------------------------------------------------------
// The client

/// A Prometheus HTTP API client. Share it (e.g. in an `Arc`) between evaluations: it keeps
/// connections alive and its credential caches.
pub struct PrometheusClient {
    http: reqwest::Client,
    /// `<url>/api/v1/query`.
    query_url: Url,
    /// The base URL without any user info, for messages.
    shown_url: String,
    auth: Auth,
    /// The custom header values, kept to redact them from error texts.
    header_secrets: Vec<String>,
    /// Set after a 405/501 answer to a POST: use GET from then on.
    get_only: AtomicBool,
    observer: Option<RequestObserver>,
}

impl fmt::Debug for PrometheusClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusClient")
            .field("url", &self.shown_url)
            .field("auth", &self.auth)
            .field("get_only", &self.get_only.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn redact_url(url: &Url) -> String {
    let mut url = url.clone();
    // Both fail only for URLs that cannot have credentials, which then have none to hide.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

fn redact_url_text(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) => redact_url(&url),
        Err(_) => "(not a URL)".to_string(),
    }
}

impl PrometheusClient {
    /// Checks the configuration and builds the client. The credential files are read once
    /// here so a wrong path is reported at startup.
    pub fn new(config: PrometheusConfig) -> Result<PrometheusClient, PromConfigError> {
        super::init_tls();
        let err = |m: String| PromConfigError(m);

        let base = Url::parse(config.url.trim()).map_err(|e| {
            err(format!(
                "url {:?}: {e}; expected e.g. http://prometheus:9090",
                redact_url_text(&config.url)
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(err(format!(
                "url {}: the scheme must be http or https",
                redact_url(&base)
            )));
        }
        if !base.username().is_empty() || base.password().is_some() {
            // Credentials in a URL end up in process listings and logs; files do not.
            return Err(err(format!(
                "url {}: must not contain credentials; use the basic auth password file",
                redact_url(&base)
            )));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(err(format!(
                "url {}: must not have a query string or fragment",
                redact_url(&base)
            )));
        }
        let shown_url = redact_url(&base);
        let mut query_url = base.clone();
        {
            // `<base>/api/v1/query`, keeping any path prefix (Prometheus behind a proxy path).
            let path = format!("{}/api/v1/query", base.path().trim_end_matches('/'));
            query_url.set_path(&path);
        }

        let auth = match (&config.bearer_token_file, &config.basic_auth) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "both a bearer token file and basic auth are set; use one".to_string(),
                ));
            }
            (Some(path), None) => Auth::Bearer(SecretFile::new("bearer token file", path)),
            (None, Some(basic)) => {
                if basic.username.is_empty() || basic.username.contains(':') {
                    return Err(err(
                        "basic auth username must be non-empty and contain no ':'".to_string(),
                    ));
                }
                Auth::Basic {
                    username: basic.username.clone(),
                    password: SecretFile::new("basic auth password file", &basic.password_file),
                }
            }
            (None, None) => Auth::None,
        };
        match &auth {
            Auth::None => {}
            Auth::Bearer(file) | Auth::Basic { password: file, .. } => {
                file.get_blocking().map_err(err)?;
            }
        }

        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| err(format!("header {name:?}: not a valid HTTP header name")))?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(err(format!(
                    "header {name:?}: set by podgate itself, cannot be replaced"
                )));
            }
            if header == reqwest::header::AUTHORIZATION && !matches!(auth, Auth::None) {
                return Err(err(format!(
                    "header {name:?}: conflicts with the bearer token or basic auth setting"
                )));
            }
            // The value is not shown: custom headers often carry credentials.
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                err(format!(
                    "header {name:?}: the value has characters not allowed in HTTP headers"
                ))
            })?;
            value.set_sensitive(true);
            headers.append(header, value);
        }
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );

        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("podgate/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers);
        if config.insecure_skip_verify {
            tracing::warn!(
                url = %shown_url,
                ca_file_ignored = config.ca_file.is_some(),
                "TLS certificate verification of the Prometheus server is disabled \
                 (insecure_skip_verify); anyone on the network path can answer podgate's queries"
            );
            builder = builder.tls_danger_accept_invalid_certs(true);
        } else if let Some(ca_file) = &config.ca_file {
            let pem = std::fs::read(ca_file)
                .map_err(|e| err(format!("CA file {}: {e}", ca_file.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                err(format!(
                    "CA file {}: not a PEM certificate bundle: {}",
                    ca_file.display(),
                    error_chain(&e)
                ))
            })?;
            if certs.is_empty() {
                return Err(err(format!(
                    "CA file {}: no PEM certificate in it",
                    ca_file.display()
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| err(format!("building the HTTP client: {}", error_chain(&e))))?;

        Ok(PrometheusClient {
            http,
            query_url,
            shown_url,
            auth,
            header_secrets: config
                .headers
                .iter()
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect(),
            get_only: AtomicBool::new(false),
            observer: None,
        })
    }

    /// Reports every query's result and duration to `observer`.
    pub fn with_observer(mut self, observer: RequestObserver) -> PrometheusClient {
        self.observer = Some(observer);
        self
    }

    /// The server's base URL as shown in messages (without user info).
    pub fn url(&self) -> &str {
        &self.shown_url
    }

    /// Runs an instant query, giving up after `timeout` (also sent to Prometheus so it stops
    /// evaluating).
    pub async fn query(&self, promql: &str, timeout: Duration) -> Result<Vector, PromError> {
        let started = Instant::now();
        // Every secret this query sent, for redacting what the server answers.
        let mut sent = self.header_secrets.clone();
        let answered =
            tokio::time::timeout(timeout, self.query_inner(promql, timeout, &mut sent)).await;
        let result = match answered {
            Ok(result) => result.map_err(|kind| kind.redact(&sent)),
            Err(_) => Err(PromErrorKind::Timeout(timeout)),
        };
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(_) => RequestResult::Ok,
            Err(kind) => kind.request_result(),
        };
        if let Some(observer) = &self.observer {
            observer(outcome, elapsed);
        }
        match result {
            Ok(vector) => {
                if !vector.warnings.is_empty() {
                    tracing::debug!(
                        query = %shorten(promql, QUERY_SHOWN_CHARS),
                        warnings = ?vector.warnings,
                        "Prometheus answered with warnings"
                    );
                }
                Ok(vector)
            }
            Err(kind) => Err(PromError::new(promql, kind)),
        }
    }

    /// Runs a batched query (a template without per-pod placeholders) and joins its result
    /// to pods by `labels`.
    pub async fn query_batched(
        &self,
        template: &Template,
        labels: &PrometheusLabels,
        timeout: Duration,
    ) -> Result<Joined, PromError> {
        // A per-pod placeholder has no value here, so such a template fails to render.
        let promql = template
            .render(|_| None)
            .map_err(|e| PromError::new(&template.source, PromErrorKind::Render(e)))?;
        Ok(join(self.query(&promql, timeout).await?, labels))
    }

    /// Renders `template` for the pod and queries it: `Ok(None)` when there is no series (no
    /// data), the value (NaN passed through) for exactly one, an error for more.
    pub async fn query_for_pod(
        &self,
        template: &Template,
        pod: &PodFacts<'_>,
        timeout: Duration,
    ) -> Result<Option<f64>, PromError> {
        let promql = render_for_pod(template, pod)
            .map_err(|e| PromError::new(&template.source, PromErrorKind::Render(e)))?;
        let vector = self.query(&promql, timeout).await?;
        single_value(&vector).map_err(|kind| PromError::new(&promql, kind))
    }

    async fn query_inner(
        &self,
        promql: &str,
        timeout: Duration,
        sent: &mut Vec<String>,
    ) -> Result<Vector, PromErrorKind> {
        // The parameters, encoded once: the GET URL's query string is also the POST body.
        let mut get_url = self.query_url.clone();
        {
            let mut pairs = get_url.query_pairs_mut();
            pairs.append_pair("query", promql);
            if !timeout.is_zero() {
                // Prometheus reads a plain number as seconds.
                pairs.append_pair("timeout", &timeout.as_secs_f64().to_string());
            }
        }
        if !self.get_only.load(Ordering::Relaxed) {
            let form = get_url.query().unwrap_or_default().to_string();
            let request = self
                .http
                .request(Method::POST, self.query_url.clone())
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form);
            let response = self.send(request, sent).await?;
            let status = response.status();
            if status != StatusCode::METHOD_NOT_ALLOWED && status != StatusCode::NOT_IMPLEMENTED {
                return self.read(response, sent).await;
            }
            self.get_only.store(true, Ordering::Relaxed);
            tracing::info!(
                url = %self.shown_url,
                status = status.as_u16(),
                "Prometheus (or a proxy before it) refuses POST queries; using GET"
            );
        }
        let response = self
            .send(self.http.request(Method::GET, get_url), sent)
            .await?;
        self.read(response, sent).await
    }

    /// Sends `request` with the credentials, adding each secret it sends to `sent`.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        sent: &mut Vec<String>,
    ) -> Result<reqwest::Response, PromErrorKind> {
        let request = match &self.auth {
            Auth::None => request,
            Auth::Bearer(file) => {
                let token = file.get().await.map_err(PromErrorKind::Credentials)?;
                sent.push(token.clone());
                request.bearer_auth(token)
            }
            Auth::Basic { username, password } => {
                let password = password.get().await.map_err(PromErrorKind::Credentials)?;
                // The header carries base64("user:password"): an echo may show either form.
                sent.push(
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}")),
                );
                sent.push(password.clone());
                request.basic_auth(username, Some(password))
            }
        };
        // A kept-alive connection the server closed (e.g. Prometheus restarted) fails the
        // request before any answer; a query is read-only, so it is sent once more on a fresh
        // connection, as Prometheus's own Go client does.
        let retry = request.try_clone();
        let first = request.send().await;
        let sent = match (first, retry) {
            (Err(e), Some(retry)) if e.is_request() && !e.is_connect() && !e.is_timeout() => {
                tracing::debug!(
                    url = %self.shown_url,
                    error = %error_chain(&e.without_url()),
                    "Prometheus request failed before an answer; retrying once"
                );
                retry.send().await
            }
            (first, _) => first,
        };
        sent.map_err(|e| {
            let connect = e.is_connect();
            // The URL is left out: ours is shown redacted, and the error's could hold user info.
            let detail = shorten(&error_chain(&e.without_url()), DETAIL_SHOWN_CHARS);
            if connect {
                PromErrorKind::Connect {
                    url: self.shown_url.clone(),
                    detail,
                }
            } else {
                PromErrorKind::Request(detail)
            }
        })
    }

    async fn read(
        &self,
        response: reqwest::Response,
        sent: &[String],
    ) -> Result<Vector, PromErrorKind> {
        let status = response.status().as_u16();
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| {
                PromErrorKind::Request(shorten(
                    &format!("reading the answer: {}", error_chain(&e.without_url())),
                    DETAIL_SHOWN_CHARS,
                ))
            })?;
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        parse_response(status, &body).map_err(|kind| {
            // An error text is cut to a readable length, which could leave part of an echoed
            // secret: redact the whole answer first, then describe it again (errors only; a
            // successful answer is never copied).
            if sent.iter().any(|s| contains_bytes(&body, s.as_bytes())) {
                let clean = redact(&String::from_utf8_lossy(&body), sent);
                parse_response(status, clean.as_bytes())
                    .err()
                    .unwrap_or(kind)
            } else {
                kind
            }
        })
    }
}

fn too_large() -> PromErrorKind {
    PromErrorKind::BadResponse(format!(
        "answer larger than {} MiB; select fewer series",
        MAX_RESPONSE_BYTES >> 20
    ))
}

#[cfg(test)]
mod tests;
