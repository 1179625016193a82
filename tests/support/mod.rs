//! Shared support for podgate's integration tests: a real control plane (kube-apiserver,
//! etcd, kube-controller-manager and, inside scripts/test's network namespace, a hollow-node
//! kubelet; see `scripts/control-plane`), per-test namespaces, pods and a stand-in kubelet (also
//! for controller-made pods: `fleet`), loopback metrics endpoints, a client_golang endpoint
//! with native histograms, a real Prometheus, and `wait_for`.
//!
//! `tests/integration.rs` declares it once; each test module takes it with
//! `use crate::support;`. Test code fails loudly: a helper that cannot do its job panics with
//! the reason, so the test fails (never skips).

pub mod control_plane;
pub mod daemon;
pub mod exposition;
pub mod fleet;
pub mod manifests;
pub mod metrics_endpoint;
pub mod native_endpoint;
pub mod pods;
pub mod prometheus;
pub mod proxy;
pub mod rules;
pub mod scene;

use std::fmt::Debug;
use std::future::Future;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use control_plane::{Component, ControlPlane, PrivateControlPlane, TestNamespace};
pub use metrics_endpoint::MetricsEndpoint;
pub use native_endpoint::NativeEndpoint;
pub use pods::{Kubelet, TestPod, condition, condition_status};
pub use prometheus::{Prometheus, Release};
pub use rules::{RuleYaml, labelled_queue, queue, rule_file};

/// Installs the process-wide TLS provider the product uses (see `source::init_tls`).
pub fn install_crypto_provider() {
    podgate::source::init_tls();
}

/// A plain HTTP client for tests (e.g. to scrape a [`MetricsEndpoint`] directly).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .unwrap_or_else(|e| panic!("building an HTTP client: {e}"))
}

/// What a `wait_for` poll saw: done with a value, or not yet (with what it observed).
///
/// Implemented for `Option<T>` (`None` = not yet) and for `Result<T, S>` where `Err(state)`
/// means "not yet, and this is what I saw" — prefer the latter, its state ends up in the
/// failure message.
pub trait Observation {
    type Output;
    /// `Ok(value)` when done, else `Err(debug text of what was observed)`.
    fn into_outcome(self) -> Result<Self::Output, String>;
}

impl<T> Observation for Option<T> {
    type Output = T;
    fn into_outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "None".to_string())
    }
}

impl<T, S: Debug> Observation for Result<T, S> {
    type Output = T;
    fn into_outcome(self) -> Result<T, String> {
        self.map_err(|state| format!("{state:#?}"))
    }
}

/// Polls `poll` until it reports done, and returns its value. On timeout the test fails with
/// `what` and the last observed state.
///
/// ```ignore
/// let pod = wait_for("gate True", Duration::from_secs(10), || async {
///     let pod = pods.get("web").await.map_err(|e| e.to_string())?;
///     if condition_status(&pod, GATE) == Some("True") { Ok(pod) } else { Err(pod.status) }
/// })
/// .await;
/// ```
pub async fn wait_for<F, Fut, O>(what: &str, timeout: Duration, mut poll: F) -> O::Output
where
    F: FnMut() -> Fut,
    Fut: Future<Output = O>,
    O: Observation,
{
    let started = Instant::now();
    let mut polls = 0u32;
    loop {
        polls += 1;
        let last = match poll().await.into_outcome() {
            Ok(value) => return value,
            Err(state) => state,
        };
        if started.elapsed() >= timeout {
            panic!(
                "timed out after {timeout:?} ({polls} polls) waiting for: {what}\nlast observed: {last}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A process-unique lowercase suffix for names: pid, a counter and the clock, so parallel
/// tests and repeated runs against one long-lived control plane never collide.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:x}{:05x}", std::process::id(), n, nanos & 0xfffff)
}

/// A loopback address (127.0.x.y, the whole 127/8 is local on Linux) not handed out before in
/// this test binary, so every test pod gets its own IP.
pub fn unique_loopback_ip() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Start from the pid so two test binaries running at once rarely share addresses; ports
    // are picked free anyway.
    let n = NEXT.fetch_add(1, Ordering::Relaxed) + (std::process::id() % 200) * 250;
    let third = ((n / 250) % 250 + 1) as u8;
    let fourth = (n % 250 + 2) as u8;
    Ipv4Addr::new(127, 0, third, fourth)
}

/// An address of the stand-in pod network `a.b.0.0/16` ([`ControlPlane::pod_network`]: local
/// to lo inside scripts/test's network namespace) not handed out before in this test binary.
pub fn unique_pod_ip([a, b]: [u8; 2]) -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) + (std::process::id() % 200) * 250;
    let third = ((n / 250) % 250 + 1) as u8;
    let fourth = (n % 250 + 2) as u8;
    Ipv4Addr::new(a, b, third, fourth)
}
