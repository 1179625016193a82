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
        let dir = tempfile::tempdir().expect("daemon tempdir");
        let log_path = dir.path().join("podgate.log");
        let log = std::fs::File::create(&log_path).expect("daemon log");
        let err = log.try_clone().expect("daemon log");
        let metrics_addr = free_addr();
        let child = Command::new(env!("CARGO_BIN_EXE_podgate"))
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
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
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

    /// The daemon's /metrics text.
    pub async fn metrics(&self) -> String {
        match self.get("/metrics").await {
            Ok((200, body)) => body,
            other => panic!("podgate /metrics: {other:?}\nlog:\n{}", self.log()),
        }
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
