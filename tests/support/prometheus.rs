//! A real Prometheus server on 127.0.0.1 with a free port and its own storage; killed when
//! dropped. Two releases: Prometheus 3 (the reference every Prometheus-backed test runs
//! against; `PODGATE_TEST_PROMETHEUS`, which `scripts/test` sets to the binary
//! `scripts/prometheus` builds) and Debian's Prometheus 2.42 (`PODGATE_TEST_PROMETHEUS2`,
//! default `/usr/bin/prometheus`), on which a small set of the same tests keeps 2.x covered.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

const DEBIAN_BINARY: &str = "/usr/bin/prometheus";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Which Prometheus a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Prometheus 3 (built from its Go module by `scripts/prometheus`).
    V3,
    /// Prometheus 2 (Debian 12's package, 2.42).
    V2,
}

impl Release {
    /// The major version the server must report.
    pub fn major(self) -> &'static str {
        match self {
            Release::V3 => "3",
            Release::V2 => "2",
        }
    }

    fn binary(self) -> PathBuf {
        let (var, default, hint) = match self {
            Release::V3 => (
                "PODGATE_TEST_PROMETHEUS",
                None,
                "scripts/test sets it; by hand: export \
                 PODGATE_TEST_PROMETHEUS=$(scripts/prometheus path)",
            ),
            Release::V2 => (
                "PODGATE_TEST_PROMETHEUS2",
                Some(DEBIAN_BINARY),
                "install the Debian package prometheus (scripts/test does) or set \
                 PODGATE_TEST_PROMETHEUS2",
            ),
        };
        let binary = std::env::var_os(var)
            .map(PathBuf::from)
            .or_else(|| default.map(PathBuf::from))
            .unwrap_or_else(|| panic!("{var} is not set: {hint}"));
        if !binary.exists() {
            panic!("{} ({var}) not found: {hint}", binary.display());
        }
        binary
    }
}

pub struct Prometheus {
    child: Child,
    /// Config, TSDB and log; removed when the server is dropped.
    _dir: TempDir,
    port: u16,
    http: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus 3 with `config_yaml` as its configuration file and waits until
    /// `/-/ready` answers 200.
    pub async fn start(config_yaml: &str) -> Prometheus {
        Prometheus::start_release(Release::V3, config_yaml).await
    }

    /// As [`Prometheus::start`], with the given release; checks the server is that release.
    pub async fn start_release(release: Release, config_yaml: &str) -> Prometheus {
        let prometheus = Prometheus::spawn_ready(release.binary(), config_yaml).await;
        let version = prometheus.version().await;
        assert!(
            version.split('.').next() == Some(release.major()),
            "expected Prometheus {}.x, the server reports {version}",
            release.major()
        );
        prometheus
    }

    /// The version the server reports (`/api/v1/status/buildinfo`), e.g. `3.16.0`.
    pub async fn version(&self) -> String {
        let url = format!("{}/api/v1/status/buildinfo", self.url());
        let text = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"))
            .text()
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
        json["data"]["version"]
            .as_str()
            .unwrap_or_else(|| panic!("{url}: no data.version in {json}"))
            .to_string()
    }

    async fn spawn_ready(binary: PathBuf, config_yaml: &str) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("podgate-prometheus-")
            .tempdir()
            .unwrap_or_else(|e| panic!("prometheus: creating a temp dir: {e}"));
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml)
            .unwrap_or_else(|e| panic!("prometheus: writing {}: {e}", config.display()));
        let http = super::http_client(Duration::from_secs(10));

        // The port is free when picked but may be taken before Prometheus binds it: retry.
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = spawn(&binary, dir.path(), &config, port);
            match wait_ready(&mut child, &http, port, dir.path()).await {
                Ok(()) => {
                    return Prometheus {
                        child,
                        _dir: dir,
                        port,
                        http,
                    };
                }
                Err(log) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if !log.contains("address already in use") {
                        panic!("prometheus did not become ready: {log}");
                    }
                    last_log = log;
                }
            }
        }
        panic!("prometheus could not bind a free port in 5 attempts: {last_log}");
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An instant query; returns the `data` object of a successful answer, fails the test
    /// otherwise.
    pub async fn query(&self, promql: &str) -> Value {
        let url = format!(
            "{}/api/v1/query?query={}",
            self.url(),
            percent_encode(promql)
        );
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("prometheus query {promql:?}: {e}"));
        let status = response.status();
        let text = response
            .text()
            .await
            .unwrap_or_else(|e| panic!("prometheus query {promql:?}: reading the body: {e}"));
        let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!("prometheus query {promql:?}: HTTP {status}, body not JSON ({e}): {text}")
        });
        if json.get("status").and_then(Value::as_str) != Some("success") {
            panic!("prometheus query {promql:?} failed: HTTP {status}: {text}");
        }
        json.get("data").cloned().unwrap_or(Value::Null)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `/-/ready`; on failure returns what went wrong with the log tail.
async fn wait_ready(
    child: &mut Child,
    http: &reqwest::Client,
    port: u16,
    dir: &Path,
) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/-/ready");
    let log = || {
        let text = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
        tail(&text, 30)
    };
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "prometheus exited with {status} during startup; log:\n{}",
                log()
            ));
        }
        if let Ok(r) = http.get(&url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(format!(
                "{url} not ready after {READY_TIMEOUT:?}; log:\n{}",
                log()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spawn(binary: &Path, dir: &Path, config: &Path, port: u16) -> Child {
    let log_path = dir.join("prometheus.log");
    let log = File::create(&log_path)
        .unwrap_or_else(|e| panic!("prometheus: creating {}: {e}", log_path.display()));
    let log_err = log
        .try_clone()
        .unwrap_or_else(|e| panic!("prometheus: {}: {e}", log_path.display()));
    Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-lifecycle")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .unwrap_or_else(|e| panic!("prometheus: starting {}: {e}", binary.display()))
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("prometheus: finding a free port: {e}"))
}

/// Percent-encodes a query parameter value (everything but RFC 3986 unreserved characters).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
