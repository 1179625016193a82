//! `podgate run` as pods change under it: a pod deleted and recreated under the same name,
//! a pod whose IP changes, ContainersReady turning False then True again. Nothing stale is
//! written and the pod as it is now gets evaluated.

use crate::support;

use std::time::Duration;

use support::pods::delete_pod_now;
use support::scene::Scene;
use support::{MetricsEndpoint, TestPod, unique_loopback_ip};
use support::{RuleYaml, queue};

const GATE: &str = "podgate.dev/churn-healthy";

fn rules() -> String {
    RuleYaml::queue(GATE).file()
}

/// Scrapes `ep` receives over `d` (after a short settling pause for one in flight).
async fn scrapes_during(ep: &MetricsEndpoint, d: Duration) -> u64 {
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before = ep.requests();
    tokio::time::sleep(d).await;
    ep.requests() - before
}

#[tokio::test]
async fn a_pod_recreated_under_the_same_name_gets_nothing_stale_and_is_evaluated_afresh() {
    let scene = Scene::new("recreate").await;
    let daemon = scene.start_daemon(&rules(), &[]).await;
    let old = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(1))
        .await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    let old_uid = scene.pod("web").await.metadata.uid;

    // The old pod turns bad just as it is replaced: its False must never reach the new pod.
    old.set_body(queue(500));
    tokio::time::sleep(Duration::from_millis(300)).await;
    delete_pod_now(&scene.pods, "web").await;
    let new = scene
        .pending_pod(TestPod::new("web").gate(GATE), &queue(2))
        .await;
    let created = scene.pod("web").await;
    assert_ne!(created.metadata.uid, old_uid);
    let rv = created
        .metadata
        .resource_version
        .clone()
        .unwrap_or_default();

    // Pending: nothing is written to it, whatever the old pod's state was.
    assert_eq!(scrapes_during(&old, Duration::from_secs(2)).await, 0);
    assert_eq!(scene.resource_version("web").await, rv);
    assert_eq!(scene.gate("web", GATE).await, None);

    // Running: evaluated on its own endpoint.
    scene.kubelet.run("web", new.ip(), true).await;
    let g = scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=2 < 100"), "{g:?}");
    new.set_body(queue(300));
    let g = scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=300 >= 100"), "{g:?}");
    assert_eq!(scrapes_during(&old, Duration::from_secs(1)).await, 0);
}

#[tokio::test]
async fn a_new_pod_ip_is_scraped_and_the_old_address_forgotten() {
    let scene = Scene::new("new-ip").await;
    let daemon = scene.start_daemon(&rules(), &[]).await;
    let first = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(1))
        .await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    // Same declared port, another address, other values.
    let second = MetricsEndpoint::start_on(unique_loopback_ip(), first.port()).await;
    second.set_body(queue(700));
    scene.kubelet.set_pod_ip("web", second.ip()).await;
    let g = scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=700 >= 100"), "{g:?}");
    assert!(second.requests() >= 1);
    assert_eq!(scrapes_during(&first, Duration::from_secs(2)).await, 0);
    second.set_body(queue(3));
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
}

#[tokio::test]
async fn containers_not_ready_pauses_evaluation_and_ready_again_resumes_it() {
    let scene = Scene::new("containers-ready").await;
    let daemon = scene.start_daemon(&rules(), &[]).await;
    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(1))
        .await;
    let healthy = scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    // Not ready: no scrapes, no writes, even though the values went bad meanwhile.
    scene.kubelet.set_containers_ready("web", false).await;
    ep.set_body(queue(900));
    assert_eq!(scrapes_during(&ep, Duration::from_secs(2)).await, 0);
    assert_eq!(scene.gate("web", GATE).await, Some(healthy));

    // Ready again: evaluated at once, on today's values.
    scene.kubelet.set_containers_ready("web", true).await;
    let g = scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=900 >= 100"), "{g:?}");
    ep.set_body(queue(1));
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
}
