//! Readiness-gate injection: podgate as a mutating admission webhook.
//!
//! A readiness gate can only be declared when a pod is created. For a pod CREATE that reaches
//! it (the MutatingWebhookConfiguration's selectors choose which: see `docs/webhook.md`),
//! podgate appends a `spec.readinessGates` entry for every gate a rule in force would drive on
//! that pod and the pod does not declare yet. It injects only gates it owns a rule for, and
//! never rejects a pod.
//!
//! This module is the decision, pure and without I/O: [`parse_review`] reads an
//! AdmissionReview, [`mutate`] decides, [`response`] writes the answer. [`server`] serves it
//! over TLS.

mod error;
pub mod server;

pub use error::Error;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::rules::RuleSet;

/// The label that opts a namespace (or a single pod) in, with value [`INJECT_ENABLED`], or a
/// pod out, with value [`INJECT_DISABLED`].
pub const INJECT_LABEL: &str = "podgate.dev/inject";
pub const INJECT_ENABLED: &str = "enabled";
pub const INJECT_DISABLED: &str = "disabled";

/// The HTTP path the webhook answers on.
pub const PATH: &str = "/mutate";

/// The only AdmissionReview version served (the configuration asks for it).
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// Which pods the webhook may mutate, besides what the apiserver's selectors already chose.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The namespaces the daemon watches (`--namespace`); empty: all. A gate injected where
    /// no podgate evaluates it would never turn True.
    pub namespaces: BTreeSet<String>,
    /// Never mutated: podgate's own namespace, whose pods serve this webhook.
    pub excluded_namespaces: BTreeSet<String>,
    /// The daemon writes nothing (`--dry-run`): an injected gate would never be set.
    pub dry_run: bool,
}

/// The parts of an AdmissionReview v1 request the webhook reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRequest {
    pub uid: String,
    #[serde(default)]
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub operation: String,
    /// The object as it will be stored; read loosely, so that an odd object is admitted
    /// unchanged with a warning instead of failing the request.
    #[serde(default)]
    pub object: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<AdmissionRequest>,
}

/// A request body that is not an AdmissionReview v1 request. Answered with HTTP 400 and this
/// text; the apiserver then applies the failure policy (Ignore: the pod is admitted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewError(pub String);

impl fmt::Display for ReviewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid AdmissionReview: {}", self.0)
    }
}

impl std::error::Error for ReviewError {}

/// Reads an AdmissionReview v1 request body.
pub fn parse_review(body: &[u8]) -> Result<AdmissionRequest, ReviewError> {
    let review: Review = serde_json::from_slice(body).map_err(|e| {
        ReviewError(format!(
            "the body is not an AdmissionReview JSON object: {e}"
        ))
    })?;
    if review.api_version != API_VERSION {
        return Err(ReviewError(format!(
            "apiVersion is {:?}; only {API_VERSION} is served (set admissionReviewVersions: [v1])",
            review.api_version
        )));
    }
    if review.kind != "AdmissionReview" {
        return Err(ReviewError(format!(
            "kind is {:?}, expected \"AdmissionReview\"",
            review.kind
        )));
    }
    let Some(request) = review.request else {
        return Err(ReviewError("it has no request".to_string()));
    };
    if request.uid.is_empty() {
        return Err(ReviewError("request.uid is empty".to_string()));
    }
    Ok(request)
}

/// Why a pod is admitted as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unchanged {
    /// Not a CREATE of a core/v1 Pod (the configuration asks only for those).
    NotPodCreate,
    /// The pod carries `podgate.dev/inject: disabled`.
    OptedOut,
    /// podgate's own namespace.
    ExcludedNamespace,
    /// A namespace the daemon does not watch.
    NamespaceNotWatched,
    /// The daemon runs with `--dry-run`.
    DaemonDryRun,
    /// No rule in force covers the pod (dry-run rules do not count).
    NoRule,
    /// Every gate the covering rules drive is declared already.
    AlreadyDeclared,
    /// The object could not be read as a pod; said in a warning to the client.
    Unreadable(String),
}

impl Unchanged {
    pub fn as_str(&self) -> &'static str {
        match self {
            Unchanged::NotPodCreate => "not a pod CREATE",
            Unchanged::OptedOut => "pod opted out",
            Unchanged::ExcludedNamespace => "podgate's own namespace",
            Unchanged::NamespaceNotWatched => "namespace not watched by podgate",
            Unchanged::DaemonDryRun => "podgate runs with --dry-run",
            Unchanged::NoRule => "no rule covers the pod",
            Unchanged::AlreadyDeclared => "gates already declared",
            Unchanged::Unreadable(_) => "object unreadable",
        }
    }
}

/// What the webhook decided for one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Append these gates with this JSON patch.
    Patched {
        gates: Vec<String>,
        patch: Value,
    },
    Unchanged(Unchanged),
}

impl Outcome {
    /// The `result` label of `podgate_webhook_requests_total`.
    pub fn metric_result(&self) -> &'static str {
        match self {
            Outcome::Patched { .. } => "patched",
            Outcome::Unchanged(_) => "unchanged",
        }
    }
}

/// The pod fields the decision needs.
struct PodView {
    labels: BTreeMap<String, String>,
    /// `None`: the pod has no `spec.readinessGates` (or it is null).
    gates: Option<Vec<String>>,
}

fn read_pod(object: Option<&Value>) -> Result<PodView, String> {
    let object = object.ok_or("the request has no object")?;
    let obj = object
        .as_object()
        .ok_or("the object is not a JSON object")?;
    let mut labels = BTreeMap::new();
    if let Some(l) = obj
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .filter(|l| !l.is_null())
    {
        let l = l.as_object().ok_or("metadata.labels is not a map")?;
        for (k, v) in l {
            let v = v
                .as_str()
                .ok_or_else(|| format!("metadata.labels[{k:?}] is not a string"))?;
            labels.insert(k.clone(), v.to_string());
        }
    }
    let spec = obj
        .get("spec")
        .and_then(Value::as_object)
        .ok_or("the object has no spec")?;
    let gates = match spec.get("readinessGates") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(i, g)| {
                    g.get("conditionType")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| {
                            format!("spec.readinessGates[{i}] has no string conditionType")
                        })
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err("spec.readinessGates is not a list".to_string()),
    };
    Ok(PodView { labels, gates })
}

/// Decides one request: the gates to append to a pod CREATE, as a JSON patch, or why the pod
/// is admitted unchanged.
///
/// A gate is injected when some rule in force that is not in dry run drives it and selects
/// the pod (namespace and labels, as the controller selects the pods it evaluates), and the
/// pod does not declare it yet. Gates already declared are kept as they are, in their order;
/// the new ones follow in rule order, each once.
///
/// Whether the namespace opted in is the apiserver's namespaceSelector's call (namespace
/// labels are not in the request); everything the request does carry is checked again here.
pub fn mutate(request: &AdmissionRequest, rules: &RuleSet, scope: &Scope) -> Outcome {
    let is_pod = request.kind.group.is_empty()
        && request.kind.kind == "Pod"
        && request.sub_resource.as_deref().is_none_or(str::is_empty);
    if !is_pod || request.operation != "CREATE" {
        return Outcome::Unchanged(Unchanged::NotPodCreate);
    }
    let pod = match read_pod(request.object.as_ref()) {
        Ok(p) => p,
        Err(e) => return Outcome::Unchanged(Unchanged::Unreadable(e)),
    };
    // The request names the namespace even when the object, as created, does not.
    let namespace = request
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            request
                .object
                .as_ref()
                .and_then(|o| o.get("metadata")?.get("namespace")?.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    if pod.labels.get(INJECT_LABEL).map(String::as_str) == Some(INJECT_DISABLED) {
        return Outcome::Unchanged(Unchanged::OptedOut);
    }
    if scope.excluded_namespaces.contains(&namespace) {
        return Outcome::Unchanged(Unchanged::ExcludedNamespace);
    }
    if !scope.namespaces.is_empty() && !scope.namespaces.contains(&namespace) {
        return Outcome::Unchanged(Unchanged::NamespaceNotWatched);
    }
    if scope.dry_run {
        return Outcome::Unchanged(Unchanged::DaemonDryRun);
    }
    let mut wanted: Vec<String> = Vec::new();
    for rule in &rules.rules {
        if !rule.dry_run
            && rule.selector.matches(&namespace, &pod.labels)
            && !wanted.contains(&rule.condition_type)
        {
            wanted.push(rule.condition_type.clone());
        }
    }
    if wanted.is_empty() {
        return Outcome::Unchanged(Unchanged::NoRule);
    }
    let declared = pod.gates.as_deref().unwrap_or_default();
    let gates: Vec<String> = wanted
        .into_iter()
        .filter(|g| !declared.contains(g))
        .collect();
    if gates.is_empty() {
        return Outcome::Unchanged(Unchanged::AlreadyDeclared);
    }
    let patch = append_patch(pod.gates.is_some(), &gates);
    Outcome::Patched { gates, patch }
}

/// A JSON patch (RFC 6902) that appends `gates` to `spec.readinessGates`: one `add` of the
/// whole list when the pod has none, else one `add` at the end (`/-`) per gate, so existing
/// gates are never replaced.
pub fn append_patch(has_gates: bool, gates: &[String]) -> Value {
    let entry = |g: &String| json!({ "conditionType": g });
    if has_gates {
        Value::Array(
            gates
                .iter()
                .map(
                    |g| json!({ "op": "add", "path": "/spec/readinessGates/-", "value": entry(g) }),
                )
                .collect(),
        )
    } else {
        json!([{
            "op": "add",
            "path": "/spec/readinessGates",
            "value": gates.iter().map(entry).collect::<Vec<_>>(),
        }])
    }
}

/// The AdmissionReview v1 response for `uid`: always allowed; with the patch when gates are
/// injected, and a warning to the client when the object could not be read.
pub fn response(uid: &str, outcome: &Outcome) -> Value {
    let mut resp = json!({ "uid": uid, "allowed": true });
    match outcome {
        Outcome::Patched { gates, patch } => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
            resp["patchType"] = json!("JSONPatch");
            resp["patch"] = json!(encoded);
            // Shown in the audit log as <webhook name>/readiness-gates.
            resp["auditAnnotations"] = json!({ "readiness-gates": gates.join(",") });
        }
        Outcome::Unchanged(Unchanged::Unreadable(why)) => {
            resp["warnings"] = json!([format!(
                "podgate: no readiness gates injected, the pod could not be read: {why}"
            )]);
        }
        Outcome::Unchanged(_) => {}
    }
    json!({ "apiVersion": API_VERSION, "kind": "AdmissionReview", "response": resp })
}

/// Parses, decides and answers one request body.
pub fn review(
    body: &[u8],
    rules: &RuleSet,
    scope: &Scope,
) -> Result<(AdmissionRequest, Outcome, Value), ReviewError> {
    let request = parse_review(body)?;
    let outcome = mutate(&request, rules, scope);
    let answer = response(&request.uid, &outcome);
    Ok((request, outcome, answer))
}

#[cfg(test)]
mod tests;
