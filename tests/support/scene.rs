//! What most daemon tests set up: a namespace of their own with a pods API and a stand-in
//! kubelet, pods that each serve metrics on their own loopback address, and reading or
//! waiting for a pod's gate condition.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::Api;

use super::daemon::{Daemon, rules_dir};
use super::{
    ControlPlane, Kubelet, MetricsEndpoint, TestNamespace, TestPod, condition, unique_loopback_ip,
};

/// How long a gate may take to reach an expected state. Generous: the machine running the
/// tests is shared, and a debug build of the daemon is slow.
pub const GATE_TIMEOUT: Duration = Duration::from_secs(30);

/// A gate condition as read from a pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub status: String,
    pub reason: String,
    pub message: String,
    pub last_transition: Option<String>,
}

/// The condition `gate` of `pod`, if present.
pub fn gate_of_pod(pod: &Pod, gate: &str) -> Option<Gate> {
    let c = condition(pod, gate)?;
    Some(Gate {
        status: c.status.clone(),
        reason: c.reason.clone().unwrap_or_default(),
        message: c.message.clone().unwrap_or_default(),
        last_transition: c.last_transition_time.as_ref().map(|t| t.0.to_string()),
    })
}

/// One test's namespace, its pods and its kubelet.
pub struct Scene {
    pub ns: TestNamespace,
    pub admin: Client,
    pub pods: Api<Pod>,
    pub kubelet: Kubelet,
}

impl Scene {
    pub async fn new(prefix: &str) -> Scene {
        Scene::on(TestNamespace::new(prefix).await)
    }

    /// As [`Scene::new`], on the control plane `cp` (e.g. a private one).
    pub async fn new_on(cp: &ControlPlane, prefix: &str) -> Scene {
        Scene::on(TestNamespace::new_on(cp, prefix).await)
    }

    fn on(ns: TestNamespace) -> Scene {
        let admin = ns.admin_client();
        let pods: Api<Pod> = ns.api(admin.clone());
        let kubelet = Kubelet::new(admin.clone(), ns.name());
        Scene {
            ns,
            admin,
            pods,
            kubelet,
        }
    }

    pub fn name(&self) -> &str {
        self.ns.name()
    }

    /// Starts a daemon on this namespace with a rules directory holding `rules` (a rule
    /// file's text) and `flags`, and waits until it is ready.
    pub async fn start_daemon(&self, rules: &str, flags: &[&str]) -> Daemon {
        let dir = rules_dir(rules);
        let daemon = Daemon::start(dir.path(), self.name(), flags).owning_rules(dir);
        daemon.wait_ready().await;
        daemon
    }

    /// Starts a metrics endpoint on a fresh loopback address serving `body`, creates `pod`
    /// with its container port `metrics` pointing there, and does not run it yet.
    #[must_use = "dropping the endpoint stops it"]
    pub async fn pending_pod(&self, pod: TestPod, body: &str) -> MetricsEndpoint {
        let ep = MetricsEndpoint::start(unique_loopback_ip()).await;
        ep.set_body(body);
        pod.port("metrics", ep.port()).create(&self.pods).await;
        ep
    }

    /// As [`Scene::pending_pod`], then runs the pod at the endpoint's address with
    /// ContainersReady True.
    #[must_use = "dropping the endpoint stops it"]
    pub async fn running_pod(&self, pod: TestPod, body: &str) -> MetricsEndpoint {
        let name = pod.name.clone();
        let ep = self.pending_pod(pod, body).await;
        self.kubelet.run(&name, ep.ip(), true).await;
        ep
    }

    pub async fn pod(&self, name: &str) -> Pod {
        self.pods
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("reading pod {name}: {e}"))
    }

    /// The gate condition of pod `name`, if present.
    pub async fn gate(&self, name: &str, gate: &str) -> Option<Gate> {
        gate_of_pod(&self.pod(name).await, gate)
    }

    pub async fn resource_version(&self, name: &str) -> String {
        self.pod(name)
            .await
            .metadata
            .resource_version
            .unwrap_or_default()
    }

    /// Waits until pod `name`'s `gate` has `status` and `reason`; returns it. On timeout the
    /// test fails with the last condition seen and the daemon's log.
    pub async fn wait_gate(
        &self,
        name: &str,
        gate: &str,
        status: &str,
        reason: &str,
        daemon: &Daemon,
    ) -> Gate {
        self.wait_gate_within(name, gate, status, reason, daemon, GATE_TIMEOUT)
            .await
    }

    /// As [`Scene::wait_gate`], with its own timeout (e.g. after an outage, when the daemon's
    /// retries are backing off).
    pub async fn wait_gate_within(
        &self,
        name: &str,
        gate: &str,
        status: &str,
        reason: &str,
        daemon: &Daemon,
        timeout: Duration,
    ) -> Gate {
        let started = Instant::now();
        loop {
            let seen = self.pods.get(name).await.map(|p| gate_of_pod(&p, gate));
            if let Ok(Some(g)) = &seen
                && g.status == status
                && g.reason == reason
            {
                return g.clone();
            }
            if started.elapsed() > timeout {
                panic!(
                    "pod {}/{name}: gate {gate} not {status}/{reason} after {timeout:?}; \
                     last seen: {seen:?}\ndaemon metrics:\n{}\ndaemon log (tail):\n{}",
                    self.name(),
                    daemon.activity().await,
                    daemon.log_tail(80)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
