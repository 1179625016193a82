//! `podgate run`'s safety valves: the override annotation (pod and namespace), dry run
//! (daemon-wide and per rule), the panic threshold `maxUnavailable`, and `failOpenAfter`.

use crate::support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Event, Namespace};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use support::TestPod;
use support::daemon::{Daemon, rules_dir};
use support::scene::{Scene, gate_of_pod};
use support::{RuleYaml, queue, rule_file};

const GATE: &str = "podgate.dev/safety-healthy";
const OVERRIDE: &str = "podgate.dev/override";

/// Rule `queue` (`queue < 100`, failureThreshold 1) on GATE, with `extra` rule fields.
fn rule(extra: &str) -> String {
    RuleYaml::queue(GATE).tail(extra).file()
}

async fn annotate_pod(scene: &Scene, name: &str, value: serde_json::Value) {
    scene
        .pods
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { OVERRIDE: value } } })),
        )
        .await
        .unwrap_or_else(|e| panic!("annotating pod {name}: {e}"));
}

async fn annotate_namespace(scene: &Scene, value: serde_json::Value) {
    Api::<Namespace>::all(scene.admin.clone())
        .patch(
            scene.name(),
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { OVERRIDE: value } } })),
        )
        .await
        .unwrap_or_else(|e| panic!("annotating namespace {}: {e}", scene.name()));
}

#[tokio::test]
async fn override_on_pod_or_namespace_sets_true_overridden_and_removing_it_resumes() {
    let scene = Scene::new("override").await;
    let daemon = scene.start_daemon(&rule(""), &[]).await;
    let _a = scene
        .running_pod(TestPod::new("a").gate(GATE), &queue(500))
        .await;
    let _b = scene
        .running_pod(TestPod::new("b").gate(GATE), &queue(500))
        .await;
    for name in ["a", "b"] {
        scene
            .wait_gate(name, GATE, "False", "MetricsUnhealthy", &daemon)
            .await;
    }

    // On the pod: only that pod.
    annotate_pod(&scene, "a", json!("true")).await;
    let g = scene
        .wait_gate("a", GATE, "True", "Overridden", &daemon)
        .await;
    assert!(g.message.contains(OVERRIDE), "{g:?}");
    assert!(g.message.contains("pod"), "{g:?}");
    let b = scene.gate("b", GATE).await;
    assert_eq!(b.map(|g| g.status), Some("False".to_string()));
    // The kubelet now sees a ready pod.
    let pod = scene.kubelet.sync_ready("a").await;
    assert_eq!(support::condition_status(&pod, "Ready"), Some("True"));

    annotate_pod(&scene, "a", serde_json::Value::Null).await;
    let g = scene
        .wait_gate("a", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=500 >= 100"), "{g:?}");

    // On the namespace: every pod in it.
    annotate_namespace(&scene, json!("true")).await;
    for name in ["a", "b"] {
        let g = scene
            .wait_gate(name, GATE, "True", "Overridden", &daemon)
            .await;
        assert!(g.message.contains("namespace"), "{g:?}");
    }
    annotate_namespace(&scene, serde_json::Value::Null).await;
    for name in ["a", "b"] {
        scene
            .wait_gate(name, GATE, "False", "MetricsUnhealthy", &daemon)
            .await;
    }
}

#[tokio::test]
async fn lifting_the_override_before_any_verdict_takes_the_gate_back_from_true() {
    let scene = Scene::new("override-undecided").await;
    let rules = rules_dir(&rule(""));
    let mut daemon = Daemon::start(rules.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    // Its source is down and the rule keeps on errors: no rule ever decides.
    let web = scene
        .pending_pod(TestPod::new("web").gate(GATE), &queue(1))
        .await;
    web.set_status(503);
    scene.kubelet.run("web", web.ip(), true).await;
    let db = scene
        .pending_pod(TestPod::new("db").gate(GATE), &queue(1))
        .await;
    db.set_status(503);
    scene.kubelet.run("db", db.ip(), true).await;
    for name in ["web", "db"] {
        annotate_pod(&scene, name, json!("true")).await;
        scene
            .wait_gate(name, GATE, "True", "Overridden", &daemon)
            .await;
    }

    annotate_pod(&scene, "web", serde_json::Value::Null).await;
    let g = scene
        .wait_gate("web", GATE, "False", "NoData", &daemon)
        .await;
    assert!(g.message.contains("removed"), "{g:?}");
    assert!(g.message.contains("(rule queue)"), "{g:?}");
    let pod = scene.kubelet.sync_ready("web").await;
    assert_eq!(support::condition_status(&pod, "Ready"), Some("False"));

    // Lifted while no podgate runs: the next one takes the gate back too.
    daemon.stop();
    annotate_pod(&scene, "db", serde_json::Value::Null).await;
    let daemon = Daemon::start(rules.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    scene
        .wait_gate("db", GATE, "False", "NoData", &daemon)
        .await;

    // Once the source answers, the rule decides as usual.
    web.set_status(200);
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
}

/// Waits until the daemon has counted at least `n` evaluations of `rule` with `result`.
async fn wait_evaluations(daemon: &Daemon, rule: &str, result: &str, n: f64) {
    support::wait_for(
        &format!("{n} {result} evaluations of {rule}"),
        Duration::from_secs(30),
        || async {
            let got = daemon
                .sum(
                    "podgate_evaluations_total",
                    &[("rule", rule), ("result", result)],
                )
                .await;
            if got >= n { Ok(()) } else { Err(got) }
        },
    )
    .await;
}

async fn gate_events(scene: &Scene) -> Vec<String> {
    let events: Api<Event> = scene.ns.api(scene.admin.clone());
    events
        .list(&ListParams::default())
        .await
        .unwrap_or_else(|e| panic!("listing events: {e}"))
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .filter(|r| r.starts_with("Gate"))
        .collect()
}

#[tokio::test]
async fn daemon_dry_run_decides_and_exports_but_writes_nothing() {
    let scene = Scene::new("dry-run").await;
    let daemon = scene.start_daemon(&rule(""), &["--dry-run"]).await;
    let _good = scene
        .running_pod(TestPod::new("good").gate(GATE), &queue(1))
        .await;
    let _bad = scene
        .running_pod(TestPod::new("bad").gate(GATE), &queue(500))
        .await;
    let rv_good = scene.resource_version("good").await;
    let rv_bad = scene.resource_version("bad").await;

    wait_evaluations(&daemon, "queue", "pass", 3.0).await;
    wait_evaluations(&daemon, "queue", "fail", 3.0).await;
    let m = daemon.samples().await;
    let transitions = |status: &str, reason: &str| {
        support::daemon::sum_of(
            &m,
            "podgate_gate_transitions_total",
            &[("rule", "queue"), ("status", status), ("reason", reason)],
        )
    };
    assert_eq!(transitions("True", "MetricsHealthy"), 1.0, "decided");
    assert_eq!(transitions("False", "MetricsUnhealthy"), 1.0, "decided");
    assert_eq!(
        support::daemon::sum_of(&m, "podgate_kube_writes_total", &[]),
        0.0,
        "no write attempted"
    );
    assert!(daemon.log().contains("dry run"), "{}", daemon.log_tail(20));

    assert_eq!(scene.resource_version("good").await, rv_good);
    assert_eq!(scene.resource_version("bad").await, rv_bad);
    for name in ["good", "bad"] {
        assert_eq!(scene.gate(name, GATE).await, None, "{name}");
    }
    assert_eq!(gate_events(&scene).await, Vec::<String>::new());
}

#[tokio::test]
async fn rule_dry_run_writes_nothing_and_has_no_say_on_a_shared_gate() {
    const SHARED: &str = "podgate.dev/safety-shared";
    let rules = rule_file([
        &RuleYaml::queue(GATE).tail("    dryRun: true\n"),
        &RuleYaml::queue(SHARED).name("live").limit(1000),
        &RuleYaml::queue(SHARED)
            .name("strict-trial")
            .with("dryRun", true)
            .limit(10),
    ]);
    let scene = Scene::new("rule-dry-run").await;
    let daemon = scene.start_daemon(&rules, &[]).await;
    // Only a dry-run rule owns GATE on this pod.
    let _trial = scene
        .running_pod(TestPod::new("trial").gate(GATE), &queue(500))
        .await;
    let rv_trial = scene.resource_version("trial").await;
    // SHARED: a live rule that passes and a dry-run rule that fails.
    let _shared = scene
        .running_pod(TestPod::new("shared").gate(SHARED), &queue(500))
        .await;

    let g = scene
        .wait_gate("shared", SHARED, "True", "MetricsHealthy", &daemon)
        .await;
    assert!(g.message.contains("(rule live)"), "{g:?}");
    assert!(!g.message.contains("strict-trial"), "{g:?}");
    wait_evaluations(&daemon, "queue", "fail", 3.0).await;
    wait_evaluations(&daemon, "strict-trial", "fail", 3.0).await;

    assert_eq!(scene.resource_version("trial").await, rv_trial);
    assert_eq!(scene.gate("trial", GATE).await, None);
    let g = scene.gate("shared", SHARED).await;
    assert_eq!(
        g.map(|g| (g.status, g.reason)),
        Some(("True".to_string(), "MetricsHealthy".to_string()))
    );
}

#[tokio::test]
async fn panic_threshold_lets_at_most_max_unavailable_go_false() {
    let scene = Scene::new("panic").await;
    let daemon = scene
        .start_daemon(&rule("    maxUnavailable: 1\n    onError: fail\n"), &[])
        .await;
    let names = ["p0", "p1", "p2", "p3"];
    let mut eps = Vec::new();
    for name in names {
        eps.push(
            scene
                .running_pod(TestPod::new(name).gate(GATE), &queue(1))
                .await,
        );
    }
    for name in names {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
    }

    // The metrics pipeline breaks for every pod at once.
    for ep in &eps {
        ep.set_status(500);
    }
    let all_settled = |gates: &[Option<support::scene::Gate>]| {
        let reasons: Vec<(String, String)> = gates
            .iter()
            .map(|g| {
                g.as_ref()
                    .map(|g| (g.status.clone(), g.reason.clone()))
                    .unwrap_or_default()
            })
            .collect();
        let falses = reasons.iter().filter(|(s, _)| s == "False").count();
        let held = reasons
            .iter()
            .filter(|(s, r)| s == "True" && r == "PanicThreshold")
            .count();
        (falses, held)
    };
    // Watch every pod for a while: never more than one False, and the rest end up held.
    let started = Instant::now();
    let mut settled_at = None;
    loop {
        let mut gates = Vec::new();
        for name in names {
            gates.push(scene.gate(name, GATE).await);
        }
        let (falses, held) = all_settled(&gates);
        assert!(
            falses <= 1,
            "maxUnavailable 1, yet {falses} gates are False: {gates:#?}"
        );
        if falses == 1 && held == 3 && settled_at.is_none() {
            settled_at = Some(Instant::now());
            let down = gates
                .iter()
                .flatten()
                .find(|g| g.status == "False")
                .map(|g| g.reason.clone());
            assert_eq!(down.as_deref(), Some("SourceError"));
            for g in gates.iter().flatten().filter(|g| g.status == "True") {
                assert!(g.message.contains("held True by maxUnavailable"), "{g:?}");
                assert!(g.message.contains("HTTP status 500"), "{g:?}");
            }
        }
        // Keep watching a few intervals after settling.
        if settled_at.is_some_and(|t| t.elapsed() > Duration::from_secs(3)) {
            break;
        }
        if started.elapsed() > support::scene::GATE_TIMEOUT {
            panic!(
                "gates did not settle at 1 False + 3 held: {gates:#?}\n{}",
                daemon.log_tail(40)
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let holds = daemon
        .sum("podgate_panic_threshold_holds_total", &[("rule", "queue")])
        .await;
    assert!(holds >= 3.0, "holds counted: {holds}");

    // The pipeline comes back: everyone healthy again.
    for ep in &eps {
        ep.set_status(200);
    }
    for name in names {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &daemon)
            .await;
    }
}

#[tokio::test]
async fn fail_open_after_turns_a_never_healthy_pod_true() {
    let scene = Scene::new("fail-open").await;
    let daemon = scene
        .start_daemon(&rule("    failOpenAfter: 4s\n"), &[])
        .await;
    // One fails its expression, one cannot be scraped at all (onError keep: undecided).
    let failing = scene
        .running_pod(TestPod::new("failing").gate(GATE), &queue(500))
        .await;
    let down = scene
        .pending_pod(TestPod::new("down").gate(GATE), &queue(1))
        .await;
    down.set_status(503);
    scene.kubelet.run("down", down.ip(), true).await;

    scene
        .wait_gate("failing", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    for name in ["failing", "down"] {
        let g = scene
            .wait_gate(name, GATE, "True", "FailOpenTimeout", &daemon)
            .await;
        assert!(g.message.contains("failing open"), "{g:?}");
        // Not before the timeout: measured from ContainersReady, on the API server's clock.
        let pod = scene.pod(name).await;
        let ready_at = support::condition(&pod, "ContainersReady")
            .and_then(|c| c.last_transition_time.clone())
            .map(|t| t.0.as_second());
        let open_at = support::condition(&pod, GATE)
            .and_then(|c| c.last_transition_time.clone())
            .map(|t| t.0.as_second());
        let (Some(ready_at), Some(open_at)) = (ready_at, open_at) else {
            panic!(
                "transition times missing on {name}: {:?}",
                gate_of_pod(&pod, GATE)
            );
        };
        // Times have whole seconds: allow one for rounding.
        assert!(
            open_at - ready_at >= 3,
            "{name} failed open {}s after ContainersReady (failOpenAfter 4s)",
            open_at - ready_at
        );
    }
    assert_eq!(
        scene
            .gate("down", GATE)
            .await
            .map(|g| g.message.contains("HTTP status 503")),
        Some(true)
    );

    // It stays open while still failing ...
    let rv = scene.resource_version("failing").await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(scene.resource_version("failing").await, rv);
    // ... and after a first pass, the rule is enforced as usual.
    failing.set_body(queue(1));
    scene
        .wait_gate("failing", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    failing.set_body(queue(500));
    scene
        .wait_gate("failing", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
}

#[tokio::test]
async fn a_restarted_daemon_does_not_fail_open_a_pod_that_was_healthy_before() {
    let scene = Scene::new("fail-open-restart").await;
    let rules = rules_dir(&rule("    failOpenAfter: 3s\n"));
    let mut first = Daemon::start(rules.path(), scene.name(), &[]);
    first.wait_ready().await;
    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(1))
        .await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &first)
        .await;
    // Past the fail-open window, the pod turns bad: an ordinary False.
    tokio::time::sleep(Duration::from_secs(3)).await;
    ep.set_body(queue(500));
    scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &first)
        .await;
    let rv = scene.resource_version("web").await;
    first.stop();

    // The next podgate (a restart, a rollout, a failover) picks up where the first left off:
    // the pod has been True before, so failOpenAfter does not apply to it any more.
    let second = Daemon::start(rules.path(), scene.name(), &[]);
    second.wait_ready().await;
    support::wait_for(
        "the new daemon evaluates",
        Duration::from_secs(20),
        || async {
            let n = second
                .sum(
                    "podgate_evaluations_total",
                    &[("rule", "queue"), ("result", "fail")],
                )
                .await;
            if n >= 3.0 { Ok(()) } else { Err(n) }
        },
    )
    .await;
    let g = scene.gate("web", GATE).await;
    assert_eq!(
        g.as_ref().map(|g| (g.status.as_str(), g.reason.as_str())),
        Some(("False", "MetricsUnhealthy")),
        "{g:?}\n{}",
        second.log_tail(20)
    );
    assert_eq!(scene.resource_version("web").await, rv);
}
