//! deploy/ against the real apiserver: the kustomize base and every overlay are rendered with
//! `kubectl kustomize` (the kubectl `scripts/control-plane` builds from the pinned Kubernetes
//! release) and every object is applied server-side with `dryRun=All` and strict field
//! validation, so the apiserver's own validation and admission (Pod Security "restricted"
//! included) judge them. Then the wiring between objects is checked: selectors, ports,
//! probes, the rules ConfigMap and the image's user.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use support::manifests::{
    FIELD_MANAGER, Output, apply_dry_run, find, install_servicemonitor_crd, kind_name, kinds,
    kubectl, parse_yaml, render, repo, string_map, strings,
};

const BASE: &str = "deploy/base";
const NODE_LOCAL: &str = "deploy/overlays/node-local";
const SERVICEMONITOR: &str = "deploy/overlays/servicemonitor";
const WEBHOOK: &str = "deploy/overlays/webhook";
const WEBHOOK_CERT_MANAGER: &str = "deploy/overlays/webhook-cert-manager";
/// distroless's `nonroot` user, which the Dockerfile runs as.
const IMAGE_UID: i64 = 65532;

/// Whether a `matchLabels`-only selector selects `labels`.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let want = string_map(&selector["matchLabels"]);
    !want.is_empty()
        && selector.get("matchExpressions").is_none()
        && want.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The env var `name` of a container.
fn env<'a>(container: &'a Value, name: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
}

fn field_ref(container: &Value, name: &str) -> Option<String> {
    env(container, name)?["valueFrom"]["fieldRef"]["fieldPath"]
        .as_str()
        .map(str::to_string)
}

/// Checks a workload's pod template common to both modes; returns the container.
fn check_pod_template(objects: &[Value], workload: &Value) -> Value {
    let what = format!("{:?}", kind_name(workload));
    let template = &workload["spec"]["template"];
    let labels = string_map(&template["metadata"]["labels"]);
    assert!(
        selects(&workload["spec"]["selector"], &labels),
        "{what}: selector must select its own template"
    );
    let spec = &template["spec"];
    assert_eq!(spec["serviceAccountName"], "podgate", "{what}");
    let service_account = find(objects, "ServiceAccount", "podgate");
    assert_eq!(
        service_account["metadata"]["namespace"],
        workload["metadata"]["namespace"]
    );
    let pod_sc = &spec["securityContext"];
    assert_eq!(pod_sc["runAsNonRoot"], true, "{what}");
    assert_eq!(pod_sc["runAsUser"], IMAGE_UID, "{what}: the image's user");
    assert_eq!(pod_sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");

    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    assert_eq!(containers.len(), 1, "{what}: one container");
    let c = containers[0].clone();
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{what}");
    assert!(
        sc["capabilities"].get("add").is_none(),
        "{what}: no capabilities"
    );
    assert_eq!(strings(&c["args"]).first().map(String::as_str), Some("run"));

    // Probes and the metrics port: 9464, /healthz and /readyz.
    let ports = c["ports"].as_array().cloned().unwrap_or_default();
    let metrics = ports
        .iter()
        .find(|p| p["name"] == "metrics")
        .unwrap_or_else(|| panic!("{what}: no container port named metrics"));
    assert_eq!(metrics["containerPort"], 9464, "{what}");
    assert_eq!(
        env(&c, "PODGATE_METRICS_ADDR").map(|e| e["value"].clone()),
        Some(json!("0.0.0.0:9464")),
        "{what}: the daemon must listen where the probes look"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{what}: {probe}");
        assert!(
            get["port"] == "metrics" || get["port"] == 9464,
            "{what}: {probe} port {}",
            get["port"]
        );
    }
    assert!(
        c["resources"]["requests"]["cpu"].is_string()
            && c["resources"]["requests"]["memory"].is_string()
            && c["resources"]["limits"]["memory"].is_string(),
        "{what}: resources {}",
        c["resources"]
    );
    assert_eq!(
        field_ref(&c, "POD_NAMESPACE").as_deref(),
        Some("metadata.namespace"),
        "{what}"
    );
    assert_eq!(
        field_ref(&c, "POD_NAME").as_deref(),
        Some("metadata.name"),
        "{what}"
    );

    // The rules ConfigMap, mounted where --rules-dir points.
    let mount = c["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == "/etc/podgate/rules"))
        .unwrap_or_else(|| panic!("{what}: nothing mounted at /etc/podgate/rules"));
    assert_eq!(mount["readOnly"], true, "{what}");
    let volume = spec["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == mount["name"]))
        .unwrap_or_else(|| panic!("{what}: no volume {}", mount["name"]));
    let cm_name = volume["configMap"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: the rules volume is not a ConfigMap"));
    let cm = find(objects, "ConfigMap", cm_name);
    assert_eq!(
        cm["metadata"]["namespace"],
        workload["metadata"]["namespace"]
    );
    assert_eq!(
        env(&c, "PODGATE_RULES_DIR").map(|e| e["value"].clone()),
        Some(json!("/etc/podgate/rules")),
        "{what}"
    );

    // The metrics Service selects these pods on the named port.
    let service = find(objects, "Service", "podgate-metrics");
    assert!(
        selects(
            &json!({"matchLabels": service["spec"]["selector"]}),
            &labels
        ),
        "{what}: the metrics Service must select the pods"
    );
    let service_port = service["spec"]["ports"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "metrics"))
        .unwrap_or_else(|| panic!("the metrics Service has no port named metrics"));
    assert!(
        service_port["targetPort"] == "metrics" || service_port["targetPort"] == 9464,
        "the Service must target the metrics port"
    );
    c
}

/// A namespace holding pods to the "restricted" Pod Security level, for one test.
fn restricted_namespace(prefix: &str) -> String {
    let name = format!("{prefix}-{}", support::unique_suffix());
    let ns = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "podgate.dev/test": "true",
                "pod-security.kubernetes.io/enforce": "restricted",
            },
        },
    });
    let out = kubectl(&["create", "-f", "-"], Some(&ns.to_string()));
    assert!(out.ok, "creating namespace {name}: {}", out.stderr);
    name
}

/// Dry-run creates a Pod from a workload's template in a "restricted" namespace: the
/// apiserver's Pod Security admission enforces (not just warns) on Pods.
fn admit_pod(namespace: &str, template: &Value) -> Output {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "podgate-template", "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    });
    kubectl(
        &[
            "create",
            "--dry-run=server",
            "--validate=strict",
            "-n",
            namespace,
            "-f",
            "-",
        ],
        Some(&pod.to_string()),
    )
}

fn check_template_admitted(workload: &Value) {
    let template = &workload["spec"]["template"];
    let ns = restricted_namespace("deploy-psa");
    let out = admit_pod(&ns, template);
    assert!(
        out.ok,
        "Pod Security \"restricted\" refused {:?}'s pod:\n{}",
        kind_name(workload),
        out.stderr
    );
    // The check can fail: the same pod with a capability added is refused.
    let mut bad = template.clone();
    bad["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = json!(["NET_RAW"]);
    let out = admit_pod(&ns, &bad);
    assert!(
        !out.ok && out.stderr.contains("PodSecurity"),
        "a pod adding NET_RAW must be refused in {ns}: {}{}",
        out.stdout,
        out.stderr
    );
}

#[test]
fn base_is_accepted_by_the_apiserver_and_wired_together() {
    let objects = apply_dry_run(BASE);
    let want: BTreeSet<(String, String)> = [
        ("Namespace", "podgate"),
        ("ServiceAccount", "podgate"),
        ("ClusterRole", "podgate"),
        ("ClusterRoleBinding", "podgate"),
        ("Role", "podgate-leader-election"),
        ("RoleBinding", "podgate-leader-election"),
        ("ConfigMap", "podgate-rules"),
        ("Service", "podgate-metrics"),
        ("Deployment", "podgate"),
        ("PodDisruptionBudget", "podgate"),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), n.to_string()))
    .collect();
    assert_eq!(kinds(&objects), want);

    let deployment = find(&objects, "Deployment", "podgate");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let c = check_pod_template(&objects, deployment);
    let args = strings(&c["args"]);
    assert!(args.contains(&"--leader-election".to_string()), "{args:?}");
    assert!(!args.contains(&"--node-local".to_string()), "{args:?}");

    let labels = string_map(&deployment["spec"]["template"]["metadata"]["labels"]);
    let pdb = find(&objects, "PodDisruptionBudget", "podgate");
    assert!(selects(&pdb["spec"]["selector"], &labels));
    // With 2 replicas, the budget must let a drain proceed one pod at a time.
    assert_eq!(pdb["spec"]["minAvailable"], 1);

    // The lease permissions live in the Deployment's namespace, bound to its ServiceAccount.
    let ns = &deployment["metadata"]["namespace"];
    let role = find(&objects, "Role", "podgate-leader-election");
    assert_eq!(&role["metadata"]["namespace"], ns);
    let binding = find(&objects, "RoleBinding", "podgate-leader-election");
    assert_eq!(binding["subjects"][0]["name"], "podgate");
    assert_eq!(&binding["subjects"][0]["namespace"], ns);

    check_template_admitted(deployment);
}

#[test]
fn node_local_overlay_is_a_daemonset_without_election() {
    let objects = apply_dry_run(NODE_LOCAL);
    let names = kinds(&objects);
    for gone in [
        ("Deployment", "podgate"),
        ("PodDisruptionBudget", "podgate"),
        ("Role", "podgate-leader-election"),
        ("RoleBinding", "podgate-leader-election"),
    ] {
        assert!(
            !names.contains(&(gone.0.to_string(), gone.1.to_string())),
            "{gone:?} must not be in node-local mode: {names:?}"
        );
    }
    let ds = find(&objects, "DaemonSet", "podgate");
    let c = check_pod_template(&objects, ds);
    let args = strings(&c["args"]);
    assert!(args.contains(&"--node-local".to_string()), "{args:?}");
    assert!(!args.contains(&"--leader-election".to_string()), "{args:?}");
    assert_eq!(field_ref(&c, "NODE_NAME").as_deref(), Some("spec.nodeName"));
    // Everything else of the base is still there.
    for kept in [
        "Namespace",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "Service",
    ] {
        assert!(names.iter().any(|(k, _)| k == kept), "{kept} missing");
    }
    check_template_admitted(ds);
}

/// Installs the (cut-down) ServiceMonitor CRD for real and waits until it is served.

#[test]
fn servicemonitor_overlay_scrapes_the_metrics_service() {
    install_servicemonitor_crd();
    // The CRD's schema is enforced: a misspelt field is refused, so the real apply below
    // proves something.
    let bad = r#"{"apiVersion":"monitoring.coreos.com/v1","kind":"ServiceMonitor",
        "metadata":{"name":"typo","namespace":"podgate"},
        "spec":{"selector":{"matchLabels":{"a":"b"}},"endpoints":[{"prot":"metrics"}]}}"#;
    let out = kubectl(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "--field-manager",
            FIELD_MANAGER,
            "-f",
            "-",
        ],
        Some(bad),
    );
    assert!(
        !out.ok && out.stderr.contains("prot"),
        "an unknown ServiceMonitor field must be refused: {}{}",
        out.stdout,
        out.stderr
    );

    let objects = apply_dry_run(SERVICEMONITOR);
    let sm = find(&objects, "ServiceMonitor", "podgate");
    let service = find(&objects, "Service", "podgate-metrics");
    assert!(
        selects(
            &sm["spec"]["selector"],
            &string_map(&service["metadata"]["labels"])
        ),
        "the ServiceMonitor must select the metrics Service by its labels"
    );
    let service_ns = service["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    assert!(
        strings(&sm["spec"]["namespaceSelector"]["matchNames"]).contains(&service_ns.to_string())
    );
    let port_names: Vec<String> = service["spec"]["ports"]
        .as_array()
        .map(|p| {
            p.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let endpoints = sm["spec"]["endpoints"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!endpoints.is_empty());
    for e in &endpoints {
        let port = e["port"].as_str().unwrap_or_default().to_string();
        assert!(
            port_names.contains(&port),
            "endpoint port {port} is not a Service port"
        );
        assert_eq!(e["path"], "/metrics");
    }
    // The base is all there too.
    assert_eq!(
        find(&objects, "Deployment", "podgate")["spec"]["replicas"],
        2
    );
}

/// The repository's rule files (`rules/*.yaml`), by file name.
fn rule_files(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) == Some("yaml") {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            files.insert(name, text);
        }
    }
    files
}

#[test]
fn rules_configmap_is_the_repository_rules() {
    let repo_rules = rule_files(&repo().join("rules"));
    assert!(!repo_rules.is_empty());
    // kustomize reads files only under the kustomization: deploy/base/rules is a copy.
    let copy = rule_files(&repo().join("deploy/base/rules"));
    for (name, text) in &repo_rules {
        assert!(
            copy.get(name) == Some(text),
            "deploy/base/rules/{name} differs from rules/{name}: \
             cp rules/*.yaml deploy/base/rules/ (and list new files in deploy/base/kustomization.yaml)"
        );
    }
    let extra: Vec<&String> = copy
        .keys()
        .filter(|n| !repo_rules.contains_key(*n))
        .collect();
    assert!(
        extra.is_empty(),
        "deploy/base/rules has files rules/ does not: {extra:?}"
    );

    // What the cluster gets: the rendered ConfigMap holds exactly those files.
    for dir in [BASE, NODE_LOCAL, SERVICEMONITOR] {
        let items = parse_yaml(&render(dir));
        let cm = find(&items, "ConfigMap", "podgate-rules");
        assert_eq!(
            string_map(&cm["data"]),
            repo_rules,
            "{dir}: the rules ConfigMap must hold rules/*.yaml exactly"
        );
    }

    // And `podgate check` accepts them.
    let out = Command::new(env!("CARGO_BIN_EXE_podgate"))
        .arg("check")
        .arg(repo().join("deploy/base/rules"))
        .output()
        .expect("running podgate check");
    assert!(
        out.status.success(),
        "podgate check deploy/base/rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `1.95` from `rust:1.95-bookworm`-like text, as (major, minor).
fn version_of(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((major, minor))
}

#[test]
fn dockerfile_builds_with_a_new_enough_rust_and_runs_as_the_manifests_user() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let cargo = std::fs::read_to_string(repo().join("Cargo.toml")).expect("Cargo.toml");
    let froms: Vec<&str> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .collect();
    assert!(froms.len() >= 2, "a multi-stage build: {froms:?}");
    let builder = froms[0];
    let tag = builder
        .split_whitespace()
        .next()
        .and_then(|image| image.strip_prefix("rust:"))
        .unwrap_or_else(|| panic!("the first stage must be a rust image: {builder}"));
    let have = version_of(tag).unwrap_or_else(|| panic!("no version in rust:{tag}"));
    let need = cargo
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"'))
        .and_then(version_of)
        .expect("rust-version in Cargo.toml");
    assert!(
        have >= need,
        "builder rust {have:?} < rust-version {need:?}"
    );

    // The final stage: non-root with the uid the manifests set, running podgate.
    let final_stage = dockerfile
        .rsplit_once("\nFROM ")
        .map(|(_, s)| s)
        .unwrap_or_default();
    let user = final_stage
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the final stage sets USER");
    let uid: i64 = user
        .split(':')
        .next()
        .and_then(|u| u.trim().parse().ok())
        .unwrap_or_else(|| panic!("USER {user}: use a numeric uid (runAsNonRoot checks it)"));
    assert_eq!(uid, IMAGE_UID);
    assert_ne!(uid, 0);
    let entrypoint = final_stage
        .lines()
        .find_map(|l| l.strip_prefix("ENTRYPOINT "))
        .expect("ENTRYPOINT");
    assert!(entrypoint.contains("podgate"), "{entrypoint}");
    // Every file the build copies is let through .dockerignore.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).expect(".dockerignore");
    for copied in ["Cargo.toml", "Cargo.lock", "src/", "crates/", "benches/"] {
        assert!(
            ignore.lines().any(|l| l.trim() == format!("!{copied}")),
            ".dockerignore must let {copied} through"
        );
    }
}

#[test]
fn webhook_overlay_serves_the_webhook_from_every_replica() {
    let objects = apply_dry_run(WEBHOOK);
    let deployment = find(&objects, "Deployment", "podgate");
    let c = check_pod_template(&objects, deployment);
    let value = |name: &str| {
        env(&c, name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_else(|| panic!("no env {name}"))
            .to_string()
    };
    assert_eq!(value("PODGATE_WEBHOOK_ADDR"), "0.0.0.0:9443");
    let port = c["ports"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "webhook"))
        .unwrap_or_else(|| panic!("no container port named webhook"));
    assert_eq!(port["containerPort"], 9443);

    // The certificate and key come from the Secret, mounted where the variables point.
    let spec = &deployment["spec"]["template"]["spec"];
    let mount = c["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == "/etc/podgate/webhook"))
        .unwrap_or_else(|| panic!("nothing mounted at /etc/podgate/webhook"));
    assert_eq!(mount["readOnly"], true);
    let volume = spec["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == mount["name"]))
        .unwrap_or_else(|| panic!("no volume {}", mount["name"]));
    assert_eq!(volume["secret"]["secretName"], "podgate-webhook-tls");
    assert_eq!(
        value("PODGATE_WEBHOOK_CERT_FILE"),
        "/etc/podgate/webhook/tls.crt"
    );
    assert_eq!(
        value("PODGATE_WEBHOOK_KEY_FILE"),
        "/etc/podgate/webhook/tls.key"
    );

    // The Service selects every replica, leader or not, on the webhook port.
    let labels = string_map(&deployment["spec"]["template"]["metadata"]["labels"]);
    let service = find(&objects, "Service", "podgate-webhook");
    assert!(selects(
        &json!({"matchLabels": service["spec"]["selector"]}),
        &labels
    ));
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(service_port["targetPort"], "webhook");

    let cfg = find(&objects, "MutatingWebhookConfiguration", "podgate");
    let webhooks = cfg["webhooks"].as_array().cloned().unwrap_or_default();
    assert_eq!(webhooks.len(), 2);
    for w in &webhooks {
        let what = w["name"].to_string();
        let svc = &w["clientConfig"]["service"];
        assert_eq!(svc["name"], "podgate-webhook", "{what}");
        assert_eq!(
            svc["namespace"], deployment["metadata"]["namespace"],
            "{what}"
        );
        assert_eq!(svc["port"], service_port["port"], "{what}");
        assert_eq!(svc["path"], "/mutate", "{what}");
        assert_eq!(w["failurePolicy"], "Ignore", "{what}");
        assert_eq!(w["sideEffects"], "None", "{what}");
        assert_eq!(w["timeoutSeconds"], 5, "{what}");
        assert_eq!(strings(&w["admissionReviewVersions"]), ["v1"], "{what}");
        let rules = w["rules"].as_array().cloned().unwrap_or_default();
        assert_eq!(rules.len(), 1, "{what}");
        assert_eq!(strings(&rules[0]["operations"]), ["CREATE"], "{what}");
        assert_eq!(strings(&rules[0]["resources"]), ["pods"], "{what}");
    }
    check_template_admitted(deployment);
}

#[test]
fn webhook_cert_manager_overlay_injects_the_ca_that_issues_the_serving_certificate() {
    // Rendered only: the test apiserver has no cert-manager types.
    let objects = parse_yaml(&render(WEBHOOK_CERT_MANAGER));
    let cfg = find(&objects, "MutatingWebhookConfiguration", "podgate");
    let from = cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
        .as_str()
        .unwrap_or_else(|| panic!("no inject-ca-from annotation"));
    assert_eq!(from, "podgate/podgate-webhook");
    let serving = find(&objects, "Certificate", "podgate-webhook");
    assert_eq!(serving["metadata"]["namespace"], "podgate");
    // The Secret the Deployment mounts.
    assert_eq!(serving["spec"]["secretName"], "podgate-webhook-tls");
    assert!(
        strings(&serving["spec"]["dnsNames"]).contains(&"podgate-webhook.podgate.svc".to_string())
    );
    // Issued by a CA (so the injected caBundle outlives each renewal), not self-signed.
    let issuer = find(
        &objects,
        "Issuer",
        serving["spec"]["issuerRef"]["name"]
            .as_str()
            .unwrap_or_default(),
    );
    let ca_secret = issuer["spec"]["ca"]["secretName"]
        .as_str()
        .unwrap_or_else(|| panic!("the serving certificate's issuer is not a CA issuer"));
    let ca = objects
        .iter()
        .find(|o| o["kind"] == "Certificate" && o["spec"]["secretName"] == ca_secret)
        .unwrap_or_else(|| panic!("no Certificate writes {ca_secret}"));
    assert_eq!(ca["spec"]["isCA"], true);
    // Everything of the webhook overlay is there too.
    find(&objects, "Service", "podgate-webhook");
    find(&objects, "Deployment", "podgate");
}

/// The security settings every container of `workload` must run with: non-root, read-only
/// root filesystem, no privilege escalation, no capabilities, the runtime's seccomp profile,
/// nothing shared with the host. Container settings win over the pod's, so each container is
/// judged by its effective value. Returns a description of each violation.
fn security_violations(workload: &Value) -> Vec<String> {
    let what = format!("{:?}", kind_name(workload));
    let spec = match workload["kind"].as_str() {
        Some("Pod") => &workload["spec"],
        Some("CronJob") => &workload["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        _ => &workload["spec"]["template"]["spec"],
    };
    let pod_sc = &spec["securityContext"];
    let mut bad = Vec::new();
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[host] == true {
            bad.push(format!("{what}: {host}"));
        }
    }
    let containers: Vec<Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().cloned().unwrap_or_default())
        .collect();
    if containers.is_empty() {
        bad.push(format!("{what}: no containers"));
    }
    for c in &containers {
        let at = format!("{what} container {}", c["name"]);
        let sc = &c["securityContext"];
        // The effective value: the container's, else the pod's.
        let effective = |key: &str| -> Value {
            if sc[key].is_null() {
                pod_sc[key].clone()
            } else {
                sc[key].clone()
            }
        };
        if effective("runAsNonRoot") != true {
            bad.push(format!("{at}: runAsNonRoot is not true"));
        }
        if effective("runAsUser") == 0 {
            bad.push(format!("{at}: runAsUser 0"));
        }
        if effective("seccompProfile")["type"] != "RuntimeDefault" {
            bad.push(format!(
                "{at}: seccompProfile {} (want RuntimeDefault)",
                effective("seccompProfile")
            ));
        }
        if sc["readOnlyRootFilesystem"] != true {
            bad.push(format!("{at}: readOnlyRootFilesystem is not true"));
        }
        if sc["allowPrivilegeEscalation"] != false {
            bad.push(format!("{at}: allowPrivilegeEscalation is not false"));
        }
        if sc["privileged"] == true {
            bad.push(format!("{at}: privileged"));
        }
        if strings(&sc["capabilities"]["drop"]) != ["ALL"] {
            bad.push(format!(
                "{at}: capabilities.drop {} (want [ALL])",
                sc["capabilities"]["drop"]
            ));
        }
        if !strings(&sc["capabilities"]["add"]).is_empty() {
            bad.push(format!(
                "{at}: capabilities.add {}",
                sc["capabilities"]["add"]
            ));
        }
    }
    bad
}

#[test]
fn every_workload_of_the_base_and_each_overlay_runs_locked_down() {
    // Every overlay directory is covered, including ones added later.
    let overlays = repo().join("deploy/overlays");
    let mut dirs = vec![BASE.to_string()];
    let mut found: Vec<String> = std::fs::read_dir(&overlays)
        .unwrap_or_else(|e| panic!("{}: {e}", overlays.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("kustomization.yaml").is_file())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .map(|n| format!("deploy/overlays/{n}"))
        })
        .collect();
    found.sort();
    for known in [NODE_LOCAL, SERVICEMONITOR, WEBHOOK, WEBHOOK_CERT_MANAGER] {
        assert!(
            found.iter().any(|f| f == known),
            "{known} not found in {found:?}"
        );
    }
    dirs.extend(found);

    for dir in &dirs {
        let objects = parse_yaml(&render(dir));
        let workloads: Vec<&Value> = objects
            .iter()
            .filter(|o| {
                matches!(
                    o["kind"].as_str(),
                    Some(
                        "Pod"
                            | "Deployment"
                            | "DaemonSet"
                            | "StatefulSet"
                            | "ReplicaSet"
                            | "Job"
                            | "CronJob"
                    )
                )
            })
            .collect();
        assert!(!workloads.is_empty(), "{dir}: no workload rendered");
        for w in workloads {
            let bad = security_violations(w);
            assert!(bad.is_empty(), "{dir}:\n{}", bad.join("\n"));
        }
    }

    // The check can fail: each setting undone in a copy of the base Deployment is caught.
    let objects = parse_yaml(&render(BASE));
    let deployment = find(&objects, "Deployment", "podgate");
    let undo: [(&str, Value); 6] = [
        ("runAsNonRoot", json!(false)),
        ("readOnlyRootFilesystem", json!(false)),
        ("allowPrivilegeEscalation", json!(true)),
        ("capabilities", json!({"drop": ["NET_RAW"]})),
        ("seccompProfile", json!({"type": "Unconfined"})),
        ("privileged", json!(true)),
    ];
    for (key, value) in undo {
        let mut weakened = deployment.clone();
        weakened["spec"]["template"]["spec"]["containers"][0]["securityContext"][key] =
            value.clone();
        assert!(
            !security_violations(&weakened).is_empty(),
            "{key}: {value} went unnoticed"
        );
    }
    let mut root = deployment.clone();
    root["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = Value::Null;
    root["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] =
        Value::Null;
    assert!(
        !security_violations(&root).is_empty(),
        "missing runAsNonRoot went unnoticed"
    );
}
