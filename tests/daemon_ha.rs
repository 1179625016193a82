//! `podgate run` in its two availability modes: replicas with leader election on a Lease
//! (only the leader writes; a standby takes over on SIGTERM at once and on SIGKILL within the
//! lease duration), and node-local mode (only the pods of one node).

use crate::support;

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams};
use support::daemon::{Daemon, rules_dir};
use support::scene::Scene;
use support::{MetricsEndpoint, TestPod, unique_loopback_ip, unique_suffix};
use support::{RuleYaml, queue};

const GATE: &str = "podgate.dev/ha-healthy";
const LEASE_DURATION: Duration = Duration::from_secs(5);

fn rules() -> String {
    RuleYaml::queue(GATE).file()
}

/// SIGTERM on another thread (the test's endpoints must keep answering meanwhile); returns
/// the daemon and how long it took to exit.
async fn stop(mut daemon: Daemon) -> (Daemon, Duration) {
    tokio::task::spawn_blocking(move || {
        let took = daemon.stop();
        (daemon, took)
    })
    .await
    .unwrap_or_else(|e| panic!("stopping the daemon: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_writes_and_a_standby_takes_over_on_sigterm_and_sigkill() {
    let scene = Scene::new("leader").await;
    let lease = format!("itest-{}", unique_suffix());
    let rules = rules_dir(&rules());
    let flags = [
        "--leader-election",
        "--lease-name",
        &lease,
        "--lease-duration",
        "5s",
    ];
    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(1))
        .await;

    let a = Daemon::start(rules.path(), scene.name(), &flags);
    a.wait_ready().await;
    a.wait_leader(1.0, Duration::from_secs(20)).await;
    let b = Daemon::start(rules.path(), scene.name(), &flags);
    b.wait_ready().await;

    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &a)
        .await;
    // The standby decides too (it is ready to take over), but writes nothing.
    support::wait_for("the standby evaluates", Duration::from_secs(20), || async {
        let n = b.sum("podgate_evaluations_total", &[]).await;
        if n >= 3.0 { Ok(()) } else { Err(n) }
    })
    .await;
    assert_eq!(a.metric("podgate_leader").await, Some(1.0));
    assert_eq!(b.metric("podgate_leader").await, Some(0.0));
    assert!(a.writes_ok().await >= 1.0);
    assert_eq!(b.sum("podgate_kube_writes_total", &[]).await, 0.0);

    // SIGTERM: the leader exits promptly and releases the lease; the standby takes over
    // without waiting for it to expire.
    let (a, took) = stop(a).await;
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} to exit\n{}",
        a.log_tail(30)
    );
    assert!(a.log().contains("lease released"), "{}", a.log_tail(30));
    let handover = b.wait_leader(1.0, Duration::from_secs(20)).await;
    assert!(
        handover < LEASE_DURATION,
        "released lease taken over after {handover:?}"
    );
    // The new leader maintains the gate: a transition after the handover is written.
    ep.set_body(queue(500));
    let g = scene
        .wait_gate("web", GATE, "False", "MetricsUnhealthy", &b)
        .await;
    assert!(g.message.contains("queue=500 >= 100"), "{g:?}");
    assert!(b.writes_ok().await >= 1.0);

    // SIGKILL: no release; a new standby takes over once the lease runs out.
    let c = Daemon::start(rules.path(), scene.name(), &flags);
    c.wait_ready().await;
    support::wait_for("c evaluates", Duration::from_secs(20), || async {
        let n = c.sum("podgate_evaluations_total", &[]).await;
        if n >= 2.0 { Ok(()) } else { Err(n) }
    })
    .await;
    assert_eq!(c.metric("podgate_leader").await, Some(0.0));
    let mut b = b;
    b.kill();
    // The pod recovers while nobody leads: the standby decides now and writes once it leads.
    ep.set_body(queue(2));
    let takeover = c.wait_leader(1.0, Duration::from_secs(30)).await;
    eprintln!("SIGTERM exit {took:?}, handover {handover:?}, takeover after SIGKILL {takeover:?}");
    // The lease was renewed at most LEASE_DURATION before the kill; allow the standby one
    // retry period on top to notice.
    assert!(
        takeover < LEASE_DURATION + Duration::from_secs(3),
        "takeover after SIGKILL took {takeover:?} (lease duration {LEASE_DURATION:?})\n{}",
        c.log_tail(30)
    );
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &c)
        .await;
    assert!(c.writes_ok().await >= 1.0);

    drop(c);
    let leases: Api<Lease> = Api::namespaced(scene.admin.clone(), "podgate");
    let _ = leases.delete(&lease, &DeleteParams::default()).await;
}

#[tokio::test]
async fn node_local_mode_touches_only_the_pods_of_its_node() {
    let scene = Scene::new("node-local").await;
    let here = format!("node-a-{}", unique_suffix());
    let there = format!("node-b-{}", unique_suffix());
    let rules = rules_dir(&rules());
    let daemon = Daemon::start(
        rules.path(),
        scene.name(),
        &["--node-local", "--node-name", &here],
    );
    daemon.wait_ready().await;
    let local = scene
        .running_pod(TestPod::new("local").gate(GATE).node(&here), &queue(1))
        .await;
    let remote = scene
        .running_pod(TestPod::new("remote").gate(GATE).node(&there), &queue(500))
        .await;
    let remote_rv = scene.resource_version("remote").await;

    scene
        .wait_gate("local", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    local.set_body(queue(500));
    scene
        .wait_gate("local", GATE, "False", "MetricsUnhealthy", &daemon)
        .await;
    // Give the other node's pod the same chances: still untouched, never even scraped.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(scene.resource_version("remote").await, remote_rv);
    assert_eq!(scene.gate("remote", GATE).await, None);
    assert_eq!(remote.requests(), 0, "the other node's pod was scraped");
    support::wait_for("one pod tracked", Duration::from_secs(15), || async {
        match daemon.metric("podgate_pods_tracked").await {
            Some(1.0) => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(daemon.metric("podgate_leader").await, Some(1.0));
}

#[tokio::test]
async fn node_local_needs_a_node_name_and_excludes_leader_election() {
    let rules = rules_dir(&rules());
    for (flags, needle) in [
        (&["--node-local"][..], "--node-name"),
        (
            &["--node-local", "--node-name", "n1", "--leader-election"][..],
            "exclude each other",
        ),
    ] {
        let mut daemon = Daemon::start(rules.path(), "default", flags);
        let code = daemon.wait_exit(Duration::from_secs(20));
        assert_eq!(code, Some(64), "{flags:?}: usage error\n{}", daemon.log());
        assert!(daemon.log().contains(needle), "{flags:?}: {}", daemon.log());
    }
}

/// Pods come and go in waves while a leader, a standby and a dry-run replica watch them: the
/// replicas that may not write hold no desired conditions at all (`podgate_writer_pending`
/// stays 0) and track only the live pods. When the leader dies, the standby takes over and
/// writes exactly the live gates whose decision changed meanwhile: one write each, none for a
/// pod that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_that_may_not_write_hold_nothing_through_pod_churn_and_resync_on_leading() {
    const WAVES: usize = 4;
    const PER_WAVE: usize = 500;
    const LIVE: usize = 5;
    let scene = Scene::new("churn").await;
    let lease = format!("itest-{}", unique_suffix());
    // A longer interval than the other tests: three replicas evaluate 500 pods each.
    let rules = rules_dir(&rules().replace("interval: 1s", "interval: 5s"));
    let flags = [
        "--leader-election",
        "--lease-name",
        &lease,
        "--lease-duration",
        "5s",
    ];
    let mut leader = Daemon::start(rules.path(), scene.name(), &flags);
    leader.wait_ready().await;
    leader.wait_leader(1.0, Duration::from_secs(20)).await;
    let standby = Daemon::start(rules.path(), scene.name(), &flags);
    let dry = Daemon::start(rules.path(), scene.name(), &["--dry-run"]);
    standby.wait_ready().await;
    dry.wait_ready().await;

    let mut live = Vec::new();
    for i in 0..LIVE {
        let name = format!("live-{i}");
        let ep = scene
            .running_pod(TestPod::new(&name).gate(GATE), &queue(1))
            .await;
        live.push((name, ep));
    }
    // The churning pods share two endpoints: half of them pass, half fail, so every replica
    // decides a condition for each.
    let good = MetricsEndpoint::start(unique_loopback_ip()).await;
    good.set_body(queue(1));
    let bad = MetricsEndpoint::start(unique_loopback_ip()).await;
    bad.set_body(queue(500));
    for wave in 0..WAVES {
        let names: Vec<String> = (0..PER_WAVE).map(|i| format!("churn-{wave}-{i}")).collect();
        futures::stream::iter(names.iter().enumerate())
            .for_each_concurrent(16, |(i, name)| {
                let ep = if i % 2 == 0 { &good } else { &bad };
                let scene = &scene;
                async move {
                    TestPod::new(name)
                        .gate(GATE)
                        .port("metrics", ep.port())
                        .create(&scene.pods)
                        .await;
                    scene.kubelet.run(name, ep.ip(), true).await;
                }
            })
            .await;
        let decided = ((wave + 1) * PER_WAVE + LIVE) as f64;
        for d in [&standby, &dry] {
            support::wait_for("every pod decided", Duration::from_secs(120), || async {
                let n = d.sum("podgate_gate_transitions_total", &[]).await;
                if n >= decided { Ok(()) } else { Err(n) }
            })
            .await;
            assert_eq!(d.metric("podgate_writer_pending").await, Some(0.0));
        }
        futures::stream::iter(names.iter())
            .for_each_concurrent(16, |name| support::pods::delete_pod_now(&scene.pods, name))
            .await;
    }
    for d in [&leader, &standby, &dry] {
        support::wait_for(
            "only the live pods tracked",
            Duration::from_secs(60),
            || async {
                match d.metric("podgate_pods_tracked").await {
                    Some(n) if n == LIVE as f64 => Ok(()),
                    other => Err(other),
                }
            },
        )
        .await;
    }
    for d in [&standby, &dry] {
        assert_eq!(d.metric("podgate_writer_pending").await, Some(0.0));
        assert_eq!(d.sum("podgate_kube_writes_total", &[]).await, 0.0);
    }
    for (name, _) in &live {
        scene
            .wait_gate(name, GATE, "True", "MetricsHealthy", &leader)
            .await;
    }

    // The leader dies without releasing the lease; meanwhile the live pods turn bad. The
    // standby decides at once but may not write until the lease runs out.
    leader.kill();
    for (_, ep) in &live {
        ep.set_body(queue(500));
    }
    standby.wait_leader(1.0, Duration::from_secs(30)).await;
    for (name, _) in &live {
        scene
            .wait_gate(name, GATE, "False", "MetricsUnhealthy", &standby)
            .await;
    }
    // Settle: nothing else is due, so the counts below are final.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let writes = |result: &'static str| {
        let standby = &standby;
        async move {
            standby
                .sum("podgate_kube_writes_total", &[("result", result)])
                .await
        }
    };
    assert_eq!(
        writes("ok").await,
        LIVE as f64,
        "one write per changed live gate"
    );
    assert_eq!(writes("gone").await, 0.0, "no request for a deleted pod");
    assert_eq!(writes("unchanged").await, 0.0, "nothing written twice");
    assert_eq!(standby.metric("podgate_writer_pending").await, Some(0.0));

    drop(standby);
    let leases: Api<Lease> = Api::namespaced(scene.admin.clone(), "podgate");
    let _ = leases.delete(&lease, &DeleteParams::default()).await;
}
