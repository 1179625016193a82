//! The Grafana dashboards in dashboards/: their structure, and every panel query run against a
//! real Prometheus scraping a real `podgate run` whose pods flip, hit the panic threshold and
//! fail to scrape — each query must be valid PromQL and return data.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use serde_json::{Value, json};
use support::daemon::{Daemon, rules_dir};
use support::queue;
use support::{Kubelet, MetricsEndpoint, Prometheus, TestNamespace, TestPod, wait_for};

const GATE: &str = "podgate.dev/dash-healthy";
const RULE: &str = "dash-queue";
const JOB: &str = "podgate";
/// What `$__rate_interval` becomes: four times the 1 s scrape interval is Grafana's minimum;
/// a longer window keeps rates of rarely moving counters (writes) non-empty.
const RATE_INTERVAL: &str = "30s";
const RANGE: &str = "5m";

const RULES: &str = r#"
rules:
  - name: dash-queue
    conditionType: podgate.dev/dash-healthy
    interval: 1s
    timeout: 500ms
    successThreshold: 1
    failureThreshold: 1
    onNoData: fail
    onError: keep
    maxUnavailable: 1
    scrape: {port: metrics}
    vars:
      queue: {scrape: 'max(work_queue_depth)'}
    expr: 'queue < 100'
"#;

fn dashboards() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        out.push((name, json));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["podgate-overview.json", "podgate-rule.json"]);
    out
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().cloned().unwrap_or_default() {
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested.iter().cloned());
        }
        out.push(p);
    }
    out
}

/// (panel title, target expr) of every query panel.
fn exprs(dashboard: &Value) -> Vec<(String, String)> {
    panels(dashboard)
        .iter()
        .filter(|p| p["type"] != "row")
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            p["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |t| {
                    (
                        title.clone(),
                        t["expr"].as_str().unwrap_or_default().to_string(),
                    )
                })
        })
        .collect()
}

fn variables(dashboard: &Value) -> Vec<Value> {
    dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

const DATASOURCE: &str = "${datasource}";

/// Every series name podgate exports, from its own registry with every metric touched once.
fn exported_series() -> BTreeSet<String> {
    use podgate::telemetry::metrics::{Metrics, encode};
    let (m, registry) = Metrics::new();
    m.evaluation("r", "pass", Duration::from_millis(1));
    m.source_request("scrape", "ok", Duration::from_millis(1));
    m.transition("r", "True", "MetricsHealthy");
    m.panic_hold("r");
    m.kube_write("ok", Duration::from_millis(1));
    m.reload(true, 1, 1.0);
    m.set_gates([("r", [("True", 1), ("False", 0), ("Unknown", 0)])].into_iter());
    let text = encode(&registry).expect("encoding podgate's registry");
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// The `podgate_*` metric names an expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"podgate_[a-z_]+").expect("regex");
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

#[test]
fn dashboards_are_well_formed() {
    let exported = exported_series();
    let mut uids = BTreeSet::new();
    for (file, d) in dashboards() {
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty() && uid.len() <= 40, "{file}: uid {uid:?}");
        assert!(
            uids.insert(uid.to_string()),
            "{file}: uid {uid} is not unique"
        );
        assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()), "{file}");
        let schema = d["schemaVersion"].as_i64().unwrap_or(0);
        assert!(schema >= 36, "{file}: schemaVersion {schema} < 36");
        assert!(
            d.get("__inputs").is_none(),
            "{file}: use the datasource variable, not import-time inputs"
        );

        // The Prometheus datasource variable, and every query variable uses it.
        let vars = variables(&d);
        let ds = vars
            .iter()
            .find(|v| v["name"] == "datasource")
            .unwrap_or_else(|| panic!("{file}: no datasource variable"));
        assert_eq!(ds["type"], "datasource", "{file}");
        assert_eq!(ds["query"], "prometheus", "{file}");
        for v in vars.iter().filter(|v| v["type"] == "query") {
            assert_eq!(
                v["datasource"]["uid"], DATASOURCE,
                "{file}: variable {}",
                v["name"]
            );
            // Grafana runs `query.query`; the live test checks `definition`: keep them one.
            assert_eq!(
                v["query"]["query"], v["definition"],
                "{file}: variable {}",
                v["name"]
            );
        }

        // Panels: unique ids, laid out on the 24-column grid, every query on the variable
        // datasource with an expression.
        let mut ids = BTreeSet::new();
        for p in panels(&d) {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            let id = p["id"]
                .as_i64()
                .unwrap_or_else(|| panic!("{file}: panel {title:?} has no id"));
            assert!(
                ids.insert(id),
                "{file}: panel id {id} ({title}) is not unique"
            );
            let grid = &p["gridPos"];
            let (x, w) = (grid["x"].as_i64(), grid["w"].as_i64());
            assert!(
                matches!((x, w), (Some(x), Some(w)) if x >= 0 && w > 0 && x + w <= 24)
                    && grid["h"].as_i64().is_some_and(|h| h > 0)
                    && grid["y"].as_i64().is_some(),
                "{file}: panel {title:?} gridPos {grid}"
            );
            if p["type"] == "row" {
                continue;
            }
            assert!(!title.is_empty(), "{file}: panel {id} has no title");
            assert_eq!(
                p["datasource"]["uid"], DATASOURCE,
                "{file}: panel {title:?}"
            );
            assert_eq!(p["datasource"]["type"], "prometheus", "{file}: {title:?}");
            let targets = p["targets"].as_array().cloned().unwrap_or_default();
            assert!(!targets.is_empty(), "{file}: panel {title:?} has no query");
            let mut refs = BTreeSet::new();
            for t in targets {
                let expr = t["expr"].as_str().unwrap_or_default();
                assert!(
                    !expr.trim().is_empty(),
                    "{file}: {title:?}: a target without expr"
                );
                assert_eq!(t["datasource"]["uid"], DATASOURCE, "{file}: {title:?}");
                let r = t["refId"].as_str().unwrap_or_default().to_string();
                assert!(!r.is_empty() && refs.insert(r), "{file}: {title:?}: refIds");
                for name in metric_names(expr) {
                    assert!(
                        exported.contains(&name),
                        "{file}: {title:?} uses {name}, which podgate does not export"
                    );
                }
            }
        }
    }

    // What each dashboard is for.
    let all = dashboards();
    let overview = &all[0].1;
    let used: BTreeSet<String> = exprs(overview)
        .iter()
        .flat_map(|(_, e)| metric_names(e))
        .collect();
    for want in [
        "podgate_gates",
        "podgate_gate_transitions_total",
        "podgate_evaluations_total",
        "podgate_evaluation_duration_seconds_bucket",
        "podgate_source_requests_total",
        "podgate_kube_writes_total",
        "podgate_config_last_reload_successful",
        "podgate_leader",
        "podgate_pods_tracked",
        "podgate_panic_threshold_holds_total",
    ] {
        assert!(used.contains(want), "the overview shows no {want}");
    }
    let rule = &all[1].1;
    assert!(
        variables(rule).iter().any(|v| v["name"] == "rule"),
        "the rule dashboard needs a rule variable"
    );
    let per_rule = exprs(rule)
        .iter()
        .filter(|(_, e)| e.contains("rule=\"$rule\""))
        .count();
    assert!(
        per_rule >= 8,
        "only {per_rule} rule queries filter on $rule"
    );
}

/// Replaces Grafana's variables in a query as Grafana would for this test's data.
fn substitute(expr: &str) -> String {
    let mut out = expr.to_string();
    for (var, value) in [
        ("__rate_interval", RATE_INTERVAL),
        ("__interval", "1s"),
        ("__range", RANGE),
        ("job", JOB),
        ("rule", RULE),
    ] {
        out = out.replace(&format!("${{{var}}}"), value);
        out = out.replace(&format!("${var}"), value);
    }
    assert!(!out.contains('$'), "unsubstituted variable in {out}");
    out
}

/// Whether a query result holds at least one number that is not NaN.
fn has_data(data: &Value) -> bool {
    let value_ok = |v: &Value| {
        v.get(1)
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .is_some_and(|f| !f.is_nan())
    };
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .is_some_and(|r| r.iter().any(|s| value_ok(&s["value"]))),
        Some("scalar") => value_ok(&data["result"]),
        Some("matrix") => data["result"].as_array().is_some_and(|r| {
            r.iter().any(|s| {
                s["values"]
                    .as_array()
                    .is_some_and(|vs| vs.iter().any(value_ok))
            })
        }),
        _ => false,
    }
}

#[tokio::test]
async fn every_panel_query_returns_data_from_a_live_daemon() {
    let ns = TestNamespace::new("dashboards").await;
    let admin = ns.admin_client();
    let pods: Api<Pod> = ns.api(admin.clone());
    let kubelet = Kubelet::new(admin.clone(), ns.name());

    // Four pods: steady, two flapping out of phase (transitions, and panic holds whenever
    // both are bad: maxUnavailable 1), and one whose endpoint answers 500 (source errors).
    let mut endpoints = BTreeMap::new();
    for name in ["steady", "flap-a", "flap-b", "broken"] {
        let ip = support::unique_loopback_ip();
        let ep = Arc::new(MetricsEndpoint::start(ip).await);
        ep.set_body(queue(3));
        if name == "broken" {
            ep.set_status(500);
        }
        TestPod::new(name)
            .gate(GATE)
            .port("metrics", ep.port())
            .create(&pods)
            .await;
        endpoints.insert(name, (ip, ep));
    }

    let rules = rules_dir(RULES);
    let lease = format!("dash-{}", support::unique_suffix());
    let daemon = Daemon::start(
        rules.path(),
        ns.name(),
        &["--leader-election", "--lease-name", &lease],
    );
    daemon.wait_ready().await;
    let prometheus = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n\
         scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{}']\n",
        daemon.metrics_addr
    ))
    .await;

    for (name, (ip, _)) in &endpoints {
        kubelet.run(name, *ip, true).await;
    }
    let flap = {
        let a = endpoints["flap-a"].1.clone();
        let b = endpoints["flap-b"].1.clone();
        tokio::spawn(async move {
            for tick in 0u32.. {
                // Periods of 6 s and 10 s: each pod alone goes False and back (transitions);
                // when both are bad the second is held True (panic threshold).
                a.set_body(queue(if tick % 6 < 3 { 3 } else { 500 }));
                b.set_body(queue(if tick % 10 < 5 { 3 } else { 500 }));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };

    // The scenario has happened once podgate counted a panic hold and a scrape error.
    wait_for(
        "a panic hold and a scrape error in podgate's metrics",
        Duration::from_secs(60),
        || async {
            let holds = daemon
                .metric(&format!(
                    "podgate_panic_threshold_holds_total{{rule=\"{RULE}\"}}"
                ))
                .await;
            let errors = daemon
                .metric("podgate_source_requests_total{source=\"scrape\",result=\"error\"}")
                .await;
            match (holds, errors) {
                (Some(h), Some(e)) if h > 0.0 && e > 0.0 => Ok(()),
                other => Err((other, daemon.log())),
            }
        },
    )
    .await;

    // Variables: what Grafana's label_values() would offer.
    let label_values = regex::Regex::new(r"^label_values\((.+),\s*(\w+)\)$").expect("regex");
    for (file, d) in dashboards() {
        for v in variables(&d).iter().filter(|v| v["type"] == "query") {
            let q = v["definition"].as_str().unwrap_or_default();
            let caps = label_values
                .captures(q)
                .unwrap_or_else(|| panic!("{file}: variable query {q:?} is not label_values()"));
            let (selector, label) = (substitute(&caps[1]), caps[2].to_string());
            let want = if label == "rule" { RULE } else { JOB };
            // Prometheus may not have scraped podgate yet: wait, as for the panels below.
            let what = format!("{file}: variable {} offers {want}", v["name"]);
            wait_for(&what, Duration::from_secs(60), || async {
                let data = prometheus.query(&selector).await;
                let values: BTreeSet<String> = data["result"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|s| s["metric"][&label].as_str().map(str::to_string))
                    .collect();
                if values.contains(want) {
                    Ok(())
                } else {
                    Err(values)
                }
            })
            .await;
        }
    }

    // Every panel query: valid (Prometheus::query fails the test otherwise) and with data.
    let mut checked = 0;
    for (file, d) in dashboards() {
        for (title, expr) in exprs(&d) {
            let q = substitute(&expr);
            let what = format!("{file}: panel {title:?}: {q}");
            let data = wait_for(&what, Duration::from_secs(60), || async {
                let data = prometheus.query(&q).await;
                if has_data(&data) { Ok(data) } else { Err(data) }
            })
            .await;
            assert!(has_data(&data), "{what}");
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} queries checked");

    // The leader filter in the queries saw this instance as the writer.
    let leader = prometheus
        .query(&format!("podgate_leader{{job=\"{JOB}\"}}"))
        .await;
    assert_eq!(
        leader["result"][0]["value"][1],
        json!("1"),
        "podgate did not lead: {leader}\n{}",
        daemon.log()
    );
    flap.abort();
    drop(prometheus);
}
