//! The Prometheus HTTP API client: instant queries POSTed (or, behind a proxy that refuses
//! POST, sent with GET) with the credentials, custom headers and TLS of its configuration,
//! each answer read within a size limit and its errors redacted.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};

use super::config::{PromConfigError, PrometheusConfig, RESERVED_HEADERS};
use super::error::{
    DETAIL_SHOWN_CHARS, PromError, PromErrorKind, QUERY_SHOWN_CHARS, RequestObserver,
    RequestResult, shorten,
};
use super::join::{Joined, join};
use super::pod_query::{PodFacts, render_for_pod, single_value};
use super::redact::{contains_bytes, redact, redact_url, redact_url_text};
use super::response::{MAX_RESPONSE_BYTES, Vector, parse_response, too_large};
use super::secrets::{Auth, SecretFile};
use crate::query::Template;
use crate::rules::PrometheusLabels;
use crate::source::scrape::error_chain;

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

impl PrometheusClient {
    /// Checks the configuration and builds the client. The credential files are read once
    /// here so a wrong path is reported at startup.
    pub fn new(config: PrometheusConfig) -> Result<PrometheusClient, PromConfigError> {
        crate::source::init_tls();
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
                file.get_blocking().map_err(|e| err(e.to_string()))?;
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
                let token = file
                    .get()
                    .await
                    .map_err(|e| PromErrorKind::Credentials(e.to_string()))?;
                sent.push(token.clone());
                request.bearer_auth(token)
            }
            Auth::Basic { username, password } => {
                let password = password
                    .get()
                    .await
                    .map_err(|e| PromErrorKind::Credentials(e.to_string()))?;
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
