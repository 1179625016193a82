//! Checks of the test environment itself: the control plane accepts podgate's status writes
//! without disturbing the kubelet's conditions, podgate's RBAC is sufficient and minimal, test
//! metrics endpoints are reachable at pod IPs, and Prometheus runs and answers.

use crate::support;

use std::fmt::Debug;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod, Secret};
use k8s_openapi::api::events::v1::Event as EventV1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::api::{WatchEvent, WatchParams};
use serde_json::json;
use support::pods::delete_pod_now;
use support::{
    ControlPlane, Kubelet, MetricsEndpoint, Prometheus, Release, TestNamespace, TestPod, condition,
    condition_status, unique_loopback_ip, wait_for,
};

const GATE: &str = "podgate.dev/smoke";

fn assert_forbidden<T: Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

fn assert_allowed<T>(what: &str, result: Result<T, kube::Error>) -> T {
    result.unwrap_or_else(|e| panic!("{what}: expected to be allowed, got {e}"))
}

/// A strategic-merge patch of podgate's own condition only, as podgate writes it.
fn gate_patch(status: &str, reason: &str, message: &str) -> Patch<serde_json::Value> {
    Patch::Strategic(json!({
        "status": { "conditions": [{
            "type": GATE,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        }]}
    }))
}

#[tokio::test]
async fn podgate_patches_its_condition_and_kubelet_conditions_survive() {
    let ns = TestNamespace::new("smoke-status").await;
    let cp = ControlPlane::get();
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    let podgate_pods: Api<Pod> = ns.api(cp.podgate_client().await);
    let kubelet = Kubelet::new(ns.admin_client(), ns.name());

    TestPod::new("web")
        .gate(GATE)
        .label("app", "web")
        .create(&admin_pods)
        .await;
    let ip = unique_loopback_ip();
    let running = kubelet.run("web", ip, true).await;
    let status = running.status.clone().unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert_eq!(status.pod_ip, Some(ip.to_string()));
    // The gate has no condition yet, so the kubelet holds Ready False.
    assert_eq!(condition_status(&running, "ContainersReady"), Some("True"));
    assert_eq!(condition_status(&running, "Ready"), Some("False"));
    assert_eq!(
        condition(&running, "Ready").and_then(|c| c.reason.as_deref()),
        Some("ReadinessGatesNotReady")
    );
    let scheduled_before = condition(&running, "PodScheduled").cloned();

    let patched = assert_allowed(
        "podgate patches pods/status",
        podgate_pods
            .patch_status(
                "web",
                &PatchParams::default(),
                &gate_patch(
                    "True",
                    "MetricsHealthy",
                    "errors/requests=0 < 0.01 (rule smoke)",
                ),
            )
            .await,
    );
    let gate = condition(&patched, GATE).cloned();
    assert_eq!(gate.as_ref().map(|c| c.status.as_str()), Some("True"));
    assert_eq!(
        gate.as_ref().and_then(|c| c.reason.as_deref()),
        Some("MetricsHealthy")
    );

    // Read back through a fresh GET: the kubelet's conditions are intact.
    let read = assert_allowed("podgate gets the pod", podgate_pods.get("web").await);
    assert_eq!(condition_status(&read, GATE), Some("True"));
    assert_eq!(condition_status(&read, "ContainersReady"), Some("True"));
    assert_eq!(condition_status(&read, "Ready"), Some("False"));
    assert_eq!(condition(&read, "PodScheduled").cloned(), scheduled_before);
    assert_eq!(
        read.status.as_ref().and_then(|s| s.pod_ip.clone()),
        Some(ip.to_string())
    );

    // The kubelet's next sync turns Ready True now that the gate is True...
    let synced = kubelet.sync_ready("web").await;
    assert_eq!(condition_status(&synced, "Ready"), Some("True"));
    assert_eq!(
        condition(&synced, "Ready").and_then(|c| c.reason.clone()),
        None
    );

    // ...and False again when podgate flips the gate.
    assert_allowed(
        "podgate patches pods/status again",
        podgate_pods
            .patch_status(
                "web",
                &PatchParams::default(),
                &gate_patch(
                    "False",
                    "MetricsUnhealthy",
                    "errors/requests=0.5 >= 0.01 (rule smoke)",
                ),
            )
            .await,
    );
    let synced = kubelet.sync_ready("web").await;
    assert_eq!(condition_status(&synced, GATE), Some("False"));
    assert_eq!(condition_status(&synced, "Ready"), Some("False"));
    assert_eq!(condition_status(&synced, "ContainersReady"), Some("True"));

    // Containers going unready wins over the gate.
    let unready = kubelet.set_containers_ready("web", false).await;
    assert_eq!(
        condition(&unready, "Ready").and_then(|c| c.reason.as_deref()),
        Some("ContainersNotReady")
    );
    assert_eq!(condition_status(&unready, GATE), Some("False"));

    delete_pod_now(&admin_pods, "web").await;
    wait_for("pod web deleted", Duration::from_secs(10), || async {
        match admin_pods.get_opt("web").await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn podgate_rbac_is_sufficient_and_minimal() {
    let ns = TestNamespace::new("smoke-rbac").await;
    let cp = ControlPlane::get();
    let podgate = cp.podgate_client().await;
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    TestPod::new("victim").gate(GATE).create(&admin_pods).await;
    let pods: Api<Pod> = ns.api(podgate.clone());

    // Allowed: read pods, here and cluster-wide, including watches.
    assert_allowed("get pod", pods.get("victim").await);
    let listed = assert_allowed(
        "list pods in all namespaces",
        Api::<Pod>::all(podgate.clone())
            .list(&ListParams::default())
            .await,
    );
    assert!(
        listed
            .items
            .iter()
            .any(|p| p.metadata.name.as_deref() == Some("victim")
                && p.metadata.namespace.as_deref() == Some(ns.name())),
        "the cluster-wide list lacks {}/victim",
        ns.name()
    );
    let mut watch = assert_allowed(
        "watch pods",
        pods.watch(&WatchParams::default().timeout(5), "0").await,
    )
    .boxed();
    let first = watch.try_next().await;
    assert!(
        matches!(first, Ok(Some(WatchEvent::Added(_)))),
        "watch pods: expected an Added event, got {first:?}"
    );
    // The same watch on secrets is refused, so the check above can fail.
    let secret_watch = match Api::<Secret>::namespaced(podgate.clone(), ns.name())
        .watch(&WatchParams::default().timeout(5), "0")
        .await
    {
        Ok(stream) => stream.boxed().try_next().await.map(|e| format!("{e:?}")),
        Err(e) => Err(e),
    };
    assert_forbidden("watch secrets", secret_watch);

    // Forbidden: anything but the status subresource of pods, secrets, nodes.
    assert_forbidden(
        "delete pod",
        pods.delete("victim", &DeleteParams::default().grace_period(0))
            .await,
    );
    assert_forbidden(
        "patch pod labels",
        pods.patch(
            "victim",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "hacked": "yes" } } })),
        )
        .await,
    );
    let secrets: Api<Secret> = ns.api(podgate.clone());
    assert_forbidden("get secret", secrets.get("any").await);
    assert_forbidden("list secrets", secrets.list(&ListParams::default()).await);
    assert_forbidden(
        "list secrets in all namespaces",
        Api::<Secret>::all(podgate.clone())
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "patch node",
        Api::<Node>::all(podgate.clone())
            .patch(
                support::pods::TEST_NODE,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "labels": { "hacked": "yes" } } })),
            )
            .await,
    );

    // Allowed: events, in both API groups, created and patched.
    let pod_ref = json!({
        "apiVersion": "v1", "kind": "Pod", "namespace": ns.name(), "name": "victim"
    });
    let core_event: Event = serde_json::from_value(json!({
        "metadata": { "name": "victim.smoke-core", "namespace": ns.name() },
        "involvedObject": pod_ref,
        "reason": "GateTrue",
        "message": "smoke test",
        "type": "Normal",
        "source": { "component": "podgate" },
        "count": 1,
    }))
    .unwrap_or_else(|e| panic!("building a core event: {e}"));
    let core_events: Api<Event> = ns.api(podgate.clone());
    assert_allowed(
        "create core/v1 event",
        core_events
            .create(&PostParams::default(), &core_event)
            .await,
    );
    assert_allowed(
        "patch core/v1 event",
        core_events
            .patch(
                "victim.smoke-core",
                &PatchParams::default(),
                &Patch::Merge(json!({ "count": 2 })),
            )
            .await,
    );
    let v1_event = EventV1 {
        metadata: ObjectMeta {
            name: Some("victim.smoke-v1".to_string()),
            namespace: Some(ns.name().to_string()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(Timestamp::now())),
        reporting_controller: Some("podgate.dev/podgate".to_string()),
        reporting_instance: Some("podgate-smoke".to_string()),
        action: Some("Evaluate".to_string()),
        reason: Some("GateTrue".to_string()),
        note: Some("smoke test".to_string()),
        type_: Some("Normal".to_string()),
        regarding: serde_json::from_value(pod_ref.clone()).ok(),
        ..EventV1::default()
    };
    let v1_events: Api<EventV1> = ns.api(podgate.clone());
    assert_allowed(
        "create events.k8s.io/v1 event",
        v1_events.create(&PostParams::default(), &v1_event).await,
    );
    assert_allowed(
        "patch events.k8s.io/v1 event",
        v1_events
            .patch(
                "victim.smoke-v1",
                &PatchParams::default(),
                &Patch::Merge(json!({ "series": {
                    "count": 2,
                    "lastObservedTime": MicroTime(Timestamp::now()),
                }})),
            )
            .await,
    );

    // Leases: get/create/update/patch in namespace podgate only.
    let lease_name = format!("smoke-{}", support::unique_suffix());
    let leases: Api<Lease> = Api::namespaced(podgate.clone(), "podgate");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(lease_name.clone()),
            ..ObjectMeta::default()
        },
        spec: serde_json::from_value(
            json!({ "holderIdentity": "smoke-a", "leaseDurationSeconds": 15 }),
        )
        .ok(),
    };
    assert_allowed(
        "create lease in podgate",
        leases.create(&PostParams::default(), &lease).await,
    );
    let mut got = assert_allowed("get lease in podgate", leases.get(&lease_name).await);
    if let Some(spec) = got.spec.as_mut() {
        spec.holder_identity = Some("smoke-b".to_string());
    }
    let updated = assert_allowed(
        "update lease in podgate",
        leases
            .replace(&lease_name, &PostParams::default(), &got)
            .await,
    );
    assert_eq!(
        updated.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("smoke-b")
    );
    assert_allowed(
        "patch lease in podgate",
        leases
            .patch(
                &lease_name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "spec": { "holderIdentity": "smoke-c" } })),
            )
            .await,
    );
    assert_forbidden(
        "delete lease in podgate",
        leases.delete(&lease_name, &DeleteParams::default()).await,
    );
    let elsewhere: Api<Lease> = ns.api(podgate.clone());
    assert_forbidden(
        "create lease outside podgate's namespace",
        elsewhere.create(&PostParams::default(), &lease).await,
    );
    assert_forbidden(
        "get lease outside podgate's namespace",
        elsewhere.get(&lease_name).await,
    );
}

#[tokio::test]
async fn metrics_endpoint_is_reachable_at_the_pod_ip() {
    let ns = TestNamespace::new("smoke-endpoint").await;
    let endpoint = MetricsEndpoint::start(unique_loopback_ip()).await;
    endpoint.set_body("smoke_requests_total 7\n");
    let admin_pods: Api<Pod> = ns.api(ns.admin_client());
    TestPod::new("scraped")
        .gate(GATE)
        .port("metrics", endpoint.port())
        .create(&admin_pods)
        .await;
    Kubelet::new(ns.admin_client(), ns.name())
        .run("scraped", endpoint.ip(), true)
        .await;

    // Find the address the way podgate does: pod IP + named container port, as podgate.
    let podgate_pods: Api<Pod> = ns.api(ControlPlane::get().podgate_client().await);
    let pod = assert_allowed("get pod", podgate_pods.get("scraped").await);
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
    let port = pod
        .spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.ports.as_ref())
        .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some("metrics")))
        .map(|p| p.container_port);
    let (Some(ip), Some(port)) = (ip, port) else {
        panic!("pod lacks podIP or port metrics: {pod:?}");
    };
    let url = format!("http://{ip}:{port}/metrics");
    assert_eq!(url, endpoint.url());

    let http = support::http_client(Duration::from_secs(5));
    let response = http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(
        response.text().await.ok().as_deref(),
        Some("smoke_requests_total 7\n")
    );
    assert_eq!(endpoint.requests(), 1);

    // The test can change the answer at any time.
    endpoint.set_status(503);
    endpoint.set_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8");
    endpoint.set_body("down\n");
    let response = http
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.text().await.ok().as_deref(), Some("down\n"));

    // A delay longer than the client's timeout makes the scrape time out.
    endpoint.set_delay(Duration::from_secs(5));
    let slow = http
        .get(&url)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(
        slow.as_ref().is_err_and(|e| e.is_timeout()),
        "expected a timeout, got {slow:?}"
    );
    wait_for(
        "the slow request to be counted",
        Duration::from_secs(5),
        || async {
            match endpoint.requests() {
                3 => Ok(()),
                n => Err(n),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn prometheus_scrapes_and_answers_queries() {
    prometheus_smoke(Release::V3).await;
}

#[tokio::test]
async fn prometheus_2_scrapes_and_answers_queries() {
    prometheus_smoke(Release::V2).await;
}

async fn prometheus_smoke(release: Release) {
    let endpoint = MetricsEndpoint::start(unique_loopback_ip()).await;
    endpoint.set_body("# TYPE smoke_up gauge\nsmoke_up{pod=\"a\"} 42\n");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: smoke\n    static_configs:\n      - targets: ['{}']\n",
        endpoint.addr()
    );
    let prometheus = Prometheus::start_release(release, &config).await;

    let data = prometheus.query("vector(1) + 1").await;
    assert_eq!(
        data["result"][0]["value"][1],
        json!("2"),
        "vector(1)+1 answered {data}"
    );

    let value = wait_for(
        "Prometheus to scrape smoke_up",
        Duration::from_secs(30),
        || async {
            let data = prometheus.query("smoke_up").await;
            match data["result"][0]["value"][1].as_str() {
                Some(v) => Ok(v.to_string()),
                None => Err(data),
            }
        },
    )
    .await;
    assert_eq!(value, "42");
    assert!(endpoint.requests() >= 1);
}

/// What the API server says the podgate user may do: a SelfSubjectAccessReview sent with
/// podgate's own credentials, so every binding that applies to it (deploy/ and the cluster's
/// defaults) counts.
async fn podgate_may(
    podgate: &kube::Client,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> bool {
    use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
    let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": { "resourceAttributes": {
            "verb": verb,
            "group": group,
            "resource": resource,
            "subresource": subresource,
            "namespace": namespace.unwrap_or(""),
        }},
    }))
    .unwrap_or_else(|e| panic!("building a SelfSubjectAccessReview: {e}"));
    let answer = Api::<SelfSubjectAccessReview>::all(podgate.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap_or_else(|e| panic!("SelfSubjectAccessReview {verb} {group}/{resource}: {e}"));
    answer.status.is_some_and(|s| s.allowed)
}

/// `(apiGroup, resource, verb)` of every rule of a (Cluster)Role, as stored by the API server.
fn granted(rules: &[k8s_openapi::api::rbac::v1::PolicyRule], what: &str) -> Vec<String> {
    let mut out = Vec::new();
    for rule in rules {
        assert!(
            rule.resource_names.as_ref().is_none_or(Vec::is_empty)
                && rule.non_resource_urls.as_ref().is_none_or(Vec::is_empty),
            "{what}: unexpected resourceNames/nonResourceURLs in {rule:?}"
        );
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    out.push(format!("{group}/{resource}:{verb}"));
                }
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn podgate_rbac_grants_exactly_what_podgate_uses() {
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
    let ns = TestNamespace::new("smoke-rbac-sar").await;
    let cp = ControlPlane::get();
    let admin = ns.admin_client();
    let podgate = cp.podgate_client().await;
    let here = Some(ns.name());

    // The deployed roles hold these rules and nothing else: no wildcard, no extra verb.
    let cluster_role = assert_allowed(
        "get ClusterRole podgate",
        Api::<ClusterRole>::all(admin.clone()).get("podgate").await,
    );
    let mut want_cluster = vec![
        "/pods:get",
        "/pods:list",
        "/pods:watch",
        "/pods/status:patch",
        "/namespaces:get",
        "/namespaces:list",
        "/namespaces:watch",
        "/events:create",
        "/events:patch",
        "events.k8s.io/events:create",
        "events.k8s.io/events:patch",
    ];
    want_cluster.sort();
    assert_eq!(
        granted(
            cluster_role.rules.as_deref().unwrap_or_default(),
            "ClusterRole podgate"
        ),
        want_cluster
    );
    assert!(cluster_role.aggregation_rule.is_none(), "{cluster_role:?}");
    let role = assert_allowed(
        "get Role podgate/podgate-leader-election",
        Api::<Role>::namespaced(admin.clone(), "podgate")
            .get("podgate-leader-election")
            .await,
    );
    assert_eq!(
        granted(
            role.rules.as_deref().unwrap_or_default(),
            "Role podgate-leader-election"
        ),
        [
            "coordination.k8s.io/leases:create",
            "coordination.k8s.io/leases:get",
            "coordination.k8s.io/leases:patch",
            "coordination.k8s.io/leases:update",
        ]
    );
    // Bound to podgate's ServiceAccount only.
    let sa = json!([{ "kind": "ServiceAccount", "name": "podgate", "namespace": "podgate" }]);
    let crb = assert_allowed(
        "get ClusterRoleBinding podgate",
        Api::<ClusterRoleBinding>::all(admin.clone())
            .get("podgate")
            .await,
    );
    assert_eq!(serde_json::to_value(&crb.subjects).ok(), Some(sa.clone()));
    let rb = assert_allowed(
        "get RoleBinding podgate/podgate-leader-election",
        Api::<RoleBinding>::namespaced(admin.clone(), "podgate")
            .get("podgate-leader-election")
            .await,
    );
    assert_eq!(serde_json::to_value(&rb.subjects).ok(), Some(sa));

    // Every call podgate makes is allowed: the pod and namespace watches (cluster-wide and per
    // namespace), the pod read before a write, the status patch, events in both groups, the
    // lease in podgate's namespace.
    let needed: &[(&str, &str, &str, Option<&str>)] = &[
        ("get", "", "pods", here),
        ("list", "", "pods", here),
        ("watch", "", "pods", here),
        ("list", "", "pods", None),
        ("watch", "", "pods", None),
        ("patch", "", "pods/status", here),
        ("get", "", "namespaces", None),
        ("list", "", "namespaces", None),
        ("watch", "", "namespaces", None),
        ("create", "", "events", here),
        ("patch", "", "events", here),
        ("create", "events.k8s.io", "events", here),
        ("patch", "events.k8s.io", "events", here),
        ("get", "coordination.k8s.io", "leases", Some("podgate")),
        ("create", "coordination.k8s.io", "leases", Some("podgate")),
        ("update", "coordination.k8s.io", "leases", Some("podgate")),
        ("patch", "coordination.k8s.io", "leases", Some("podgate")),
    ];
    // The likely over-grants are refused.
    let refused: &[(&str, &str, &str, Option<&str>)] = &[
        // The pod itself: never written, never created.
        ("update", "", "pods", here),
        ("patch", "", "pods", here),
        ("delete", "", "pods", here),
        ("deletecollection", "", "pods", here),
        ("create", "", "pods", here),
        ("create", "", "pods", None),
        ("create", "", "pods/eviction", here),
        ("create", "", "pods/exec", here),
        ("get", "", "pods/log", here),
        ("patch", "", "pods/ephemeralcontainers", here),
        ("create", "", "pods/binding", here),
        // The status subresource: patch only.
        ("update", "", "pods/status", here),
        ("create", "", "pods/status", here),
        ("delete", "", "pods/status", here),
        // Secrets: not readable anywhere, podgate's own namespace included.
        ("get", "", "secrets", here),
        ("list", "", "secrets", here),
        ("watch", "", "secrets", here),
        ("list", "", "secrets", None),
        ("get", "", "secrets", Some("podgate")),
        // ConfigMaps (the rules arrive as a volume): no writes, no reads.
        ("create", "", "configmaps", here),
        ("update", "", "configmaps", Some("podgate")),
        ("patch", "", "configmaps", Some("podgate")),
        ("delete", "", "configmaps", Some("podgate")),
        ("get", "", "configmaps", Some("podgate")),
        // Leases: only in podgate's namespace, and never deleted or listed.
        ("get", "coordination.k8s.io", "leases", here),
        ("create", "coordination.k8s.io", "leases", here),
        ("update", "coordination.k8s.io", "leases", here),
        ("patch", "coordination.k8s.io", "leases", here),
        (
            "create",
            "coordination.k8s.io",
            "leases",
            Some("kube-system"),
        ),
        ("create", "coordination.k8s.io", "leases", None),
        ("delete", "coordination.k8s.io", "leases", Some("podgate")),
        ("list", "coordination.k8s.io", "leases", Some("podgate")),
        // Nodes and namespaces: read namespaces only.
        ("create", "", "nodes", None),
        ("update", "", "nodes", None),
        ("patch", "", "nodes", None),
        ("delete", "", "nodes", None),
        ("patch", "", "nodes/status", None),
        ("get", "", "nodes", None),
        ("create", "", "namespaces", None),
        ("update", "", "namespaces", None),
        ("patch", "", "namespaces", None),
        ("delete", "", "namespaces", None),
        // Events: recorded, never removed or rewritten wholesale.
        ("delete", "", "events", here),
        ("deletecollection", "", "events", here),
        ("update", "", "events", here),
        ("delete", "events.k8s.io", "events", here),
        // Credentials and privilege: no tokens, no RBAC, no webhooks, no workloads.
        ("create", "", "serviceaccounts/token", Some("podgate")),
        (
            "create",
            "rbac.authorization.k8s.io",
            "clusterrolebindings",
            None,
        ),
        (
            "escalate",
            "rbac.authorization.k8s.io",
            "clusterroles",
            None,
        ),
        ("bind", "rbac.authorization.k8s.io", "clusterroles", None),
        (
            "patch",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            None,
        ),
        ("patch", "apps", "deployments", Some("podgate")),
        // Wildcards.
        ("*", "", "pods", here),
        ("*", "*", "*", None),
        ("*", "*", "*", Some("podgate")),
        ("impersonate", "", "users", None),
    ];
    let mut wrong = Vec::new();
    for (verb, group, resource, namespace) in needed {
        if !podgate_may(&podgate, verb, group, resource, *namespace).await {
            wrong.push(format!(
                "needed but refused: {verb} {group}/{resource} in {namespace:?}"
            ));
        }
    }
    for (verb, group, resource, namespace) in refused {
        if podgate_may(&podgate, verb, group, resource, *namespace).await {
            wrong.push(format!(
                "over-granted: {verb} {group}/{resource} in {namespace:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "podgate's RBAC:\n{}", wrong.join("\n"));
}

/// The API server is the release `scripts/control-plane` says it started (the oldest
/// supported release in `scripts/test`'s second run, the newest in the first): a test run on
/// the wrong binary would prove nothing about that release.
#[tokio::test]
async fn apiserver_is_the_release_under_test() {
    let cp = ControlPlane::get();
    let want = cp
        .var("PODGATE_TEST_KUBERNETES_VERSION")
        .unwrap_or_else(|| {
            panic!(
                "{} names no PODGATE_TEST_KUBERNETES_VERSION",
                cp.env_file().display()
            )
        })
        .to_string();
    let client = cp.admin_client().await;
    let version = client
        .apiserver_version()
        .await
        .unwrap_or_else(|e| panic!("GET /version: {e}"));
    assert_eq!(version.git_version, want, "the running kube-apiserver");
}
