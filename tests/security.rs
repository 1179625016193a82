//! podgate's security properties, end to end: Prometheus credentials never leave the process
//! (log at debug level, /metrics, /readyz, Events, gate conditions), even when the server
//! echoes them back; TLS to Prometheus is verified unless switched off, and switching it off
//! is logged; the metrics server serves metrics and health only; its exposition cannot be
//! broken by label values.

use crate::support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use podgate::exposition::{self, Format};
use podgate::telemetry::metrics::{self, Metrics};
use podgate::telemetry::server::{self, Health};
use support::daemon::{Daemon, rules_dir};
use support::scene::Scene;
use support::{ControlPlane, TestPod, unique_loopback_ip, wait_for};

const GATE: &str = "podgate.dev/security";

fn rule() -> String {
    format!(
        r#"rules:
  - name: secured
    conditionType: {GATE}
    interval: 1s
    timeout: 800ms
    failureThreshold: 1
    onNoData: fail
    onError: fail
    vars:
      queue: {{promql: 'work_queue_depth{{namespace="{{{{namespace}}}}",pod="{{{{pod}}}}"}}'}}
    expr: 'queue < 100'
"#
    )
}

/// A secret that cannot occur anywhere by chance.
fn secret(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{what}-{nanos:x}-{}", support::unique_suffix())
}

/// How the fake Prometheus answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// 401 unless the credentials are the expected ones; then a healthy sample.
    CheckCredentials,
    /// A Prometheus API error (500) whatever the credentials.
    Fail,
}

struct FakeState {
    mode: Mode,
    /// The `Authorization` header value accepted.
    accept: String,
    /// Every `Authorization` header value received.
    seen: Vec<String>,
}

/// A Prometheus stand-in that echoes every credential it receives into its error answers, as
/// a carelessly configured proxy can: whatever podgate shows of a server's answer must still
/// not carry the secret.
struct FakePrometheus {
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    _task: tokio::task::JoinHandle<()>,
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn fake_query(State(state): State<Arc<Mutex<FakeState>>>, headers: HeaderMap) -> Response {
    let authorization = header(&headers, "authorization");
    let api_key = header(&headers, "x-api-key");
    let mode = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.seen.push(authorization.clone());
        if s.mode == Mode::CheckCredentials && authorization == s.accept {
            None
        } else {
            Some(s.mode)
        }
    };
    let echoed = format!("authorization={authorization:?} x-api-key={api_key:?}");
    match mode {
        None => (
            StatusCode::OK,
            [("content-type", "application/json")],
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"1"]}]}}"#.to_string(),
        )
            .into_response(),
        Some(Mode::CheckCredentials) => (
            StatusCode::UNAUTHORIZED,
            [("content-type", "text/plain")],
            format!("401 Unauthorized: rejected {echoed}\n"),
        )
            .into_response(),
        Some(Mode::Fail) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "application/json")],
            serde_json::json!({
                "status": "error",
                "errorType": "internal",
                "error": format!("storage failed for request with {echoed}"),
            })
            .to_string(),
        )
            .into_response(),
    }
}

impl FakePrometheus {
    async fn start(accept: String) -> FakePrometheus {
        let state = Arc::new(Mutex::new(FakeState {
            mode: Mode::CheckCredentials,
            accept,
            seen: Vec::new(),
        }));
        let app = axum::Router::new()
            .route(
                "/api/v1/query",
                axum::routing::get(fake_query).post(fake_query),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|e| panic!("bind the fake Prometheus: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("fake Prometheus address: {e}"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakePrometheus {
            addr,
            state,
            _task: task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).mode = mode;
    }

    fn seen(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .seen
            .clone()
    }
}

impl Drop for FakePrometheus {
    fn drop(&mut self) {
        self._task.abort();
    }
}

/// Writes `text` to `path` the way a Secret volume updates a file: a new file renamed over it.
fn replace_file(path: &Path, text: &str) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, text).unwrap_or_else(|e| panic!("{}: {e}", staged.display()));
    std::fs::rename(&staged, path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Every place podgate shows text, gathered after the run.
async fn everything_podgate_showed(scene: &Scene, daemon: &Daemon) -> Vec<(String, String)> {
    let mut shown = vec![
        ("log".to_string(), daemon.log()),
        ("/metrics".to_string(), daemon.metrics().await),
        ("/readyz".to_string(), daemon.readyz().await.1),
    ];
    let pod = scene.pod("web").await;
    shown.push((
        "pod web".to_string(),
        serde_json::to_string(&pod).unwrap_or_default(),
    ));
    let events: Api<Event> = scene.ns.api(scene.admin.clone());
    let list = events
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("list events: {e}"));
    for e in &list.items {
        shown.push((
            format!("event {:?}", e.metadata.name),
            serde_json::to_string(e).unwrap_or_default(),
        ));
    }
    let v1: Api<k8s_openapi::api::events::v1::Event> = scene.ns.api(scene.admin.clone());
    if let Ok(list) = v1.list(&ListParams::default()).await {
        for e in &list.items {
            shown.push((
                format!("events.k8s.io event {:?}", e.metadata.name),
                serde_json::to_string(e).unwrap_or_default(),
            ));
        }
    }
    shown
}

enum Credentials {
    Bearer,
    Basic { username: &'static str },
}

/// Runs the daemon at debug level against the fake Prometheus: first with credentials it
/// rejects, then (after the file is replaced) accepted ones, then with a failing server; at
/// every step the server's answer echoes the credentials. No secret may show anywhere.
async fn credentials_never_leak(credentials: Credentials, prefix: &str) {
    let scene = Scene::new(prefix).await;
    let first = secret("first");
    let second = secret("second");
    let api_key = secret("apikey");
    let header_value = |s: &str| match credentials {
        Credentials::Bearer => format!("Bearer {s}"),
        Credentials::Basic { username } => format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{s}"))
        ),
    };
    let fake = FakePrometheus::start(header_value(&second)).await;
    let secrets_dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let secret_file = secrets_dir.path().join("secret");
    std::fs::write(&secret_file, format!("{first}\n")).unwrap_or_else(|e| panic!("{e}"));
    let secret_path = secret_file.display().to_string();
    let header_flag = format!("X-Api-Key: {api_key}");
    let url = fake.url();
    let mut flags = vec![
        "--prometheus-url",
        url.as_str(),
        "--prometheus-header",
        header_flag.as_str(),
    ];
    match credentials {
        Credentials::Bearer => {
            flags.extend(["--prometheus-bearer-token-file", secret_path.as_str()])
        }
        Credentials::Basic { username } => flags.extend([
            "--prometheus-username",
            username,
            "--prometheus-password-file",
            secret_path.as_str(),
        ]),
    }
    let rules = rules_dir(&rule());
    let cp = ControlPlane::get();
    let daemon = Daemon::start_with_env(
        cp.podgate_kubeconfig_path(),
        rules.path(),
        scene.name(),
        &flags,
        &[("RUST_LOG", "debug")],
    );
    daemon.wait_ready().await;
    TestPod::new("web").gate(GATE).create(&scene.pods).await;
    scene.kubelet.run("web", unique_loopback_ip(), true).await;

    // Rejected: the 401 answer (which echoes the credentials) is a source error.
    let rejected = scene
        .wait_gate("web", GATE, "False", "SourceError", &daemon)
        .await;
    assert!(rejected.message.contains("401"), "{rejected:?}");

    // The file is replaced as a Secret volume does it: the next query uses the new one.
    replace_file(&secret_file, &format!("{second}\n"));
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    // A failing server whose error text echoes the credentials.
    fake.set_mode(Mode::Fail);
    let failed = scene
        .wait_gate("web", GATE, "False", "SourceError", &daemon)
        .await;
    assert!(failed.message.contains("internal"), "{failed:?}");

    // The server really did receive both secrets, so the checks below can fail.
    let seen = fake.seen();
    for s in [&first, &second] {
        assert!(
            seen.contains(&header_value(s)),
            "the fake never received {s}: {seen:?}"
        );
    }
    // Events for both transitions have been recorded before they are checked.
    wait_for("gate events", Duration::from_secs(10), || async {
        let events: Api<Event> = scene.ns.api(scene.admin.clone());
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let reasons: Vec<String> = list.items.iter().filter_map(|e| e.reason.clone()).collect();
        if reasons.iter().any(|r| r == "GateFalse") && reasons.iter().any(|r| r == "GateTrue") {
            Ok(())
        } else {
            Err(format!("{reasons:?}"))
        }
    })
    .await;

    let kube_token = cp
        .var("PODGATE_TEST_PODGATE_TOKEN")
        .unwrap_or_else(|| panic!("the control plane env has no PODGATE_TEST_PODGATE_TOKEN"))
        .to_string();
    let mut forbidden = vec![
        first.clone(),
        second.clone(),
        api_key.clone(),
        header_value(&first),
        header_value(&second),
        kube_token,
    ];
    if let Credentials::Basic { username } = credentials {
        // The encoded form without the scheme, as a log line could show it.
        for s in [&first, &second] {
            forbidden
                .push(base64::engine::general_purpose::STANDARD.encode(format!("{username}:{s}")));
        }
    }
    let shown = everything_podgate_showed(&scene, &daemon).await;
    // Debug logging really was on, and the errors were logged (redacted).
    let log = &shown[0].1;
    assert!(log.contains("DEBUG"), "debug logging is off:\n{log}");
    assert!(log.contains("401"), "the rejection is not logged:\n{log}");
    for (place, text) in &shown {
        for s in &forbidden {
            assert!(
                !text.contains(s.as_str()),
                "a secret ({s}) shows in {place}:\n{text}"
            );
        }
    }
    // podgate's own parser reads its own /metrics.
    let text = daemon.metrics().await;
    let parsed: Result<Vec<String>, _> = exposition::parse(&text, Format::OpenMetrics)
        .map(|s| s.map(|s| s.name.to_string()))
        .collect();
    assert!(parsed.is_ok_and(|n| !n.is_empty()), "{text}");
}

#[tokio::test]
async fn bearer_token_and_header_values_never_leak() {
    credentials_never_leak(Credentials::Bearer, "sec-bearer").await;
}

#[tokio::test]
async fn basic_auth_password_never_leaks_and_is_reread() {
    credentials_never_leak(
        Credentials::Basic {
            username: "podgate",
        },
        "sec-basic",
    )
    .await;
}

/// Starts a daemon against `url` with `flags`, runs a pod, waits for its SourceError and
/// returns (message, log).
async fn source_error_against(prefix: &str, url: &str, flags: &[&str]) -> (String, String) {
    let scene = Scene::new(prefix).await;
    let rules = rules_dir(&rule());
    let mut all = vec!["--prometheus-url", url];
    all.extend_from_slice(flags);
    let daemon = Daemon::start(rules.path(), scene.name(), &all);
    daemon.wait_ready().await;
    TestPod::new("web").gate(GATE).create(&scene.pods).await;
    scene.kubelet.run("web", unique_loopback_ip(), true).await;
    let gate = scene
        .wait_gate("web", GATE, "False", "SourceError", &daemon)
        .await;
    (gate.message, daemon.log())
}

const INSECURE_WARNING: &str = "TLS certificate verification of the Prometheus server is disabled";

#[tokio::test]
async fn tls_to_prometheus_is_verified_unless_disabled_and_disabling_warns() {
    // The control plane's API server is a real TLS server with its own CA; it is no
    // Prometheus, so a request that gets through TLS ends in an HTTP 401/403.
    let cp = ControlPlane::get();
    let url = cp.apiserver_url().to_string();
    let right_ca = cp
        .var("PODGATE_TEST_CA_FILE")
        .unwrap_or_else(|| panic!("the control plane env has no PODGATE_TEST_CA_FILE"))
        .to_string();
    // A valid bundle that does not hold the API server's CA.
    let other_ca = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let other_ca_file = other_ca.path().join("ca.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", "/CN=podgate other CA"])
        .arg("-keyout")
        .arg(other_ca.path().join("ca.key"))
        .arg("-out")
        .arg(&other_ca_file)
        .output()
        .unwrap_or_else(|e| panic!("running openssl: {e}"));
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let other_ca_path = other_ca_file.display().to_string();

    // The given CA is trusted.
    let (message, log) =
        source_error_against("sec-tls-ca", &url, &["--prometheus-ca-file", &right_ca]).await;
    assert!(
        message.contains("HTTP 401") || message.contains("HTTP 403"),
        "with the right CA, TLS must succeed: {message}"
    );
    assert!(!log.contains(INSECURE_WARNING), "{log}");

    // Another CA is not, and neither are the system roots.
    let (message, log) = source_error_against(
        "sec-tls-other",
        &url,
        &["--prometheus-ca-file", &other_ca_path],
    )
    .await;
    assert!(
        message.to_lowercase().contains("certificate") && !message.contains("HTTP 4"),
        "a server certificate from another CA must be refused: {message}"
    );
    assert!(!log.contains(INSECURE_WARNING), "{log}");
    let (message, _) = source_error_against("sec-tls-system", &url, &[]).await;
    assert!(
        message.to_lowercase().contains("certificate"),
        "the system roots do not hold the API server's CA: {message}"
    );

    // Verification switched off explicitly: the request gets through, with a warning.
    let (message, log) = source_error_against(
        "sec-tls-insecure",
        &url,
        &[
            "--prometheus-ca-file",
            &other_ca_path,
            "--prometheus-insecure-skip-verify",
        ],
    )
    .await;
    assert!(
        message.contains("HTTP 401") || message.contains("HTTP 403"),
        "insecure_skip_verify must skip verification: {message}"
    );
    let warning = log
        .lines()
        .find(|l| l.contains(INSECURE_WARNING))
        .unwrap_or_else(|| panic!("no warning that verification is off:\n{log}"));
    assert!(warning.contains("WARN"), "{warning}");
}

/// The metrics server on a free loopback port, for as long as the returned task runs.
async fn metrics_server(health: Arc<Health>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let (m, registry) = Metrics::new();
    m.evaluation("r1", "pass", Duration::from_millis(1));
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("bind a free port: {e}"));
        l.local_addr()
            .unwrap_or_else(|e| panic!("local address: {e}"))
    };
    let task = tokio::spawn(async move {
        let _ = server::serve(
            addr,
            Arc::new(registry),
            health,
            std::future::pending::<()>(),
        )
        .await;
    });
    (addr, task)
}

#[tokio::test]
async fn metrics_server_serves_metrics_and_health_only() {
    let health = Arc::new(Health::default());
    health.set_rules_loaded(true);
    health.set_cache_synced(true);
    let (addr, task) = metrics_server(health).await;
    let http = support::http_client(Duration::from_secs(5));
    let call = |method: reqwest::Method, path: &str| {
        let http = http.clone();
        let url = format!("http://{addr}{path}");
        async move {
            let r = http
                .request(method.clone(), &url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            Ok::<_, String>((status, body))
        }
    };
    wait_for("the metrics server", Duration::from_secs(10), || {
        call(reqwest::Method::GET, "/healthz")
    })
    .await;

    for path in ["/metrics", "/healthz", "/readyz", "/metrics?name=x"] {
        let (status, body) = call(reqwest::Method::GET, path).await.unwrap_or_default();
        assert_eq!(status, 200, "GET {path}: {body}");
        let (status, body) = call(reqwest::Method::HEAD, path).await.unwrap_or_default();
        assert_eq!(status, 200, "HEAD {path}");
        assert!(body.is_empty(), "HEAD {path} has a body: {body}");
    }
    let (_, metrics_body) = call(reqwest::Method::GET, "/metrics")
        .await
        .unwrap_or_default();
    assert!(
        metrics_body.contains("podgate_evaluations_total"),
        "{metrics_body}"
    );

    // Nothing else: no index, no profiler or debug pages, no files, no trailing-slash aliases.
    for path in [
        "/",
        "/index.html",
        "/debug/pprof/",
        "/debug/pprof/profile",
        "/debug/pprof/heap",
        "/debug/vars",
        "/debug",
        "/metrics/",
        "/healthz/",
        "/metrics/extra",
        "/admin",
        "/config",
        "/env",
        "/version",
        "/api/v1/query",
        "/%2e%2e/etc/passwd",
        "/../etc/passwd",
        "/METRICS",
    ] {
        let (status, body) = call(reqwest::Method::GET, path).await.unwrap_or_default();
        assert_eq!(status, 404, "GET {path} must be 404: {body}");
        assert!(
            !body.contains("podgate_"),
            "GET {path} leaks metrics: {body}"
        );
    }

    // Only GET and HEAD.
    for method in [
        "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    ] {
        for path in ["/metrics", "/healthz", "/readyz"] {
            let m = reqwest::Method::from_bytes(method.as_bytes())
                .unwrap_or_else(|e| panic!("{method}: {e}"));
            let (status, body) = call(m, path).await.unwrap_or_default();
            // CONNECT is not routed at all by the HTTP layer; the rest are known paths with
            // a method not allowed.
            let refused = if method == "CONNECT" {
                (400..500).contains(&status)
            } else {
                status == 405
            };
            assert!(
                refused,
                "{method} {path} must be refused, got {status}: {body}"
            );
            assert!(
                !body.contains("podgate_"),
                "{method} {path} leaks metrics: {body}"
            );
        }
    }
    task.abort();
}

#[test]
fn metrics_exposition_survives_hostile_label_values() {
    // Rule names are [a-z0-9-] and the other labels come from fixed sets, but the encoder
    // must not depend on that: quotes, backslashes, newlines, braces and `#` in every
    // free-text label position.
    let nasty = [
        "quote\"inside",
        "back\\slash",
        "new\nline",
        "both\\\"\n}",
        "brace} evil_metric 1\n# EOF",
        "",
        "ünïcödé ✓",
    ];
    let (m, registry) = Metrics::new();
    for (i, v) in nasty.iter().enumerate() {
        m.evaluation(v, "pass", Duration::from_millis(1));
        m.transition("rule", "False", v);
        m.source_request(v, &format!("result-{i}"), Duration::from_millis(1));
    }
    let text = metrics::encode(&registry).unwrap_or_else(|e| panic!("encode: {e}"));

    let samples: Vec<(String, Vec<(String, String)>)> =
        exposition::parse(&text, Format::OpenMetrics)
            .map(|s| {
                s.map(|s| {
                    (
                        s.name.to_string(),
                        s.labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    )
                })
            })
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("podgate's /metrics does not parse: {e}\n{text}"));

    // Nothing was injected: no sample named by the payload, and one line per real series.
    assert!(
        samples.iter().all(|(n, _)| n.starts_with("podgate_")),
        "{samples:?}"
    );
    let label = |name: &str, key: &str| -> Vec<String> {
        let mut values: Vec<String> = samples
            .iter()
            .filter(|(n, _)| n == name)
            .filter_map(|(_, l)| l.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
            .collect();
        values.sort();
        values
    };
    // An empty label value is the same as no label (as in Prometheus): that series shows
    // without it, but it is still its own series.
    let mut want: Vec<String> = nasty
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.to_string())
        .collect();
    want.sort();
    let count = |name: &str| samples.iter().filter(|(n, _)| n == name).count();
    assert_eq!(count("podgate_evaluations_total"), nasty.len(), "{text}");
    assert_eq!(
        count("podgate_gate_transitions_total"),
        nasty.len(),
        "{text}"
    );
    assert_eq!(
        count("podgate_source_requests_total"),
        nasty.len(),
        "{text}"
    );
    assert_eq!(label("podgate_evaluations_total", "rule"), want);
    assert_eq!(label("podgate_gate_transitions_total", "reason"), want);
    assert_eq!(label("podgate_source_requests_total", "source"), want);
}
