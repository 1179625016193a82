//! What putting a rule set in force costs the controller loop, at fleet size (docs/reliability.md).
//!
//! Two parts of a reload are timed on a state of `PODGATE_BENCH_PODS` pods (default 10,000),
//! alternating between a one-rule set and the same rule plus 999 fillers (the rule limit,
//! as the soak loads): reading and validating the rules directory (`reload::reload`, which the
//! daemon runs on a blocking thread, off the loop), and handing the finished set to the loop's
//! state (`LoopState::on_reload`: the engine re-keyed, every pod task's configuration rebuilt,
//! the gauges re-initialised), which is what a reload costs the loop itself. Each is repeated
//! `PODGATE_BENCH_REPEATS` times (default 5) and reported as the median and the range.
//!
//! Run with `cargo bench --bench reload`. With `PODGATE_BENCH_JSON` set, stdout carries one
//! JSON object per measurement, `{"measure","pods","rules","repeats","median_s","min_s","max_s"}`,
//! and the table goes to stderr. A smoke run (`cargo test --benches`) measures nothing.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use podgate::controller::peers::SharedPeers;
use podgate::controller::state::LoopState;
use podgate::decision::engine::{PodInfo, PodKey};
use podgate::kube::watch::{PodEvent, PodSnapshot};
use podgate::peers::PodOwner;
use podgate::reload;
use podgate::rules::RuleSet;
use podgate::telemetry::metrics::Metrics;
use podgate::telemetry::server::Health;

const GATE: &str = "podgate.dev/app-healthy";

/// The fleet benchmark's scrape rule (examples/bench), on a gate every pod declares.
const RULE: &str = r#"rules:
  - name: app-healthy
    conditionType: podgate.dev/app-healthy
    interval: 10s
    timeout: 5s
    failureThreshold: 3
    onNoData: pass
    maxUnavailable: 10%
    scrape: {port: metrics, path: /metrics}
    vars:
      errors:   {scrape: 'sum(rate(http_requests_total{code=~"5.."}[30s]))'}
      requests: {scrape: 'sum(rate(http_requests_total[30s]))'}
      p99:      {scrape: 'histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[30s]))'}
    expr: 'requests == 0 || (errors / requests < 0.05 && p99 < 0.5)'
"#;

/// The rule and 999 fillers owning gates no pod declares: a set at the rule limit.
fn thousand_rules() -> String {
    let mut text = RULE.to_string();
    for i in 0..999 {
        text.push_str(&format!(
            "  - name: filler-{i}\n    conditionType: podgate.dev/filler-{i}\n    interval: 10s\n    \
             timeout: 5s\n    scrape: {{port: metrics}}\n    vars:\n      \
             up: {{scrape: 'max(http_requests_total)'}}\n    expr: 'up >= 0'\n"
        ));
    }
    text
}

/// A Running pod of Deployment `web`, ready, declaring the rule's gate.
fn pod(i: usize) -> PodSnapshot {
    let labels = BTreeMap::from([
        ("app".to_string(), "web".to_string()),
        ("pod-template-hash".to_string(), "5d8f7c9b4".to_string()),
    ]);
    PodSnapshot {
        key: PodKey::new("fleet", format!("web-{i}")),
        info: PodInfo {
            uid: format!("uid-{i}"),
            labels,
            gates: vec![GATE.to_string()],
            containers_ready_since: Some(1_000_000),
            override_by: None,
            conditions: BTreeMap::new(),
            condition_since: BTreeMap::new(),
        },
        phase: Some("Running".to_string()),
        // Never dialled: the bench starts no pod task.
        pod_ip: "127.0.0.1".parse().ok(),
        node_name: Some(format!("node-{}", i % 100)),
        deleting: false,
        prometheus_port: None,
        prometheus_path: None,
        container_ports: Vec::new(),
        owner: Some(PodOwner {
            kind: "Deployment".to_string(),
            name: "web".to_string(),
        }),
    }
}

fn load(dir: &Path, text: &str, in_force: usize) -> Result<RuleSet, String> {
    std::fs::write(dir.join("rules.yaml"), text).map_err(|e| format!("{}: {e}", dir.display()))?;
    reload::reload(dir, in_force).map_err(|e| e.to_string())
}

struct Timing {
    measure: &'static str,
    rules: usize,
    runs: Vec<Duration>,
}

fn run(pods: usize, repeats: usize) -> Result<Vec<Timing>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let small = load(dir.path(), RULE, 0)?;
    let (metrics, _registry) = Metrics::new();
    let mut state = LoopState::new(
        small.clone(),
        Arc::new(SharedPeers::default()),
        metrics,
        Arc::new(Health::default()),
        0.0,
    );
    for i in 0..pods {
        let _ = state.on_pod_event(PodEvent::Upsert(pod(i)));
    }
    let _ = state.on_pod_event(PodEvent::Synced);
    let big_text = thousand_rules();
    let mut read = Timing {
        measure: "read and validate (off the loop)",
        rules: 1000,
        runs: Vec::new(),
    };
    let mut in_force = Timing {
        measure: "put in force (on the loop)",
        rules: 1000,
        runs: Vec::new(),
    };
    let mut back = Timing {
        measure: "put in force (on the loop)",
        rules: 1,
        runs: Vec::new(),
    };
    for _ in 0..repeats {
        let started = Instant::now();
        let big = load(dir.path(), &big_text, state.rules().len())?;
        read.runs.push(started.elapsed());
        let started = Instant::now();
        let fx = state.on_reload(Ok(big), 0.0);
        in_force.runs.push(started.elapsed());
        std::hint::black_box(fx);
        let started = Instant::now();
        let fx = state.on_reload(Ok(small.clone()), 0.0);
        back.runs.push(started.elapsed());
        std::hint::black_box(fx);
    }
    Ok(vec![read, in_force, back])
}

fn env_usize(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .map_err(|e| format!("{name}={v}: not a count: {e}")),
        Err(_) => Ok(default),
    }
}

fn main() {
    // Without `--bench` (`cargo test --benches`) a smoke run: a small state, once.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let sizes = if smoke {
        Ok((20, 1))
    } else {
        env_usize("PODGATE_BENCH_PODS", 10_000)
            .and_then(|pods| Ok((pods, env_usize("PODGATE_BENCH_REPEATS", 5)?.max(1))))
    };
    let result = sizes.and_then(|(pods, repeats)| Ok((pods, run(pods, repeats)?)));
    let (pods, timings) = match result {
        Ok(t) => t,
        Err(e) => {
            eprintln!("reload bench: {e}");
            std::process::exit(1);
        }
    };
    if smoke {
        eprintln!("smoke run (20 pods, once); `cargo bench --bench reload` measures");
        return;
    }
    let json = std::env::var_os("PODGATE_BENCH_JSON").is_some();
    let mut out = std::io::stdout().lock();
    eprintln!(
        "{:<36} {:>6} {:>6} {:>10} {:>10} {:>10}",
        "measure", "pods", "rules", "median s", "min s", "max s"
    );
    for t in timings {
        let mut runs = t.runs.clone();
        runs.sort();
        let secs = |d: Duration| d.as_secs_f64();
        let median = secs(runs[runs.len() / 2]);
        let (min, max) = (secs(runs[0]), secs(runs[runs.len() - 1]));
        eprintln!(
            "{:<36} {:>6} {:>6} {:>10.4} {:>10.4} {:>10.4}",
            t.measure, pods, t.rules, median, min, max
        );
        if json {
            let line = serde_json::json!({
                "measure": t.measure,
                "pods": pods,
                "rules": t.rules,
                "repeats": runs.len(),
                "median_s": median,
                "min_s": min,
                "max_s": max,
            });
            let _ = writeln!(out, "{line}");
        }
    }
}
