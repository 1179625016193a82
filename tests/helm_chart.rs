//! The Helm chart `deploy/helm/podgate`, with the helm that `scripts/helm` builds from its Go
//! module: `helm lint` and `helm template` with every values profile in its `ci/` folder, a
//! server-side dry-run apply of the output against the real apiserver, and a comparison with
//! the kustomize output of the same profile: the same RBAC (never more), the same container
//! and pod security context, the same probes. The values schema refuses unknown keys and wrong
//! types, naming the key.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use support::manifests::{
    apply_dry_run_yaml, find, install_prometheusrule_crd, install_servicemonitor_crd, kind_name,
    parse_yaml, render, repo, script_path, strings,
};

const CHART: &str = "deploy/helm/podgate";
/// The release and namespace the profiles are rendered for: the names deploy/ uses.
const RELEASE: &str = "podgate";
const NAMESPACE: &str = "podgate";

/// Each values profile in the chart's `ci/` folder and the kustomize directory that offers the
/// same install. Every profile is listed (a test checks), so a new one gets compared too.
const PROFILES: [(&str, &str); 8] = [
    ("default-values.yaml", "deploy/base"),
    ("node-local-values.yaml", "deploy/overlays/node-local"),
    (
        "servicemonitor-values.yaml",
        "deploy/overlays/servicemonitor",
    ),
    ("webhook-values.yaml", "deploy/overlays/webhook"),
    (
        "webhook-cert-manager-values.yaml",
        "deploy/overlays/webhook-cert-manager",
    ),
    ("alerts-values.yaml", "tests/deploy/alerts-overlay"),
    ("everything-values.yaml", "deploy/base"),
    (
        "basic-auth-node-local-values.yaml",
        "deploy/overlays/node-local",
    ),
];

/// cert-manager's kinds: the test apiserver has no cert-manager, so these are compared with
/// the overlay's, not applied.
const CERT_MANAGER_GROUP: &str = "cert-manager.io/";

/// The helm built and cached by `scripts/helm`.
fn helm_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| script_path("helm", "path"))
}

/// Runs helm in the repository with its own config and cache dirs (nothing of the user's).
fn helm(args: &[&str]) -> (bool, String, String) {
    let home = tempfile::tempdir().expect("helm home");
    let out = Command::new(helm_path())
        .args(args)
        .current_dir(repo())
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .env_remove("KUBECONFIG")
        .output()
        .unwrap_or_else(|e| panic!("running helm {args:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn profile_path(profile: &str) -> String {
    format!("{CHART}/ci/{profile}")
}

/// `helm template` with a values file; the YAML it printed, or helm's error.
fn template_with(values: &str) -> Result<String, String> {
    let (ok, stdout, stderr) = helm(&[
        "template",
        RELEASE,
        CHART,
        "--namespace",
        NAMESPACE,
        "--values",
        values,
    ]);
    if ok { Ok(stdout) } else { Err(stderr) }
}

fn template(profile: &str) -> String {
    template_with(&profile_path(profile))
        .unwrap_or_else(|e| panic!("helm template with {profile} failed:\n{e}"))
}

/// A values file written for one test.
fn values_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("values file");
    std::io::Write::write_all(&mut file, text.as_bytes()).expect("write values");
    file
}

/// The rules of the ClusterRoles (or Roles) of a rendered install, as (apiGroup, resource,
/// verb) triples.
fn permissions(objects: &[Value], kind: &str) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for role in objects.iter().filter(|o| o["kind"] == kind) {
        for rule in role["rules"].as_array().into_iter().flatten() {
            for group in strings(&rule["apiGroups"]) {
                for resource in strings(&rule["resources"]) {
                    for verb in strings(&rule["verbs"]) {
                        out.insert((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    out
}

/// The one workload (Deployment or DaemonSet) of an install.
fn workload(objects: &[Value]) -> &Value {
    let found: Vec<&Value> = objects
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "DaemonSet")
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one workload: {:?}",
        found.iter().map(|o| kind_name(o)).collect::<Vec<_>>()
    );
    found[0]
}

/// Where the chart's install differs from the kustomize one in what must be the same: RBAC
/// (more is a difference, less too), the pod and container security context, the probes, the
/// workload kind and its ports. Empty when they agree.
fn differences(chart: &[Value], kustomize: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for kind in ["ClusterRole", "Role"] {
        let (have, want) = (permissions(chart, kind), permissions(kustomize, kind));
        let more: Vec<_> = have.difference(&want).collect();
        let less: Vec<_> = want.difference(&have).collect();
        if !more.is_empty() {
            out.push(format!(
                "{kind}: the chart grants more than deploy/ ({more:?})"
            ));
        }
        if !less.is_empty() {
            out.push(format!(
                "{kind}: the chart grants less than deploy/ ({less:?})"
            ));
        }
    }
    let (c, k) = (workload(chart), workload(kustomize));
    if c["kind"] != k["kind"] {
        out.push(format!("workload kind {} vs {}", c["kind"], k["kind"]));
    }
    let (cs, ks) = (
        &c["spec"]["template"]["spec"],
        &k["spec"]["template"]["spec"],
    );
    if cs["securityContext"] != ks["securityContext"] {
        out.push(format!(
            "pod securityContext {} vs {}",
            cs["securityContext"], ks["securityContext"]
        ));
    }
    let (cc, kc) = (&cs["containers"][0], &ks["containers"][0]);
    for field in ["securityContext", "livenessProbe", "readinessProbe"] {
        if cc[field] != kc[field] {
            out.push(format!("container {field} {} vs {}", cc[field], kc[field]));
        }
    }
    // Ports in any order (a kustomize patch puts its own first).
    let sorted = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect()
    };
    if sorted(&cc["ports"]) != sorted(&kc["ports"]) {
        out.push(format!(
            "container ports {} vs {}",
            cc["ports"], kc["ports"]
        ));
    }
    // The args podgate's mode depends on (extra ones may follow).
    let (ca, ka) = (strings(&cc["args"]), strings(&kc["args"]));
    if !ca.starts_with(&ka) {
        out.push(format!("container args {ca:?} do not start with {ka:?}"));
    }
    out
}

/// The objects of an install that the test apiserver can judge (all but cert-manager's).
fn appliable(rendered: &str) -> String {
    parse_yaml(rendered)
        .into_iter()
        .filter(|o| {
            !o["apiVersion"]
                .as_str()
                .unwrap_or_default()
                .starts_with(CERT_MANAGER_GROUP)
        })
        .map(|o| serde_json::to_string(&o).expect("json") + "\n---\n")
        .collect()
}

#[test]
fn every_values_profile_is_listed() {
    let dir = repo().join(CHART).join("ci");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    let listed: BTreeSet<String> = PROFILES.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(
        on_disk,
        listed,
        "tests/helm_chart.rs PROFILES must list every profile in {}",
        dir.display()
    );
}

#[test]
fn chart_lints_with_every_profile() {
    for (profile, _) in PROFILES {
        let (ok, stdout, stderr) = helm(&[
            "lint",
            "--strict",
            CHART,
            "--values",
            &profile_path(profile),
        ]);
        assert!(ok, "helm lint --strict with {profile}:\n{stdout}{stderr}");
    }
}

#[test]
fn every_profile_is_accepted_by_the_apiserver_and_matches_kustomize() {
    install_servicemonitor_crd();
    install_prometheusrule_crd();
    for (profile, dir) in PROFILES {
        let rendered = template(profile);
        let applied = apply_dry_run_yaml(profile, &appliable(&rendered));
        let kustomize = parse_yaml(&render(dir));
        let chart = parse_yaml(&rendered);
        let diff = differences(&chart, &kustomize);
        assert!(diff.is_empty(), "{profile} vs {dir}:\n{}", diff.join("\n"));
        // The same objects by kind (names and labels are the chart's own).
        let kinds = |objects: &[Value]| -> BTreeSet<String> {
            objects
                .iter()
                .filter(|o| {
                    !["Namespace", "Secret", "ConfigMap"]
                        .contains(&o["kind"].as_str().unwrap_or_default())
                })
                .map(|o| o["kind"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        assert_eq!(
            kinds(&chart),
            kinds(&kustomize),
            "{profile} vs {dir}: kinds of objects"
        );
        // The rules volume names a ConfigMap of the chart's, or the user's existingConfigMap.
        let volume =
            workload(&chart)["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"].clone();
        let own = chart
            .iter()
            .any(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == volume);
        assert!(
            own || volume == "my-podgate-rules",
            "{profile}: the rules volume names ConfigMap {volume}, which the chart does not create"
        );
        // The applied workload runs as the image's user, whatever the profile.
        let w = workload(&applied);
        assert_eq!(
            w["spec"]["template"]["spec"]["securityContext"]["runAsUser"], 65532,
            "{profile}"
        );
    }
}

/// The chart's self-signed webhook certificate is signed by the CA in the caBundle, for the
/// Service's name.
#[test]
fn self_signed_webhook_certificate_is_issued_by_the_ca_bundle() {
    let objects = parse_yaml(&template("webhook-values.yaml"));
    let secret = find(&objects, "Secret", "podgate-webhook-tls");
    let webhook = find(&objects, "MutatingWebhookConfiguration", "podgate");
    let decode = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("base64")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("ca.crt"),
        decode(&webhook["webhooks"][0]["clientConfig"]["caBundle"]),
    )
    .expect("ca");
    std::fs::write(
        dir.path().join("tls.crt"),
        decode(&secret["data"]["tls.crt"]),
    )
    .expect("crt");
    let out = Command::new("openssl")
        .args([
            "verify",
            "-CAfile",
            "ca.crt",
            "-verify_hostname",
            "podgate-webhook.podgate.svc",
            "tls.crt",
        ])
        .current_dir(dir.path())
        .output()
        .expect("openssl verify");
    assert!(
        out.status.success(),
        "the serving certificate does not verify against the caBundle: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A profile that grants podgate more than deploy/base fails the comparison, naming it.
#[test]
fn a_profile_with_more_rbac_than_the_base_fails() {
    let rendered = template_with(
        &repo()
            .join("tests/helm/more-rbac-values.yaml")
            .to_string_lossy(),
    )
    .unwrap_or_else(|e| panic!("helm template with more-rbac-values.yaml: {e}"));
    let diff = differences(&parse_yaml(&rendered), &parse_yaml(&render("deploy/base")));
    assert!(
        diff.iter()
            .any(|d| d.contains("grants more") && d.contains("secrets")),
        "more RBAC than deploy/base must be a difference: {diff:?}"
    );
}

#[test]
fn values_schema_refuses_unknown_keys_and_wrong_types_naming_the_key() {
    for (values, key) in [
        ("replica: 3\n", "replica"),
        ("replicas: two\n", "replicas"),
        ("prometheus:\n  urll: http://p:9090\n", "urll"),
        ("webhook:\n  enabled: yes please\n", "enabled"),
        ("mode: sidecar\n", "mode"),
        ("serviceMonitor:\n  interval: 15 seconds\n", "interval"),
    ] {
        let file = values_file(values);
        let err = template_with(&file.path().to_string_lossy())
            .err()
            .unwrap_or_else(|| panic!("helm template accepted {values:?}"));
        assert!(
            err.contains(key),
            "helm's error for {values:?} does not name {key}:\n{err}"
        );
    }
    // And a valid file passes the same path.
    let file = values_file("replicas: 3\n");
    template_with(&file.path().to_string_lossy())
        .unwrap_or_else(|e| panic!("replicas: 3 refused: {e}"));
}

/// Two replicas without election would fight over the same conditions: refused.
#[test]
fn replicas_without_leader_election_are_refused() {
    let file = values_file("replicas: 2\nleaderElection: false\n");
    let err = template_with(&file.path().to_string_lossy())
        .err()
        .unwrap_or_else(|| panic!("helm template accepted 2 replicas without election"));
    assert!(err.contains("leaderElection"), "{err}");
}

/// The chart's copies of the rules and alerts are the repository's.
#[test]
fn chart_files_are_the_repository_rules_and_alerts() {
    let read =
        |p: &str| std::fs::read_to_string(repo().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    assert_eq!(
        read(&format!("{CHART}/files/podgate-alerts.yaml")),
        read("deploy/alerts/podgate-alerts.yaml"),
        "copy deploy/alerts/podgate-alerts.yaml to {CHART}/files/"
    );
    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".yaml"))
            .collect()
    };
    let rules = names(&repo().join("rules"));
    assert_eq!(
        names(&repo().join(CHART).join("files/rules")),
        rules,
        "cp rules/*.yaml {CHART}/files/rules/"
    );
    for file in rules {
        assert_eq!(
            read(&format!("{CHART}/files/rules/{file}")),
            read(&format!("rules/{file}")),
            "{file}"
        );
    }
}
