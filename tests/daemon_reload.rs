//! `podgate run` reloading its rules: a ConfigMap-style `..data` symlink swap changes what
//! the gates follow, an invalid set is rejected while the old rules keep working (and says
//! so in metrics, `/readyz` and the log), and SIGHUP reloads.

use crate::support;

use std::time::Duration;

use support::TestPod;
use support::daemon::{ConfigMapDir, Daemon};
use support::scene::Scene;
use support::{RuleYaml, queue, rule_file};

const GATE: &str = "podgate.dev/reload-healthy";
const OTHER_GATE: &str = "podgate.dev/reload-other";

/// Rule `queue` with `queue < {limit}` on GATE, and rule `other` (never changed) on OTHER_GATE.
fn rules(limit: &str) -> String {
    rule_file([
        &RuleYaml::queue(GATE).limit(limit),
        &RuleYaml::queue(OTHER_GATE).name("other").limit(1000),
    ])
}

#[tokio::test]
async fn configmap_swap_reloads_and_an_invalid_set_keeps_the_old_rules() {
    let scene = Scene::new("reload-swap").await;
    let mut cm = ConfigMapDir::new(&[("rules.yaml", &rules("100"))]);
    let daemon = Daemon::start(cm.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    assert_eq!(daemon.metric("podgate_rules_loaded").await, Some(2.0));

    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(50))
        .await;
    let bystander = scene
        .running_pod(TestPod::new("steady").gate(OTHER_GATE), &queue(1))
        .await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    scene
        .wait_gate("steady", OTHER_GATE, "True", "MetricsHealthy", &daemon)
        .await;
    let steady_rv = scene.resource_version("steady").await;

    // The kubelet's swap of ..data: the new limit applies.
    cm.update(&[("rules.yaml", &rules("10"))]);
    let g = scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=50 >= 10"), "{g:?}");
    daemon
        .wait_metric("podgate_config_reloads_total{result=\"success\"}", 2.0)
        .await;
    assert_eq!(
        daemon.metric("podgate_config_last_reload_successful").await,
        Some(1.0)
    );

    // An invalid set: rejected whole, the previous rules stay in force.
    let broken = rules("10").replace("expr: 'queue < 1000'", "expr: 'queue <'");
    cm.update(&[("rules.yaml", &broken)]);
    daemon
        .wait_metric("podgate_config_last_reload_successful", 0.0)
        .await;
    assert!(
        daemon
            .metric("podgate_config_reloads_total{result=\"failure\"}")
            .await
            .is_some_and(|n| n >= 1.0)
    );
    let (status, body) = daemon.readyz().await;
    assert_eq!(status, 200, "old rules still serve: {body}");
    assert!(body.contains("last reload rejected"), "{body}");
    assert!(body.contains("rules.yaml:"), "names the file: {body}");
    assert!(body.contains("other"), "names the rule: {body}");
    assert!(
        daemon.log().contains("rules rejected"),
        "logged:\n{}",
        daemon.log_tail(30)
    );
    assert_eq!(daemon.metric("podgate_rules_loaded").await, Some(2.0));
    // Both old rules keep deciding: `queue < 10` follows the values both ways.
    ep.set_body(queue(5));
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    ep.set_body(queue(20));
    let g = scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=20 >= 10"), "{g:?}");

    // Fixed: accepted, and /readyz forgets the error.
    cm.update(&[("rules.yaml", &rules("1000"))]);
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    daemon
        .wait_metric("podgate_config_last_reload_successful", 1.0)
        .await;
    let (_, body) = daemon.readyz().await;
    assert!(!body.contains("rejected"), "{body}");

    // Reloads that left rule `other` unchanged never rewrote its gate.
    assert_eq!(scene.resource_version("steady").await, steady_rv);
    assert!(bystander.requests() >= 3);
}

#[tokio::test]
async fn sighup_reloads_the_rules() {
    let scene = Scene::new("reload-hup").await;
    let cm = ConfigMapDir::new(&[("rules.yaml", &rules("100"))]);
    let daemon = Daemon::start(cm.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    let _ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(50))
        .await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    // Edit the file in place inside the current version directory: the directory watch
    // does not see that (only a swap of ..data), so only SIGHUP can pick it up.
    std::fs::write(cm.current().join("rules.yaml"), rules("10")).expect("edit rules");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let series = "podgate_config_reloads_total{result=\"success\"}";
    let before = daemon.metric(series).await;
    assert_eq!(
        before,
        Some(1.0),
        "precondition: only the initial load so far"
    );
    assert_eq!(
        scene.gate("web", GATE).await.map(|g| g.status),
        Some("True".to_string())
    );

    daemon.signal("HUP");
    let g = scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=50 >= 10"), "{g:?}");
    daemon.wait_metric(series, 2.0).await;
}

#[tokio::test]
async fn a_reload_keeps_the_streaks_of_unchanged_rules() {
    // Rule `queue` needs 5 failures in a row; the reload changes only rule `other`.
    let slow = |other_limit: &str| {
        rules("100")
            .replacen("failureThreshold: 1", "failureThreshold: 5", 1)
            .replace("'queue < 1000'", &format!("'queue < {other_limit}'"))
    };
    let scene = Scene::new("reload-streak").await;
    let mut cm = ConfigMapDir::new(&[("rules.yaml", &slow("1000"))]);
    let daemon = Daemon::start(cm.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(1))
        .await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    let fails = || async {
        daemon
            .sum(
                "podgate_evaluations_total",
                &[("rule", "queue"), ("result", "fail")],
            )
            .await
    };
    ep.set_body(queue(500));
    support::wait_for("two failures", Duration::from_secs(20), || async {
        let n = fails().await;
        if n >= 2.0 { Ok(n) } else { Err(n) }
    })
    .await;
    cm.update(&[("rules.yaml", &slow("2000"))]);
    daemon
        .wait_metric("podgate_config_reloads_total{result=\"success\"}", 2.0)
        .await;
    let at_reload = fails().await;
    assert!(
        at_reload < 5.0,
        "the reload came too late to tell: {at_reload} failures already"
    );

    scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    // Kept streak: False on the 5th failure overall. A reset streak would have needed 5
    // more after the reload.
    let total = fails().await;
    assert!(
        total < at_reload + 5.0,
        "False after {total} failures, {at_reload} of them before the reload"
    );
}

#[tokio::test]
async fn invalid_rules_at_startup_stop_the_daemon_with_every_error() {
    let scene = Scene::new("reload-startup").await;
    let broken = rules("100")
        .replace("expr: 'queue < 1000'", "expr: 'queue <'")
        .replace("interval: 1s", "interval: soon");
    let cm = ConfigMapDir::new(&[("rules.yaml", &broken)]);
    let mut daemon = Daemon::start(cm.path(), scene.name(), &[]);
    let code = daemon.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(2), "exit code\n{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("not starting"), "{log}");
    assert!(
        log.contains("rules.yaml:"),
        "names file and position: {log}"
    );
    assert!(log.contains("interval"), "names the field: {log}");
    assert!(log.contains("expr"), "reports every error: {log}");
}

/// A reload reads and validates the rules off the controller loop: while a rule file blocks
/// the read (a FIFO with no writer yet, as a stuck network volume would), pod events and
/// evaluations keep being decided and written; the reload completes once the file can be read.
#[tokio::test]
async fn a_reload_blocked_on_reading_a_file_does_not_stall_the_decisions() {
    let scene = Scene::new("reload-blocked").await;
    let dir = tempfile::tempdir().expect("rules dir");
    std::fs::write(dir.path().join("rules.yaml"), rules("100")).expect("write rules");
    let daemon = Daemon::start(dir.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(50))
        .await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    let series = "podgate_config_reloads_total{result=\"success\"}";
    assert_eq!(daemon.metric(series).await, Some(1.0));

    // A rule file whose read blocks until someone writes to it; the directory watch sees it
    // appear and starts a reload, which now waits on that read.
    let fifo = dir.path().join("zz-blocked.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("running mkfifo");
    assert!(made.success(), "mkfifo {}", fifo.display());
    tokio::time::sleep(Duration::from_secs(1)).await;

    // The pod turns bad: the decision is taken and written while the reload is stuck.
    ep.set_body(queue(500));
    let g = scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    assert!(g.message.contains("queue=500 >= 100"), "{g:?}");
    assert_eq!(
        daemon.metric(series).await,
        Some(1.0),
        "the reload is still waiting"
    );

    // The file becomes readable: the reload finishes and is applied.
    let writer = std::thread::spawn(move || std::fs::write(&fifo, "rules: []\n"));
    daemon.wait_metric(series, 2.0).await;
    writer
        .join()
        .expect("the FIFO writer thread")
        .expect("writing the FIFO");
}

/// `rules(limit)` plus `extra` rules that own gates no pod declares, so the set is as large
/// as the rule limit allows; `generation` changes what each extra rule says, so every load is
/// a different set.
fn a_thousand_rules(limit: &str, generation: u32) -> String {
    let mut text = rules(limit);
    for i in 0..998 {
        text.push_str(&format!(
            r#"  - name: filler-{i}
    conditionType: podgate.dev/filler-{i}
    interval: 1s
    timeout: 500ms
    scrape: {{port: metrics}}
    vars:
      queue: {{scrape: 'max(work_queue_depth)'}}
    expr: 'queue < {}'
"#,
            1000 + generation
        ));
    }
    text
}

/// A reload of a 1,000-rule set while a pod is being evaluated: an evaluation is neither
/// lost nor counted twice across it (rule `queue` turns False on exactly its 5th failure in
/// a row, the reload in the middle of the streak), and pod events keep being handled: a pod
/// created right after the reload gets its gate. The loop reports its turns by event.
#[tokio::test]
async fn a_thousand_rule_reload_neither_loses_nor_double_counts_an_evaluation() {
    let five = |generation| {
        a_thousand_rules("100", generation).replacen(
            "failureThreshold: 1",
            "failureThreshold: 5",
            1,
        )
    };
    let scene = Scene::new("reload-thousand").await;
    let mut cm = ConfigMapDir::new(&[("rules.yaml", &five(0))]);
    let daemon = Daemon::start(cm.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    assert_eq!(daemon.metric("podgate_rules_loaded").await, Some(1000.0));
    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(1))
        .await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    let fails = || async {
        daemon
            .sum(
                "podgate_evaluations_total",
                &[("rule", "queue"), ("result", "fail")],
            )
            .await
    };
    ep.set_body(queue(500));
    support::wait_for("two failures", Duration::from_secs(20), || async {
        let n = fails().await;
        if n >= 2.0 { Ok(n) } else { Err(n) }
    })
    .await;
    cm.update(&[("rules.yaml", &five(1))]);
    let reloads = "podgate_config_reloads_total{result=\"success\"}";
    daemon.wait_metric(reloads, 2.0).await;
    let at_reload = fails().await;
    assert!(
        at_reload < 5.0,
        "the reload came too late to tell: {at_reload} failures already"
    );
    // Pod events flow right after the big reload.
    let _late = scene
        .running_pod(TestPod::new("late").gate(GATE), &queue(1))
        .await;

    // Watch closely for the flip: it must come on the 5th failure, not before (a result
    // counted twice) and not after (a result lost, or a streak restarted by the reload).
    let flipped_at = support::wait_for("web False", Duration::from_secs(30), || async {
        // The gate first: the count read after it includes the evaluation that flipped it.
        let gate = scene.gate("web", GATE).await;
        let n = fails().await;
        match gate {
            Some(g) if g.status == "False" => Ok(n),
            other => Err((n, other)),
        }
    })
    .await;
    assert!(
        flipped_at >= 5.0,
        "False after only {flipped_at} failures: an evaluation counted twice"
    );
    assert!(
        flipped_at < at_reload + 5.0,
        "False after {flipped_at} failures, {at_reload} of them before the reload: the \
         streak restarted or an evaluation was lost"
    );
    scene
        .wait_gate("late", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    for event in ["pod", "result", "reload"] {
        let turns = daemon
            .sum(
                "podgate_controller_turn_duration_seconds_count",
                &[("event", event)],
            )
            .await;
        assert!(turns >= 1.0, "no {event} turn counted");
    }
    // For the record (docs/reliability.md), not asserted: what putting the set in force cost.
    let took = daemon
        .sum(
            "podgate_controller_turn_duration_seconds_sum",
            &[("event", "reload")],
        )
        .await;
    eprintln!("reload turns: {took:.4} s in total");
}
