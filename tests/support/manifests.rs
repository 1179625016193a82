//! deploy/'s manifests against the real apiserver: `kubectl` of the pinned Kubernetes release
//! (built and cached by `scripts/control-plane`) as the admin user, `kubectl kustomize`,
//! server-side dry-run applies with strict validation, the cut-down CRDs of
//! prometheus-operator, and small readers of the objects that come back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use super::ControlPlane;

/// The field manager of every apply the deploy tests make.
pub const FIELD_MANAGER: &str = "podgate-deploy-test";

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `scripts/SCRIPT ARG` (which builds or finds something in the cache, its messages on
/// stderr) and returns the path it prints.
pub fn script_path(script: &str, arg: &str) -> PathBuf {
    let script = repo().join("scripts").join(script);
    let out = Command::new(&script)
        .arg(arg)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("running {} {arg}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} {arg} failed ({}); its messages are above",
        script.display(),
        out.status
    );
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        path.exists(),
        "{} {arg} printed {}, which does not exist",
        script.display(),
        path.display()
    );
    path
}

/// The kubectl of the pinned Kubernetes release, built and cached by `scripts/control-plane`.
pub fn kubectl_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| script_path("control-plane", "kubectl"))
}

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs kubectl as the admin user with its own discovery cache, feeding `stdin` if given.
pub fn kubectl(args: &[&str], stdin: Option<&str>) -> Output {
    let cp = ControlPlane::get();
    let cache = tempfile::tempdir().expect("kubectl cache dir");
    let mut child = Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(cp.admin_kubeconfig_path())
        .arg("--cache-dir")
        .arg(cache.path())
        .args(args)
        .current_dir(repo())
        .env_remove("KUBECONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting kubectl {args:?}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("kubectl stdin");
        pipe.write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("writing to kubectl {args:?}: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for kubectl {args:?}: {e}"));
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `kubectl kustomize DIR`: the rendered YAML.
pub fn render(dir: &str) -> String {
    let out = kubectl(&["kustomize", dir], None);
    assert!(out.ok, "kubectl kustomize {dir} failed:\n{}", out.stderr);
    out.stdout
}

/// The objects of a rendered multi-document YAML stream.
pub fn parse_yaml(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// Renders `dir` and applies every object server-side as a dry run; returns the objects as
/// the apiserver would have stored them (defaults filled in). Fails on any error or warning.
pub fn apply_dry_run(dir: &str) -> Vec<Value> {
    apply_dry_run_yaml(dir, &render(dir))
}

/// Applies every object of `rendered` (named `what` in failures) server-side as a dry run with
/// strict field validation; returns the objects as the apiserver would have stored them.
/// Fails on any error or warning.
pub fn apply_dry_run_yaml(what: &str, rendered: &str) -> Vec<Value> {
    let out = kubectl(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "--field-manager",
            FIELD_MANAGER,
            "-o",
            "json",
            "-f",
            "-",
        ],
        Some(rendered),
    );
    assert!(
        out.ok,
        "the apiserver rejected {what}:\n{}\nrendered:\n{rendered}",
        out.stderr
    );
    // Admission warnings (e.g. Pod Security on a workload's template) do not fail the apply:
    // they are failures here.
    assert!(
        !out.stderr.contains("Warning"),
        "applying {what} gave warnings:\n{}",
        out.stderr
    );
    let list: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("kubectl apply -o json for {what}: {e}\n{}", out.stdout));
    let items = match list.get("kind").and_then(Value::as_str) {
        Some("List") => list["items"].as_array().cloned().unwrap_or_default(),
        _ => vec![list],
    };
    assert_eq!(
        items.len(),
        parse_yaml(rendered).len(),
        "every rendered object of {what} must come back from the apiserver"
    );
    items
}

pub fn kind_name(o: &Value) -> (String, String) {
    (
        o["kind"].as_str().unwrap_or_default().to_string(),
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

pub fn kinds(objects: &[Value]) -> BTreeSet<(String, String)> {
    objects.iter().map(kind_name).collect()
}

pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| kind_name(o) == (kind.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("no {kind}/{name} in {:?}", kinds(objects)))
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Installs a cut-down CRD from `tests/deploy/` (`file`) and waits until `crd` (its name) is
/// established, so objects of that kind are validated for real by the apiserver.
pub fn install_crd(file: &str, crd: &str) {
    let path = repo().join("tests/deploy").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let out = kubectl(
        &[
            "apply",
            "--server-side",
            "--field-manager",
            FIELD_MANAGER,
            "-f",
            "-",
        ],
        Some(&text),
    );
    assert!(out.ok, "installing the CRD {crd}: {}", out.stderr);
    let out = kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{crd}"),
        ],
        None,
    );
    assert!(out.ok, "CRD {crd} not established: {}", out.stderr);
}

/// The prometheus-operator ServiceMonitor CRD (cut down, `tests/deploy/servicemonitor-crd.yaml`).
pub fn install_servicemonitor_crd() {
    install_crd(
        "servicemonitor-crd.yaml",
        "servicemonitors.monitoring.coreos.com",
    );
}

/// The prometheus-operator PrometheusRule CRD (cut down, `tests/deploy/prometheusrule-crd.yaml`).
pub fn install_prometheusrule_crd() {
    install_crd(
        "prometheusrule-crd.yaml",
        "prometheusrules.monitoring.coreos.com",
    );
}
