use super::*;
use crate::rules::load_str;

const RULES: &str = r#"
rules:
  - name: http
    conditionType: podgate.dev/http-healthy
    vars: {x: {scrape: 'x'}}
    expr: 'x < 1'
  - name: http-latency
    conditionType: podgate.dev/http-healthy
    selector:
      matchLabels: {app: web}
    vars: {x: {scrape: 'x'}}
    expr: 'x < 1'
  - name: web-warm
    conditionType: podgate.dev/warm
    selector:
      namespaces: [shop]
      matchLabels: {app: web}
    vars: {x: {scrape: 'x'}}
    expr: 'x < 1'
  - name: trial
    conditionType: podgate.dev/trial
    dryRun: true
    vars: {x: {scrape: 'x'}}
    expr: 'x < 1'
"#;

fn rules() -> RuleSet {
    match load_str("rules.yaml", RULES) {
        Ok(set) => set,
        Err(e) => panic!("test rules do not load: {e}"),
    }
}

/// Rules that each select only pods labelled `app: web` in any namespace.
fn web_only_rules() -> RuleSet {
    let yaml = "rules:\n  - name: w\n    conditionType: podgate.dev/w\n    selector: {matchLabels: {app: web}}\n    vars: {x: {scrape: 'x'}}\n    expr: 'x < 1'\n";
    match load_str("web.yaml", yaml) {
        Ok(set) => set,
        Err(e) => panic!("test rules do not load: {e}"),
    }
}

fn pod(labels: Value, gates: Option<Value>) -> Value {
    let mut spec = json!({ "containers": [{ "name": "app", "image": "x" }] });
    if let Some(g) = gates {
        spec["readinessGates"] = g;
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "generateName": "web-", "labels": labels },
        "spec": spec,
    })
}

fn request(namespace: &str, operation: &str, object: Value) -> AdmissionRequest {
    AdmissionRequest {
        uid: "705ab4f5-6393-11e8-b7cc-42010a800002".to_string(),
        kind: GroupVersionKind {
            group: String::new(),
            version: "v1".to_string(),
            kind: "Pod".to_string(),
        },
        sub_resource: None,
        name: None,
        namespace: Some(namespace.to_string()),
        operation: operation.to_string(),
        object: Some(object),
    }
}

fn gates_of(pod: &Value) -> Vec<String> {
    pod["spec"]["readinessGates"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g["conditionType"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Applies an outcome's patch with an independent RFC 6902 implementation.
fn apply(pod: &Value, outcome: &Outcome) -> Value {
    let mut doc = pod.clone();
    if let Outcome::Patched { patch, .. } = outcome {
        let ops: json_patch::Patch = match serde_json::from_value(patch.clone()) {
            Ok(p) => p,
            Err(e) => panic!("not a JSON patch: {e}: {patch}"),
        };
        if let Err(e) = json_patch::patch(&mut doc, &ops) {
            panic!("patch does not apply: {e}: {patch}");
        }
    }
    doc
}

fn decide(namespace: &str, pod: &Value, scope: &Scope) -> (Outcome, Value) {
    let outcome = mutate(&request(namespace, "CREATE", pod.clone()), &rules(), scope);
    let patched = apply(pod, &outcome);
    (outcome, patched)
}

#[test]
fn injects_each_owned_gate_once_for_a_pod_without_gates() {
    let p = pod(json!({ "app": "web" }), None);
    let (outcome, patched) = decide("shop", &p, &Scope::default());
    // Two rules drive http-healthy: one gate. The dry-run rule injects nothing.
    assert_eq!(
        gates_of(&patched),
        ["podgate.dev/http-healthy", "podgate.dev/warm"]
    );
    assert_eq!(outcome.metric_result(), "patched");
}

#[test]
fn selector_namespaces_and_labels_decide_like_the_controller() {
    // Not app=web: only the unselective rule. Not in shop: no warm gate.
    let (_, other_app) = decide(
        "shop",
        &pod(json!({ "app": "cart" }), None),
        &Scope::default(),
    );
    assert_eq!(gates_of(&other_app), ["podgate.dev/http-healthy"]);
    let (_, elsewhere) = decide(
        "pay",
        &pod(json!({ "app": "web" }), None),
        &Scope::default(),
    );
    assert_eq!(gates_of(&elsewhere), ["podgate.dev/http-healthy"]);
}

#[test]
fn existing_gates_are_kept_first_and_not_duplicated() {
    let p = pod(
        json!({ "app": "web" }),
        Some(json!([
            { "conditionType": "example.com/other" },
            { "conditionType": "podgate.dev/warm" },
        ])),
    );
    let (outcome, patched) = decide("shop", &p, &Scope::default());
    assert_eq!(
        gates_of(&patched),
        [
            "example.com/other",
            "podgate.dev/warm",
            "podgate.dev/http-healthy"
        ]
    );
    let Outcome::Patched { gates, patch } = &outcome else {
        panic!("expected a patch, got {outcome:?}");
    };
    assert_eq!(gates, &["podgate.dev/http-healthy"]);
    // Appends at the end; never an op on the existing list as a whole.
    assert_eq!(
        patch,
        &json!([{ "op": "add", "path": "/spec/readinessGates/-",
                  "value": { "conditionType": "podgate.dev/http-healthy" } }])
    );
}

#[test]
fn an_empty_or_null_gate_list_gets_the_owned_gates() {
    for gates in [json!([]), Value::Null] {
        let p = pod(json!({ "app": "cart" }), Some(gates.clone()));
        let (_, patched) = decide("shop", &p, &Scope::default());
        assert_eq!(
            gates_of(&patched),
            ["podgate.dev/http-healthy"],
            "from {gates}"
        );
    }
}

#[test]
fn a_pod_declaring_every_owned_gate_is_unchanged() {
    let p = pod(
        json!({ "app": "cart" }),
        Some(json!([{ "conditionType": "podgate.dev/http-healthy" }])),
    );
    let (outcome, _) = decide("shop", &p, &Scope::default());
    assert_eq!(outcome, Outcome::Unchanged(Unchanged::AlreadyDeclared));
    assert_eq!(outcome.metric_result(), "unchanged");
}

#[test]
fn a_pod_no_rule_covers_is_unchanged() {
    let p = pod(json!({ "app": "cart" }), None);
    let outcome = mutate(
        &request("shop", "CREATE", p.clone()),
        &web_only_rules(),
        &Scope::default(),
    );
    assert_eq!(outcome, Outcome::Unchanged(Unchanged::NoRule));
    // Without labels at all, likewise.
    let bare = json!({ "metadata": {}, "spec": { "containers": [] } });
    let outcome = mutate(
        &request("shop", "CREATE", bare),
        &web_only_rules(),
        &Scope::default(),
    );
    assert_eq!(outcome, Outcome::Unchanged(Unchanged::NoRule));
}

#[test]
fn only_dry_run_rules_inject_nothing() {
    let yaml = "rules:\n  - name: t\n    conditionType: podgate.dev/t\n    dryRun: true\n    vars: {x: {scrape: 'x'}}\n    expr: 'x < 1'\n";
    let set = match load_str("t.yaml", yaml) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let outcome = mutate(
        &request("shop", "CREATE", pod(json!({}), None)),
        &set,
        &Scope::default(),
    );
    assert_eq!(outcome, Outcome::Unchanged(Unchanged::NoRule));
}

#[test]
fn scope_excludes_own_and_unwatched_namespaces_and_dry_run() {
    let p = pod(json!({ "app": "web" }), None);
    let own = Scope {
        excluded_namespaces: ["podgate".to_string()].into(),
        ..Scope::default()
    };
    assert_eq!(
        decide("podgate", &p, &own).0,
        Outcome::Unchanged(Unchanged::ExcludedNamespace)
    );
    assert_eq!(decide("shop", &p, &own).0.metric_result(), "patched");

    let watched = Scope {
        namespaces: ["shop".to_string()].into(),
        ..Scope::default()
    };
    assert_eq!(
        decide("pay", &p, &watched).0,
        Outcome::Unchanged(Unchanged::NamespaceNotWatched)
    );
    assert_eq!(decide("shop", &p, &watched).0.metric_result(), "patched");

    let dry = Scope {
        dry_run: true,
        ..Scope::default()
    };
    assert_eq!(
        decide("shop", &p, &dry).0,
        Outcome::Unchanged(Unchanged::DaemonDryRun)
    );
}

#[test]
fn a_pod_labelled_disabled_opts_out() {
    let p = pod(json!({ "app": "web", INJECT_LABEL: INJECT_DISABLED }), None);
    assert_eq!(
        decide("shop", &p, &Scope::default()).0,
        Outcome::Unchanged(Unchanged::OptedOut)
    );
    let p = pod(json!({ "app": "web", INJECT_LABEL: INJECT_ENABLED }), None);
    assert_eq!(
        decide("shop", &p, &Scope::default()).0.metric_result(),
        "patched"
    );
}

#[test]
fn only_pod_creates_are_mutated() {
    let p = pod(json!({ "app": "web" }), None);
    for op in ["UPDATE", "DELETE", "CONNECT"] {
        assert_eq!(
            mutate(&request("shop", op, p.clone()), &rules(), &Scope::default()),
            Outcome::Unchanged(Unchanged::NotPodCreate),
            "{op}"
        );
    }
    let mut status = request("shop", "CREATE", p.clone());
    status.sub_resource = Some("status".to_string());
    assert_eq!(
        mutate(&status, &rules(), &Scope::default()),
        Outcome::Unchanged(Unchanged::NotPodCreate)
    );
    let mut other = request("shop", "CREATE", p);
    other.kind.group = "apps".to_string();
    other.kind.kind = "Deployment".to_string();
    assert_eq!(
        mutate(&other, &rules(), &Scope::default()),
        Outcome::Unchanged(Unchanged::NotPodCreate)
    );
}

#[test]
fn the_namespace_comes_from_the_request_else_the_object() {
    let mut p = pod(json!({ "app": "web" }), None);
    p["metadata"]["namespace"] = json!("shop");
    let mut req = request("", "CREATE", p.clone());
    req.namespace = None;
    let patched = apply(&p, &mutate(&req, &rules(), &Scope::default()));
    assert!(gates_of(&patched).contains(&"podgate.dev/warm".to_string()));
}

#[test]
fn odd_objects_are_admitted_unchanged_with_the_reason() {
    let cases = [
        (json!("a string"), "not a JSON object"),
        (json!({ "metadata": {} }), "no spec"),
        (
            json!({ "metadata": { "labels": { "a": 1 } }, "spec": {} }),
            "metadata.labels[\"a\"] is not a string",
        ),
        (
            json!({ "spec": { "readinessGates": {} } }),
            "spec.readinessGates is not a list",
        ),
        (
            json!({ "spec": { "readinessGates": [{ "conditionType": 3 }] } }),
            "spec.readinessGates[0] has no string conditionType",
        ),
    ];
    for (object, want) in cases {
        let outcome = mutate(
            &request("shop", "CREATE", object.clone()),
            &rules(),
            &Scope::default(),
        );
        let Outcome::Unchanged(Unchanged::Unreadable(why)) = &outcome else {
            panic!("{object}: expected unreadable, got {outcome:?}");
        };
        assert!(why.contains(want), "{object}: {why}");
        let answer = response("u1", &outcome);
        assert_eq!(answer["response"]["allowed"], json!(true));
        let warning = answer["response"]["warnings"][0].as_str().unwrap_or("");
        assert!(warning.contains(want), "{warning}");
    }
    let mut no_object = request("shop", "CREATE", json!({}));
    no_object.object = None;
    assert!(matches!(
        mutate(&no_object, &rules(), &Scope::default()),
        Outcome::Unchanged(Unchanged::Unreadable(_))
    ));
}

#[test]
fn response_carries_uid_allowed_and_a_base64_json_patch() {
    let p = pod(json!({ "app": "web" }), None);
    let (outcome, _) = decide("shop", &p, &Scope::default());
    let answer = response("abc-123", &outcome);
    assert_eq!(answer["apiVersion"], json!("admission.k8s.io/v1"));
    assert_eq!(answer["kind"], json!("AdmissionReview"));
    let r = &answer["response"];
    assert_eq!(r["uid"], json!("abc-123"));
    assert_eq!(r["allowed"], json!(true));
    assert_eq!(r["patchType"], json!("JSONPatch"));
    let encoded = r["patch"].as_str().unwrap_or_default();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_default();
    let patch: Value = serde_json::from_slice(&decoded).unwrap_or_default();
    let Outcome::Patched { patch: want, .. } = &outcome else {
        panic!("expected a patch, got {outcome:?}");
    };
    assert_eq!(&patch, want);
    assert_eq!(
        r["auditAnnotations"]["readiness-gates"],
        json!("podgate.dev/http-healthy,podgate.dev/warm")
    );

    let unchanged = response("u2", &Outcome::Unchanged(Unchanged::NoRule));
    assert_eq!(
        unchanged["response"],
        json!({ "uid": "u2", "allowed": true })
    );
}

#[test]
fn review_round_trip_from_a_request_body() {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": { "group": "", "version": "v1", "kind": "Pod" },
            "resource": { "group": "", "version": "v1", "resource": "pods" },
            "requestKind": { "group": "", "version": "v1", "kind": "Pod" },
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": { "username": "system:serviceaccount:kube-system:replicaset-controller" },
            "object": pod(json!({ "app": "cart" }), None),
            "oldObject": null,
            "dryRun": false,
            "options": { "apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions" },
        }
    });
    let bytes = body.to_string().into_bytes();
    let (req, outcome, answer) = match review(&bytes, &rules(), &Scope::default()) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(req.uid, "u-1");
    assert_eq!(answer["response"]["uid"], json!("u-1"));
    assert_eq!(
        gates_of(&apply(&body["request"]["object"], &outcome)),
        ["podgate.dev/http-healthy"]
    );
}

#[test]
fn malformed_reviews_are_errors_that_say_what_is_wrong() {
    let cases: [(&[u8], &str); 7] = [
        (b"", "not an AdmissionReview JSON object"),
        (b"{not json", "line 1 column 2"),
        (b"[1,2]", "not an AdmissionReview JSON object"),
        (
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#,
            "only admission.k8s.io/v1",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"Pod"}"#,
            "expected \"AdmissionReview\"",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            "no request",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":5}}"#,
            "invalid type: integer `5`, expected a string",
        ),
    ];
    for (body, want) in cases {
        let e = match parse_review(body) {
            Ok(r) => panic!("{:?} parsed: {r:?}", String::from_utf8_lossy(body)),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with("invalid AdmissionReview: "), "{e}");
        assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(body));
    }
    let empty_uid =
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":""}}"#;
    assert!(
        parse_review(empty_uid)
            .map_err(|e| e.to_string())
            .err()
            .is_some_and(|e| e.contains("request.uid is empty"))
    );
}

#[test]
fn append_patch_shapes() {
    let gates = ["a/x".to_string(), "b/y".to_string()];
    assert_eq!(
        append_patch(false, &gates),
        json!([{ "op": "add", "path": "/spec/readinessGates",
                 "value": [{ "conditionType": "a/x" }, { "conditionType": "b/y" }] }])
    );
    assert_eq!(
        append_patch(true, &gates),
        json!([
            { "op": "add", "path": "/spec/readinessGates/-", "value": { "conditionType": "a/x" } },
            { "op": "add", "path": "/spec/readinessGates/-", "value": { "conditionType": "b/y" } },
        ])
    );
}
