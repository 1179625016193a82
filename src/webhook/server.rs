//! The webhook's HTTPS server: TLS with a certificate and key read from files (and read again
//! when they change, so a renewed certificate is served without a restart), HTTP/1.1, one
//! route: `POST /mutate` with an AdmissionReview.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Bytes};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::{Error, Outcome, PATH, Scope};
use crate::rules::RuleSet;
use crate::telemetry::metrics::Metrics;

/// Largest AdmissionReview accepted. The apiserver stores objects up to about 1.5 MiB; a
/// review carries the object once on CREATE.
pub const MAX_BODY: usize = 8 << 20;
/// A client that has not finished the TLS handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may wait for (the whole header of) its next request, idle time
/// included. Longer than the 90 s after which Go clients such as the apiserver drop an idle
/// connection themselves: were podgate to close it first, a review the apiserver sent at that
/// very moment would fail, and that pod would be admitted without its gates.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(120);
/// The certificate files are also re-read this often, in case a change was not notified.
pub const CERT_POLL: Duration = Duration::from_secs(10);

/// Where the serving certificate and its key are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the serving certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM: PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key.
    pub key: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Parses a certificate chain and key, and checks that they belong together.
pub fn certified_key(
    files: &TlsFiles,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<CertifiedKey, Error> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::CertificatePem {
            cert: files.cert.clone(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(Error::NoCertificate {
            cert: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| Error::Key {
        key: files.key.clone(),
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| Error::NotAPair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        detail: e.to_string(),
    })
}

/// The certificate being served, replaced when the files change and the new pair is valid.
#[derive(Debug)]
pub struct CertStore {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The file contents last looked at (loaded, or rejected), so each change is handled
    /// and reported once.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl CertStore {
    /// Loads the pair; an invalid pair is an error (the server does not start without one).
    pub fn load(files: TlsFiles) -> Result<CertStore, Error> {
        let cert = read(&files.cert, "certificate")?;
        let key = read(&files.key, "key")?;
        let ck = certified_key(&files, &cert, &key)?;
        Ok(CertStore {
            files,
            current: RwLock::new(Arc::new(ck)),
            seen: Mutex::new((cert, key)),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again. `Ok(true)`: a new pair is served from now on; `Ok(false)`:
    /// nothing changed since the last look; `Err`: the files changed into something invalid
    /// (e.g. a certificate written before its key) and the previous pair stays.
    pub fn reload(&self) -> Result<bool, Error> {
        let cert = read(&self.files.cert, "certificate")?;
        let key = read(&self.files.key, "key")?;
        // Each update of the state is one assignment: a panic elsewhere cannot leave it half
        // written, so a poisoned lock is used as it is.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.0 == cert && seen.1 == key {
            return Ok(false);
        }
        *seen = (cert.clone(), key.clone());
        let ck = certified_key(&self.files, &cert, &key)?;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(ck);
        Ok(true)
    }

    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current()
    }
}

/// Re-reads the certificate pair when its directories change (a Secret volume swaps a
/// `..data` symlink, as a ConfigMap's does) and every [`CERT_POLL`].
async fn reload_certs(store: Arc<CertStore>) {
    let (tx, mut rx) = mpsc::channel(1);
    let mut dirs: Vec<PathBuf> = [&store.files.cert, &store.files.key]
        .iter()
        .map(|p| match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    dirs.dedup();
    let mut _watches = Vec::new();
    for d in &dirs {
        match crate::reload::watch_dir(d, tx.clone()) {
            Ok(w) => _watches.push(w),
            Err(e) => warn!(error = %e, "webhook certificate changes are seen by polling only"),
        }
    }
    let mut poll = tokio::time::interval(CERT_POLL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = poll.tick() => {}
            Some(()) = rx.recv() => {
                // A renewal writes two files: let both land.
                tokio::time::sleep(crate::reload::SETTLE).await;
                while rx.try_recv().is_ok() {}
            }
        }
        // The files are read on the blocking pool: a slow volume never stalls a worker that
        // serves admission requests.
        let reloading = Arc::clone(&store);
        let reloaded = tokio::task::spawn_blocking(move || reloading.reload())
            .await
            .unwrap_or_else(|e| Err(Error::Aborted(e.to_string())));
        match reloaded {
            Ok(true) => info!(
                cert = %store.files.cert.display(),
                "webhook certificate reloaded"
            ),
            Ok(false) => {}
            Err(e) => {
                warn!(error = %e, "webhook certificate not reloaded; serving the previous one")
            }
        }
    }
}

/// Answers webhook requests with the rules currently in force.
pub struct Handler {
    rules: watch::Receiver<RuleSet>,
    scope: Scope,
    metrics: Option<Metrics>,
}

/// What one request got, before it becomes an HTTP response.
struct Answer {
    status: StatusCode,
    body: String,
    json: bool,
    /// The `result` label of `podgate_webhook_requests_total`.
    result: &'static str,
}

impl Answer {
    fn error(status: StatusCode, body: String) -> Answer {
        Answer {
            status,
            body: body + "\n",
            json: false,
            result: "invalid",
        }
    }
}

impl Handler {
    /// `rules`: the rule set in force (the controller publishes each one it swaps in).
    pub fn new(rules: watch::Receiver<RuleSet>, scope: Scope) -> Handler {
        Handler {
            rules,
            scope,
            metrics: None,
        }
    }

    pub fn with_metrics(mut self, metrics: Metrics) -> Handler {
        self.metrics = Some(metrics);
        self
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Answers one HTTP request. Never fails: every problem is an HTTP error with a text that
    /// says what is wrong.
    pub async fn handle<B>(&self, req: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let started = Instant::now();
        let path_ok = req.uri().path() == PATH;
        let answer = self.answer(req).await;
        if path_ok && let Some(m) = &self.metrics {
            m.webhook_request(answer.result, started.elapsed());
        }
        let mut resp = Response::new(Full::new(Bytes::from(answer.body)));
        *resp.status_mut() = answer.status;
        let ctype = if answer.json {
            "application/json"
        } else {
            "text/plain; charset=utf-8"
        };
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
        if answer.status == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
        }
        resp
    }

    async fn answer<B>(&self, req: Request<B>) -> Answer
    where
        B: Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if req.uri().path() != PATH {
            return Answer::error(
                StatusCode::NOT_FOUND,
                format!(
                    "not found: {}; the webhook answers POST {PATH}",
                    req.uri().path()
                ),
            );
        }
        if req.method() != Method::POST {
            return Answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} {PATH}: the webhook answers POST only", req.method()),
            );
        }
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                return Answer::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("AdmissionReview larger than {MAX_BODY} bytes"),
                );
            }
            Err(e) => {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    format!("reading the request body: {e}"),
                );
            }
        };
        let decided = {
            let rules = self.rules.borrow();
            super::review(&body, &rules, &self.scope)
        };
        match decided {
            Ok((request, outcome, answer)) => {
                let pod = request
                    .name
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .or_else(|| {
                        request
                            .object
                            .as_ref()?
                            .get("metadata")?
                            .get("generateName")?
                            .as_str()
                    })
                    .unwrap_or("");
                let namespace = request.namespace.as_deref().unwrap_or("");
                match &outcome {
                    Outcome::Patched { gates, .. } => {
                        debug!(uid = %request.uid, namespace, pod, gates = %gates.join(","), "readiness gates injected")
                    }
                    Outcome::Unchanged(why) => {
                        debug!(uid = %request.uid, namespace, pod, why = why.as_str(), "pod admitted unchanged")
                    }
                }
                Answer {
                    status: StatusCode::OK,
                    body: answer.to_string(),
                    json: true,
                    result: outcome.metric_result(),
                }
            }
            Err(e) => {
                warn!(error = %e, "webhook request refused");
                Answer::error(StatusCode::BAD_REQUEST, e.to_string())
            }
        }
    }
}

/// The webhook server, bound and ready to [`Server::run`].
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    certs: Arc<CertStore>,
    handler: Arc<Handler>,
}

impl Server {
    /// Loads the certificate pair and binds `addr`; either failing is an error that names
    /// the file or the address.
    pub async fn bind(
        addr: SocketAddr,
        files: TlsFiles,
        handler: Handler,
    ) -> Result<Server, Error> {
        let certs = tokio::task::spawn_blocking(move || CertStore::load(files))
            .await
            .map_err(|e| Error::Aborted(e.to_string()))??;
        let certs = Arc::new(certs);
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(certs.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen { addr, source })?;
        Ok(Server {
            listener,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certs,
            handler: Arc::new(handler),
        })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.listener.local_addr().map_err(Error::Address)
    }

    /// The certificate store (e.g. to reload it at once).
    pub fn certs(&self) -> Arc<CertStore> {
        self.certs.clone()
    }

    /// Serves until `stop` completes; then closes every connection.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let reloader = tokio::spawn(reload_certs(self.certs.clone()));
        let mut conns = JoinSet::new();
        tokio::pin!(stop);
        loop {
            while conns.try_join_next().is_some() {}
            let (tcp, peer) = tokio::select! {
                _ = &mut stop => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // E.g. out of file descriptors: wait instead of spinning.
                        warn!(error = %e, "webhook: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            conns.spawn(serve_connection(
                self.acceptor.clone(),
                self.handler.clone(),
                tcp,
                peer,
            ));
        }
        reloader.abort();
        conns.abort_all();
    }
}

async fn serve_connection(
    acceptor: TlsAcceptor,
    handler: Arc<Handler>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            // A TCP probe or a client that gave up: nothing to report.
            debug!(%peer, error = %e, "webhook: connection closed during the TLS handshake");
            return;
        }
        Ok(Err(e)) => {
            warn!(%peer, error = %e, "webhook: TLS handshake failed (does the webhook configuration's caBundle hold the CA that signed the certificate, and does the certificate name the address the apiserver calls?)");
            return;
        }
        Err(_) => {
            debug!(%peer, "webhook: TLS handshake timed out");
            return;
        }
    };
    let service = hyper::service::service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler.handle(req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    if let Err(e) = builder.serve_connection(TokioIo::new(tls), service).await {
        debug!(%peer, error = %e, "webhook: connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    const RULES: &str = "rules:\n  - name: r\n    conditionType: podgate.dev/g\n    vars: {x: {scrape: 'x'}}\n    expr: 'x < 1'\n";

    fn handler() -> (Handler, watch::Sender<RuleSet>) {
        let set = match crate::rules::load_str("r.yaml", RULES) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        };
        let (tx, rx) = watch::channel(set);
        (Handler::new(rx, Scope::default()), tx)
    }

    fn post(body: &str) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(Bytes::from(body.to_string())));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = PATH.parse().unwrap_or_default();
        req
    }

    fn review_body() -> String {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-9",
                "kind": { "group": "", "version": "v1", "kind": "Pod" },
                "namespace": "ns",
                "operation": "CREATE",
                "object": { "metadata": {}, "spec": { "containers": [] } },
            }
        })
        .to_string()
    }

    async fn text(resp: Response<Full<Bytes>>) -> (StatusCode, String, String) {
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = match resp.into_body().collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            Err(e) => match e {},
        };
        (status, ctype, body)
    }

    #[tokio::test]
    async fn a_review_is_answered_with_json_and_counted() {
        let (metrics, registry) = Metrics::new();
        let (h, _tx) = handler();
        let h = h.with_metrics(metrics);
        let (status, ctype, body) = text(h.handle(post(&review_body())).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, "application/json");
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(v["response"]["uid"], json!("u-9"));
        assert_eq!(v["response"]["patchType"], json!("JSONPatch"));
        let out = crate::telemetry::metrics::encode(&registry).unwrap_or_default();
        assert!(
            out.contains("podgate_webhook_requests_total{result=\"patched\"} 1"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn the_rules_in_force_are_the_latest_published() {
        let (h, tx) = handler();
        tx.send_replace(RuleSet::default());
        let (_, _, body) = text(h.handle(post(&review_body())).await).await;
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        assert_eq!(v["response"], json!({ "uid": "u-9", "allowed": true }));
    }

    #[tokio::test]
    async fn malformed_requests_get_a_400_that_says_why() {
        let (metrics, registry) = Metrics::new();
        let (h, _tx) = handler();
        let h = h.with_metrics(metrics);
        let (status, ctype, body) = text(h.handle(post("{\"apiVersion\": 3")).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(ctype.starts_with("text/plain"));
        assert!(body.starts_with("invalid AdmissionReview: "), "{body}");
        let out = crate::telemetry::metrics::encode(&registry).unwrap_or_default();
        assert!(
            out.contains("podgate_webhook_requests_total{result=\"invalid\"} 1"),
            "{out}"
        );
    }

    #[tokio::test]
    async fn wrong_path_method_and_size_are_refused() {
        let (h, _tx) = handler();
        let mut get = post("");
        *get.method_mut() = Method::GET;
        let resp = h.handle(get).await;
        assert_eq!(
            resp.headers().get(ALLOW).and_then(|v| v.to_str().ok()),
            Some("POST")
        );
        assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);

        let mut other = post(&review_body());
        *other.uri_mut() = "/validate".parse().unwrap_or_default();
        let (status, _, body) = text(h.handle(other).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("POST /mutate"), "{body}");

        let big = " ".repeat(MAX_BODY + 1);
        let (status, _, _) = text(h.handle(post(&big)).await).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn unreadable_certificate_files_are_named() {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        };
        let files = TlsFiles {
            cert: dir.path().join("tls.crt"),
            key: dir.path().join("tls.key"),
        };
        let e = CertStore::load(files.clone())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("tls.crt"), "{e}");
        let _ = std::fs::write(&files.cert, "not pem");
        let _ = std::fs::write(&files.key, "not pem");
        let e = CertStore::load(files.clone())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("no CERTIFICATE block"), "{e}");
        let _ = std::fs::write(
            &files.cert,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        );
        let e = CertStore::load(files)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("tls.key"), "{e}");
    }
}
