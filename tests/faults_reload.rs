//! `podgate run` when its rules directory goes bad under it: emptied, a rule file made
//! unreadable, replaced by a dangling symlink, filled with bytes that are not UTF-8 or text
//! that is not YAML. Every time the old rules keep deciding, and the failure shows in the
//! log, in the reload metrics and on `/readyz`; a fixed directory is picked up again.

use crate::support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use support::TestPod;
use support::daemon::{Daemon, rules_dir};
use support::scene::Scene;
use support::{RuleYaml, queue};

const GATE: &str = "podgate.dev/reload-fault";

fn rules(limit: u32) -> String {
    RuleYaml::queue(GATE).limit(limit).file()
}

/// Whether this process can be denied a read by file permissions (root cannot).
fn permissions_apply() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() != 0)
}

/// Removes whatever `path` is (file, directory, symlink).
fn remove(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path).expect("remove dir"),
        Ok(_) => std::fs::remove_file(path).expect("remove file"),
        Err(_) => {}
    }
}

/// A way to break the rules file: its name, what it does to the file, and what the log and
/// `/readyz` must then say.
type Fault = (&'static str, Box<dyn Fn(&Path)>, &'static [&'static str]);

#[tokio::test]
async fn a_broken_rules_directory_keeps_the_old_rules_and_says_so_everywhere() {
    let scene = Scene::new("reload-faults").await;
    let dir = rules_dir(&rules(100));
    let file = dir.path().join("rules.yaml");
    let daemon = Daemon::start(dir.path(), scene.name(), &[]);
    daemon.wait_ready().await;
    let ep = scene
        .running_pod(TestPod::new("web").gate(GATE), &queue(50))
        .await;
    scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;

    let unreadable: Fault = if permissions_apply() {
        (
            "unreadable file",
            Box::new(|p: &Path| {
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o000))
                    .expect("chmod 000");
            }),
            &["rules.yaml", "cannot read", "ermission denied"],
        )
    } else {
        // Root reads through chmod 000: a directory where the file was cannot be read by
        // anyone.
        (
            "rule file replaced by a directory",
            Box::new(|p: &Path| {
                remove(p);
                std::fs::create_dir(p).expect("mkdir");
            }),
            &["rules.yaml", "cannot read", "s a directory"],
        )
    };
    let faults: Vec<Fault> = vec![
        (
            "emptied directory",
            Box::new(remove),
            &["no *.yaml rule files", "keeping the 1 rule(s) in force"],
        ),
        unreadable,
        (
            "dangling symlink",
            Box::new(|p: &Path| {
                remove(p);
                std::os::unix::fs::symlink("gone.yaml", p).expect("symlink");
            }),
            &["no *.yaml rule files"],
        ),
        (
            "not UTF-8",
            Box::new(|p: &Path| {
                std::fs::write(p, b"rules:\n  - name: \xff\xfe\x00\x01\n").expect("write");
            }),
            &["rules.yaml", "not valid UTF-8"],
        ),
        (
            "not YAML",
            Box::new(|p: &Path| {
                std::fs::write(p, "rules: [\n  {name: queue, conditionType: \"\n").expect("write");
            }),
            &["rules.yaml:"],
        ),
        (
            "not rules",
            Box::new(|p: &Path| {
                std::fs::write(p, "<html><body>502 Bad Gateway</body></html>\n").expect("write");
            }),
            &["rules.yaml:1:1"],
        ),
    ];

    let mut failures = 0.0;
    let mut depth_fails = true;
    for (what, break_it, needles) in faults {
        break_it(&file);
        failures += 1.0;
        daemon
            .wait_metric("podgate_config_reloads_total{result=\"failure\"}", failures)
            .await;
        assert_eq!(
            daemon.metric("podgate_config_last_reload_successful").await,
            Some(0.0),
            "{what}"
        );
        assert_eq!(
            daemon.metric("podgate_rules_loaded").await,
            Some(1.0),
            "{what}"
        );
        let (status, body) = daemon.readyz().await;
        assert_eq!(status, 200, "{what}: the old rules still serve: {body}");
        assert!(body.contains("last reload rejected"), "{what}: {body}");
        let log = daemon.log();
        assert!(
            log.contains("rules rejected"),
            "{what}: {}",
            daemon.log_tail(20)
        );
        for needle in needles {
            assert!(
                body.contains(needle),
                "{what}: /readyz should say {needle:?}: {body}"
            );
            assert!(
                log.contains(needle),
                "{what}: the log should say {needle:?}:\n{}",
                daemon.log_tail(20)
            );
        }

        // The old rule (queue < 100) still decides, both ways.
        let (depth, status, reason) = if depth_fails {
            (500, "False", "MetricsUnhealthy")
        } else {
            (50, "True", "MetricsHealthy")
        };
        depth_fails = !depth_fails;
        ep.set_body(queue(depth));
        let g = scene.wait_gate("web", GATE, status, reason, &daemon).await;
        assert!(
            g.message.contains(&format!("queue={depth}")),
            "{what}: {g:?}"
        );

        // Fixed: accepted again, /readyz forgets the rejection.
        remove(&file);
        std::fs::write(&file, rules(100)).expect("restore rules");
        daemon
            .wait_metric("podgate_config_last_reload_successful", 1.0)
            .await;
        let (_, body) = daemon.readyz().await;
        assert!(!body.contains("rejected"), "{what}: {body}");
    }
    // Every fault was one failed reload, no more.
    assert_eq!(
        daemon
            .metric("podgate_config_reloads_total{result=\"failure\"}")
            .await,
        Some(failures)
    );
}
