//! Judging a pod against its peers, on the real rollout machinery (the Deployment, ReplicaSet
//! and EndpointSlice controllers, the stand-in kubelet computing `Ready`): a new version worse
//! than the stable one is held, a failure every pod shares holds nobody, an outlier in a stable
//! fleet is taken out alone, and a startup-only gate stays True through a later breach and a
//! podgate restart.
//!
//! These run only inside the network namespace `scripts/test` creates (the stand-in pod
//! network); elsewhere they fail and say so.

use crate::rollout::{
    APP, GATE, REPLICAS, StandInApp, gate_is, held, roll_to_v2, wait_v1, wait_v2_complete,
};
use crate::support;

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;

use support::daemon::Daemon;
use support::fleet::{Check, ROLLOUT_TIMEOUT, RolloutView, Traffic};
use support::scene::gate_of_pod;
use support::wait_for;

/// A rule of the rollout gate over the pods' own request counters (10 s windows, 2 s
/// interval), with `vars` added to `errors` and `requests`.
fn rule(name: &str, extra: &str, vars: &str, expr: &str) -> String {
    format!(
        r#"rules:
  - name: {name}
    conditionType: {GATE}
    interval: 2s
    timeout: 1s
    failureThreshold: 1
    onNoData: fail
    onError: fail
{extra}    scrape: {{port: metrics}}
    vars:
      errors:   {{scrape: 'sum(rate(http_requests_total{{code=~"5.."}}[10s]))'}}
      requests: {{scrape: 'sum(rate(http_requests_total[10s]))'}}
{vars}    expr: '{expr}'
"#
    )
}

/// No worse than twice the baseline's pooled error ratio. Three passes in a row let a pod in,
/// so one evaluation that misses its baseline (a peer late on a busy machine) cannot.
fn baseline_rule() -> String {
    rule(
        "web-vs-baseline",
        "    successThreshold: 3\n",
        "      base_errors:   {peers: {var: errors, aggregate: mean, of: baseline}}\n      \
         base_requests: {peers: {var: requests, aggregate: mean, of: baseline}}\n",
        "requests == 0 || isnan(base_errors) || isnan(base_requests) || base_requests == 0 \
         || errors / requests <= 2 * base_errors / base_requests",
    )
}

/// The pod names of `v`'s pods whose gate is False, with their version.
fn false_gates(v: &RolloutView) -> Vec<String> {
    v.pods
        .iter()
        .filter(|p| gate_is(p, "False"))
        .map(|p| format!("{} ({})", p.name, p.version))
        .collect()
}

async fn gate_message(app: &StandInApp, pod: &str) -> String {
    let p = app
        .rollout()
        .pods()
        .get(pod)
        .await
        .unwrap_or_else(|e| panic!("reading pod {pod}: {e}"));
    gate_of_pod(&p, GATE)
        .map(|g| format!("{} {}: {}", g.status, g.reason, g.message))
        .unwrap_or_default()
}

/// `podgate eval --pod` on `pod`: its output and exit code.
async fn eval_pod(app: &StandInApp, rule: &str, pod: &str) -> (String, Option<i32>) {
    let rules = app.rules.path().to_path_buf();
    let kubeconfig = app.cp.podgate_kubeconfig_path().to_path_buf();
    let target = format!("{}/{pod}", app.scene.name());
    let rule = rule.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_podgate"))
            .args(["eval", "--rule", &rule, "--rules-dir"])
            .arg(&rules)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--pod")
            .arg(&target)
            .output()
    })
    .await
    .unwrap_or_else(|e| panic!("podgate eval: {e}"))
    .unwrap_or_else(|e| panic!("podgate eval: {e}"));
    (
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        out.status.code(),
    )
}

/// Issue 18, test 1: the stable pods fail 5% of their requests; v2 fails 15%, three times as
/// many. Its gate stays False (against "baseline mean of errors over 3 pods of revision …")
/// and the rollout is held, checked at every poll, for twenty seconds; `podgate eval --pod`
/// lists the three baseline values it used. Healed to 5%, v2 rolls out.
#[tokio::test]
async fn a_version_three_times_worse_than_its_baseline_is_held() {
    let traffic = Traffic::new();
    traffic.set_error_ratio("v1", 0.05);
    traffic.set_error_ratio("v2", 0.15);
    let app = StandInApp::start("peers-baseline", &baseline_rule(), traffic).await;
    let rollout = app.rollout();
    wait_v1(&rollout, &app.daemon, &app.fleet).await;
    roll_to_v2(&rollout).await;

    let new_pod = rollout
        .wait(
            "the v2 pod gated False against its baseline",
            ROLLOUT_TIMEOUT,
            &app.daemon,
            Some(&app.fleet),
            |v| {
                if let Err(why) = held(v) {
                    return Check::Fail(why);
                }
                match v.pods_of("v2").first() {
                    Some(p) if gate_is(p, "False") => Check::Done(p.name.clone()),
                    other => Check::Wait(format!("v2 pod: {other:?}")),
                }
            },
        )
        .await;
    let message = wait_for(
        "the v2 pod's message naming its baseline",
        ROLLOUT_TIMEOUT,
        || async {
            let m = gate_message(&app, &new_pod).await;
            if m.starts_with("False MetricsUnhealthy")
                && m.contains("is the baseline mean of errors over 3 pods of revision ")
            {
                Ok(m)
            } else {
                Err(m)
            }
        },
    )
    .await;
    eprintln!("held: {message}");

    // Held, at every poll, for a while.
    rollout
        .hold(
            "twenty seconds of a held rollout",
            Duration::from_secs(20),
            &app.daemon,
            Some(&app.fleet),
            held,
        )
        .await;

    // The operator's view of the same verdict, with every baseline value.
    let (out, code) = eval_pod(&app, "web-vs-baseline", &new_pod).await;
    assert_eq!(code, Some(1), "eval of the held pod fails:\n{out}");
    let view = rollout
        .view()
        .await
        .unwrap_or_else(|e| panic!("reading the rollout: {e}"));
    for old in view.pods_of("v1") {
        assert!(
            out.lines()
                .any(|l| l.contains(&old.name) && l.contains("errors = ")),
            "eval lists {}'s errors:\n{out}",
            old.name
        );
    }
    assert!(out.contains("peers of Deployment/web"), "{out}");

    app.traffic.set_error_ratio("v2", 0.05);
    wait_v2_complete(&rollout, &app.daemon, &app.fleet, |_| Ok(())).await;
}

/// Issue 18, test 2: a shared dependency fails and every pod's errors rise to 30% together.
/// No pod is taken out, and the rollout to v2 (30% as well) proceeds: relative to its
/// baseline, v2 is no worse. Checked at every poll: no v1 pod's gate is ever False.
#[tokio::test]
async fn when_every_pods_errors_rise_together_the_rollout_proceeds_and_nobody_is_taken_out() {
    let traffic = Traffic::new();
    traffic.set_error_ratio("v1", 0.02);
    let app = StandInApp::start("peers-shared", &baseline_rule(), traffic).await;
    let rollout = app.rollout();
    wait_v1(&rollout, &app.daemon, &app.fleet).await;

    // The dependency fails: every pod's ratio rises to 30%, the next version's too. The
    // windows (10 s) fill with it before the rollout starts.
    app.traffic.set_error_ratio("v1", 0.3);
    app.traffic.set_error_ratio("v2", 0.3);
    let no_v1_out = |v: &RolloutView| -> Result<(), String> {
        let out: Vec<String> = v
            .pods_of("v1")
            .iter()
            .filter(|p| gate_is(p, "False"))
            .map(|p| p.name.clone())
            .collect();
        if out.is_empty() {
            Ok(())
        } else {
            Err(format!("v1 pods taken out: {out:?}"))
        }
    };
    rollout
        .hold(
            "the windows to fill with the shared failure",
            Duration::from_secs(14),
            &app.daemon,
            Some(&app.fleet),
            no_v1_out,
        )
        .await;

    roll_to_v2(&rollout).await;
    wait_v2_complete(&rollout, &app.daemon, &app.fleet, no_v1_out).await;
    let unhealthy = app
        .daemon
        .sum(
            "podgate_gate_transitions_total",
            &[
                ("rule", "web-vs-baseline"),
                ("status", "False"),
                ("reason", "MetricsUnhealthy"),
            ],
        )
        .await;
    assert_eq!(
        unhealthy,
        0.0,
        "no pod was ever judged unhealthy\n{}",
        app.daemon.log_tail(40)
    );
}

/// Issue 18, test 3: in a stable fleet (5% errors, 1 error/s each), one pod starts failing half
/// its requests. Its errors are far above the others' mean plus three standard deviations: its
/// gate goes False and it leaves the Service's ready endpoints; no other pod's gate is False
/// at any poll. Healed, it comes back.
#[tokio::test]
async fn an_outlier_pod_in_a_stable_fleet_alone_goes_false() {
    let rules = rule(
        "web-outliers",
        "    maxUnavailable: 1\n",
        "      peer_mean:   {peers: {var: errors, aggregate: mean, minPeers: 2}}\n      \
         peer_stddev: {peers: {var: errors, aggregate: stddev, minPeers: 2}}\n",
        "isnan(peer_mean) || errors <= peer_mean + 3 * peer_stddev + 1",
    );
    let traffic = Traffic::new();
    traffic.set_error_ratio("v1", 0.05);
    let app = StandInApp::start("peers-outlier", &rules, traffic).await;
    let rollout = app.rollout();
    wait_v1(&rollout, &app.daemon, &app.fleet).await;
    let view = rollout
        .view()
        .await
        .unwrap_or_else(|e| panic!("reading the rollout: {e}"));
    let outlier = view.pods_of("v1")[0].name.clone();

    app.traffic.set_pod_error_ratio(&outlier, Some(0.5));
    let only_the_outlier = |v: &RolloutView| -> Result<(), String> {
        match false_gates(v).as_slice() {
            [] => Ok(()),
            [one] if one.starts_with(&outlier) => Ok(()),
            others => Err(format!("gates False besides {outlier}: {others:?}")),
        }
    };
    rollout
        .wait(
            "the outlier's gate False and its endpoint not ready",
            ROLLOUT_TIMEOUT,
            &app.daemon,
            Some(&app.fleet),
            |v| {
                if let Err(why) = only_the_outlier(v) {
                    return Check::Fail(why);
                }
                let out = v
                    .pods
                    .iter()
                    .any(|p| p.name == outlier && gate_is(p, "False"));
                let endpoint = v.endpoint(&outlier).and_then(|e| e.ready);
                if out && endpoint == Some(false) {
                    Check::Done(())
                } else {
                    Check::Wait(format!(
                        "outlier gate False {out}, endpoint ready {endpoint:?}"
                    ))
                }
            },
        )
        .await;
    let m = gate_message(&app, &outlier).await;
    assert!(
        m.starts_with("False MetricsUnhealthy")
            && m.contains("is the mean of errors over 2 pods in Deployment/web"),
        "{m}"
    );
    // The others stay in for a while longer.
    rollout
        .hold(
            "ten seconds with only the outlier out",
            Duration::from_secs(10),
            &app.daemon,
            Some(&app.fleet),
            only_the_outlier,
        )
        .await;

    app.traffic.set_pod_error_ratio(&outlier, None);
    rollout
        .wait(
            "the healed pod back in",
            ROLLOUT_TIMEOUT,
            &app.daemon,
            Some(&app.fleet),
            |v| {
                if v.pods.iter().all(|p| gate_is(p, "True")) && v.pods.len() == REPLICAS {
                    Check::Done(())
                } else {
                    Check::Wait(format!("False: {:?}", false_gates(v)))
                }
            },
        )
        .await;
}

/// How many (pod, rule) pairs the daemon counts as startup rules done with their pod.
async fn startup_done(daemon: &Daemon) -> f64 {
    daemon
        .sum(
            "podgate_pods_by_mode",
            &[("mode", "startup"), ("state", "done")],
        )
        .await
}

async fn evaluations(daemon: &Daemon) -> f64 {
    daemon
        .sum("podgate_evaluations_total", &[("rule", "web-startup")])
        .await
}

/// Issue 18, test 4: a `mode: startup` gate lets each pod in once and then leaves it alone:
/// every request failing later changes nothing, neither does a podgate restart (the new
/// podgate reads the True gates as done and never evaluates those pods). A pod created during
/// the breach is still gated by it.
#[tokio::test]
async fn a_startup_gate_stays_true_through_a_breach_and_a_restart() {
    let rules = rule(
        "web-startup",
        "    mode: startup\n",
        "",
        "errors / requests < 0.1",
    );
    let mut app = StandInApp::start("peers-startup", &rules, Traffic::new()).await;
    let rollout = app.rollout();
    wait_v1(&rollout, &app.daemon, &app.fleet).await;
    wait_for(
        "podgate_pods_by_mode{mode=\"startup\",state=\"done\"} 3",
        Duration::from_secs(30),
        || async {
            match startup_done(&app.daemon).await {
                n if n == REPLICAS as f64 => Ok(()),
                n => Err(n),
            }
        },
    )
    .await;
    let before = evaluations(&app.daemon).await;

    // Every request fails from now on: a continuous rule would take every pod out.
    app.traffic.set_error_ratio("v1", 1.0);
    let all_true = |v: &RolloutView| -> Result<(), String> {
        if v.pods_of("v1").iter().all(|p| gate_is(p, "True")) {
            Ok(())
        } else {
            Err(format!("a pod let in was taken out: {:?}", false_gates(v)))
        }
    };
    rollout
        .hold(
            "sixteen seconds of breach, the gates still True",
            Duration::from_secs(16),
            &app.daemon,
            Some(&app.fleet),
            all_true,
        )
        .await;
    assert_eq!(
        evaluations(&app.daemon).await,
        before,
        "the pods let in are no longer evaluated"
    );

    // A restart: the new podgate finds the gates True and is done with those pods at once.
    app.daemon.stop();
    app.daemon = Daemon::start(app.rules.path(), app.scene.name(), &[]);
    app.daemon.wait_ready().await;
    rollout
        .hold(
            "ten seconds after the restart, the gates still True",
            Duration::from_secs(10),
            &app.daemon,
            Some(&app.fleet),
            all_true,
        )
        .await;
    assert_eq!(startup_done(&app.daemon).await, REPLICAS as f64);
    assert_eq!(evaluations(&app.daemon).await, 0.0, "nothing re-evaluated");
    assert_eq!(app.daemon.writes_ok().await, 0.0, "nothing rewritten");

    // A new pod meets the breach: the startup gate keeps it out.
    rollout
        .deployments()
        .patch(
            APP,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": REPLICAS + 1 } })),
        )
        .await
        .unwrap_or_else(|e| panic!("scaling {APP}: {e}"));
    let new_pod = rollout
        .wait(
            "the new pod gated False",
            ROLLOUT_TIMEOUT,
            &app.daemon,
            Some(&app.fleet),
            |v| {
                let trues = v.pods.iter().filter(|p| gate_is(p, "True")).count();
                let out: Vec<&str> = v
                    .pods
                    .iter()
                    .filter(|p| gate_is(p, "False"))
                    .map(|p| p.name.as_str())
                    .collect();
                match out.as_slice() {
                    [one] if trues == REPLICAS => Check::Done(one.to_string()),
                    _ => Check::Wait(format!("False {out:?}, {trues} True")),
                }
            },
        )
        .await;
    wait_for(
        "the new pod kept out for its errors",
        ROLLOUT_TIMEOUT,
        || async {
            let m = gate_message(&app, &new_pod).await;
            if m.starts_with("False MetricsUnhealthy") {
                Ok(())
            } else {
                Err(m)
            }
        },
    )
    .await;
}
