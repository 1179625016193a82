//! `podgate run` as a child process against the test control plane, as the `podgate` user
//! (so the daemon proves its RBAC), scoped to one test namespace.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::ControlPlane;

pub struct Daemon {
    child: Option<Child>,
    pub metrics_addr: SocketAddr,
    log_path: PathBuf,
    _dir: tempfile::TempDir,
    /// The rules directory, when the daemon owns it (see [`Daemon::owning_rules`]).
    _rules: Option<tempfile::TempDir>,
}

/// A free loopback port for the daemon's metrics server.
fn free_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr")
}

impl Daemon {
    /// Starts the daemon on `rules_dir`, watching only `namespace`, plus `extra` flags.
    pub fn start(rules_dir: &Path, namespace: &str, extra: &[&str]) -> Daemon {
        let kubeconfig = ControlPlane::get().podgate_kubeconfig_path().to_path_buf();
        Daemon::start_with_kubeconfig(&kubeconfig, rules_dir, namespace, extra)
    }

    /// As [`Daemon::start`], reaching the API server through `kubeconfig` (e.g. a proxy's).
    pub fn start_with_kubeconfig(
        kubeconfig: &Path,
        rules_dir: &Path,
        namespace: &str,
        extra: &[&str],
    ) -> Daemon {
        Daemon::start_with_env(kubeconfig, rules_dir, namespace, extra, &[])
    }

    /// As [`Daemon::start_with_kubeconfig`], with extra environment variables (they win over
    /// the defaults, e.g. `RUST_LOG`).
    pub fn start_with_env(
        kubeconfig: &Path,
        rules_dir: &Path,
        namespace: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let binary = Command::new(env!("CARGO_BIN_EXE_podgate"));
        Daemon::spawn(binary, kubeconfig, rules_dir, namespace, extra, env)
    }

    /// Starts `podgate run` with `launcher`: the podgate binary, or a command that ends by
    /// running it (e.g. in a chroot), with the arguments of `run` appended. The paths are as
    /// the binary sees them.
    pub fn spawn(
        mut launcher: Command,
        kubeconfig: &Path,
        rules_dir: &Path,
        namespace: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let dir = tempfile::tempdir().expect("daemon tempdir");
        let log_path = dir.path().join("podgate.log");
        let log = std::fs::File::create(&log_path).expect("daemon log");
        let err = log.try_clone().expect("daemon log");
        let metrics_addr = free_addr();
        let child = launcher
            .arg("run")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--rules-dir")
            .arg(rules_dir)
            .arg("--namespace")
            .arg(namespace)
            .arg("--metrics-addr")
            .arg(metrics_addr.to_string())
            .arg("--lease-namespace")
            .arg("podgate")
            .args(extra)
            .env("RUST_LOG", "info,podgate=debug")
            .envs(env.iter().copied())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("start podgate run");
        Daemon {
            child: Some(child),
            metrics_addr,
            log_path,
            _dir: dir,
            _rules: None,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    async fn get(&self, path: &str) -> Result<(u16, String), String> {
        let client = super::http_client(Duration::from_secs(2));
        let r = client
            .get(format!("http://{}{path}", self.metrics_addr))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r.text().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    /// What the daemon's own metrics say about evaluations, sources and writes, for failure
    /// messages (empty when /metrics does not answer).
    pub async fn activity(&self) -> String {
        let Ok((200, text)) = self.get("/metrics").await else {
            return String::new();
        };
        text.lines()
            .filter(|l| {
                !l.starts_with('#')
                    && [
                        "podgate_evaluations_total",
                        "podgate_source_requests_total",
                        "podgate_kube_writes_total",
                        "podgate_leader",
                        "podgate_pods_tracked",
                    ]
                    .iter()
                    .any(|m| l.starts_with(m))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The daemon's /metrics text.
    pub async fn metrics(&self) -> String {
        match self.get("/metrics").await {
            Ok((200, body)) => body,
            other => panic!("podgate /metrics: {other:?}\nlog:\n{}", self.log()),
        }
    }

    /// Keeps `rules` (the directory it runs on) for as long as the daemon lives.
    pub fn owning_rules(mut self, rules: tempfile::TempDir) -> Daemon {
        self._rules = Some(rules);
        self
    }

    /// Waits (up to 20s) until the sample `series` of /metrics reads `want`.
    pub async fn wait_metric(&self, series: &str, want: f64) {
        super::wait_for(
            &format!("{series} == {want}"),
            Duration::from_secs(20),
            || async {
                match self.metric(series).await {
                    Some(v) if v == want => Ok(()),
                    other => Err(other),
                }
            },
        )
        .await;
    }

    /// The value of one sample in /metrics (exact series text before the value).
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self.metrics().await;
        text.lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
    }

    /// Every sample of /metrics.
    pub async fn samples(&self) -> Vec<MetricSample> {
        parse_metrics(&self.metrics().await)
    }

    /// The sum of the samples of metric `name` whose labels include `labels` (0 when none).
    pub async fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        sum_of(&self.samples().await, name, labels)
    }

    /// Successful gate writes so far (`podgate_kube_writes_total{result="ok"}`).
    pub async fn writes_ok(&self) -> f64 {
        self.sum("podgate_kube_writes_total", &[("result", "ok")])
            .await
    }

    /// Waits until `podgate_leader` is `want`; returns how long that took.
    pub async fn wait_leader(&self, want: f64, timeout: Duration) -> Duration {
        let started = Instant::now();
        super::wait_for(
            &format!("podgate_leader {want} on pid {}", self.pid()),
            timeout,
            || async {
                match self.metric("podgate_leader").await {
                    Some(v) if v == want => Ok(()),
                    other => Err(other),
                }
            },
        )
        .await;
        started.elapsed()
    }

    /// Waits until /readyz answers 200.
    pub async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = self.get("/readyz").await {
                return;
            }
            if let Some(status) = self.try_exit() {
                panic!("podgate exited early ({status}):\n{}", self.log());
            }
            if started.elapsed() > Duration::from_secs(30) {
                panic!("podgate not ready after 30s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn readyz(&self) -> (u16, String) {
        self.get("/readyz").await.unwrap_or((0, String::new()))
    }

    fn try_exit(&self) -> Option<ExitStatus> {
        // Child::try_wait needs &mut; peek through /proc instead to keep &self.
        let pid = self.pid();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.split_whitespace()
            .nth(2)
            .filter(|s| *s == "Z")
            .map(|_| ExitStatus::default())
    }

    /// Sends a signal to the daemon.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status();
    }

    /// SIGTERM, then waits for the exit; returns how long it took.
    pub fn stop(&mut self) -> Duration {
        let started = Instant::now();
        self.signal("TERM");
        if let Some(mut c) = self.child.take() {
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if started.elapsed() > Duration::from_secs(20) {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        started.elapsed()
    }

    /// Waits up to `timeout` for the daemon to exit on its own; returns its exit code
    /// (`None` if still running, then killed, or ended by a signal).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let started = Instant::now();
        let mut child = self.child.take()?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if started.elapsed() < timeout => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    /// SIGKILL: no cleanup at all.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Writes a rules directory with one file.
pub fn rules_dir(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("rules tempdir");
    std::fs::write(dir.path().join("rules.yaml"), yaml).expect("write rules");
    dir
}

/// One sample of a metrics text: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSample {
    pub name: String,
    pub labels: std::collections::BTreeMap<String, String>,
    pub value: f64,
}

impl MetricSample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// Whether every `(key, value)` of `labels` is among the sample's labels.
    pub fn has(&self, labels: &[(&str, &str)]) -> bool {
        labels.iter().all(|(k, v)| self.label(k) == Some(*v))
    }
}

/// Parses the samples of a Prometheus text or OpenMetrics body (comments skipped). Test
/// code: a line it cannot read fails the test.
pub fn parse_metrics(text: &str) -> Vec<MetricSample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_sample(l).unwrap_or_else(|| panic!("unreadable metrics line: {l:?}")))
        .collect()
}

fn parse_sample(line: &str) -> Option<MetricSample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_string();
    let mut labels = std::collections::BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        let close;
        loop {
            let (i, c) = chars.next()?;
            match c {
                '}' => {
                    close = i;
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    if chars.next()?.1 != '"' {
                        return None;
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => value.push('\n'),
                                other => value.push(other),
                            },
                            '"' => break,
                            other => value.push(other),
                        }
                    }
                    labels.insert(std::mem::take(&mut key), value);
                }
                other => key.push(other),
            }
        }
        rest = &body[close + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(MetricSample {
        name,
        labels,
        value,
    })
}

/// The sum of the samples named `name` whose labels include `labels` (0 when none).
pub fn sum_of(samples: &[MetricSample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name && s.has(labels))
        .map(|s| s.value)
        .sum()
}

/// Writes rule files the way a ConfigMap volume presents them: the files live in a
/// timestamped directory, `..data` links to it, and each file name links through `..data`.
/// [`ConfigMapDir::update`] swaps `..data` atomically, as the kubelet does.
pub struct ConfigMapDir {
    dir: tempfile::TempDir,
    version: u32,
}

impl ConfigMapDir {
    pub fn new(files: &[(&str, &str)]) -> ConfigMapDir {
        let dir = tempfile::tempdir().expect("configmap tempdir");
        let mut cm = ConfigMapDir { dir, version: 0 };
        cm.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), cm.path().join(name))
                .expect("configmap file link");
        }
        cm
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The directory `..data` points at now.
    pub fn current(&self) -> PathBuf {
        self.path().join(format!("..v{}", self.version))
    }

    /// Writes a new version of the files and swaps `..data` to it (same file names).
    pub fn update(&mut self, files: &[(&str, &str)]) {
        let old = (self.version > 0).then(|| self.current());
        self.version += 1;
        let next = self.current();
        std::fs::create_dir(&next).expect("configmap version dir");
        for (name, text) in files {
            std::fs::write(next.join(name), text).expect("configmap file");
        }
        let tmp = self.path().join("..data_tmp");
        std::os::unix::fs::symlink(format!("..v{}", self.version), &tmp)
            .expect("configmap ..data_tmp link");
        std::fs::rename(&tmp, self.path().join("..data")).expect("configmap ..data swap");
        if let Some(old) = old {
            std::fs::remove_dir_all(old).expect("configmap old version");
        }
    }
}
