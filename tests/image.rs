//! podgate's container image as `scripts/image` builds it (buildah, from scratch): its binary
//! runs from the image's own root filesystem — read-only, as the image's non-root user, with
//! nothing from the host — as `podgate run` against the test control plane, answers `/readyz`
//! and sets a gate. Containers cannot be started on the test machines (crun may not set
//! rlimits there), so the root filesystem is entered with chroot, as a runtime would after
//! unpacking the image and mounting the pod's volumes. And the Dockerfile builds the same
//! image: same cargo flags, files, user, ports and entrypoint.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use support::daemon::Daemon;
use support::manifests::{repo, script_path};
use support::scene::Scene;
use support::{ControlPlane, TestPod};

const GATE: &str = "podgate.dev/image-healthy";
/// The image's user, as deploy/ sets it in runAsUser and runAsGroup.
const USER: &str = "65532:65532";
/// Where the pod's volumes appear inside the root filesystem (the kubeconfig stands in for the
/// in-cluster service account files).
const KUBECONFIG_IN_ROOT: &str = "/etc/podgate/kubeconfig";
const RULES_IN_ROOT: &str = "/etc/podgate/rules";

const RULES: &str = r#"
rules:
  - name: image
    conditionType: podgate.dev/image-healthy
    interval: 1s
    timeout: 500ms
    onNoData: fail
    scrape: {port: metrics}
    vars:
      queue: {scrape: 'max(work_queue_depth)'}
    expr: 'queue < 100'
"#;

/// The directory of the image `scripts/image build` built (or found cached).
fn image_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| script_path("image", "build"))
}

/// Every file and symlink under `root`, as absolute paths inside it.
fn files_under(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() && !path.is_symlink() {
                dirs.push(path);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.insert(format!("/{}", rel.display()));
            }
        }
    }
    out
}

/// A writable copy of the image's root filesystem with the pod's volumes in place (the
/// kubeconfig and the rules), each readable by the image's user.
fn root_with_volumes(rules: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("root dir");
    let status = Command::new("cp")
        .arg("-a")
        .arg(image_dir().join("rootfs/."))
        .arg(root.path())
        .status()
        .expect("cp -a rootfs");
    assert!(status.success(), "copying the image's root filesystem");
    let inside = |p: &str| root.path().join(p.trim_start_matches('/'));
    std::fs::create_dir_all(inside(RULES_IN_ROOT)).expect("rules dir");
    std::fs::write(inside(RULES_IN_ROOT).join("image.yaml"), rules).expect("rules");
    std::fs::copy(
        ControlPlane::get().podgate_kubeconfig_path(),
        inside(KUBECONFIG_IN_ROOT),
    )
    .expect("kubeconfig");
    let status = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(inside("/etc/podgate"))
        .arg(root.path())
        .status()
        .expect("chmod");
    assert!(status.success(), "chmod the volumes");
    root
}

/// `podgate` from the image: in a mount namespace of its own, the root filesystem is bound
/// read-only onto itself, then entered with chroot as the image's user; nothing of the host
/// is visible.
fn launcher(root: &Path) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--",
        "sh",
        "-c",
        r#"root=$1; user=$2; shift 2
mount --bind "$root" "$root" && mount -o remount,bind,ro "$root" &&
exec chroot --userspec="$user" "$root" /usr/local/bin/podgate "$@""#,
        "podgate-image",
    ])
    .arg(root)
    .arg(USER);
    cmd
}

#[tokio::test]
async fn image_binary_runs_from_its_root_filesystem_and_sets_a_gate() {
    let root = root_with_volumes(RULES);
    let scene = Scene::new("image").await;
    let ep = scene
        .running_pod(
            TestPod::new("web").gate(GATE),
            "# TYPE work_queue_depth gauge\nwork_queue_depth 3\n",
        )
        .await;
    let daemon = Daemon::spawn(
        launcher(root.path()),
        Path::new(KUBECONFIG_IN_ROOT),
        Path::new(RULES_IN_ROOT),
        scene.name(),
        &[],
        &[],
    );
    daemon.wait_ready().await;
    let (status, body) = daemon.readyz().await;
    assert_eq!(status, 200, "/readyz: {body}\n{}", daemon.log_tail(20));
    let gate = scene
        .wait_gate("web", GATE, "True", "MetricsHealthy", &daemon)
        .await;
    assert!(gate.message.contains("queue=3 < 100"), "{}", gate.message);
    // It ran as the image's user, in the read-only root: the process says so.
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap_or_default();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap_or_default();
    assert!(
        uid_line.split_whitespace().nth(1) == Some("65532"),
        "{uid_line}"
    );
    let proc_root = std::fs::read_link(format!("/proc/{}/root", daemon.pid())).unwrap_or_default();
    assert_eq!(proc_root, root.path(), "the daemon's root directory");
    drop(ep);
}

/// The image holds the binary, the CA certificates and the user, nothing else; the binary
/// needs nothing from elsewhere (it runs, and is static).
#[test]
fn image_holds_only_the_binary_the_ca_certificates_and_the_user() {
    let rootfs = image_dir().join("rootfs");
    let want: BTreeSet<String> = [
        "/usr/local/bin/podgate",
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/passwd",
        "/etc/group",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(files_under(&rootfs), want);
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("passwd");
    assert!(
        passwd
            .lines()
            .any(|l| l.starts_with("nonroot:x:65532:65532:")),
        "{passwd}"
    );
    // Alone in the chroot, as the user: it prints its version.
    let out = Command::new("chroot")
        .arg(format!("--userspec={USER}"))
        .arg(&rootfs)
        .args(["/usr/local/bin/podgate", "--version"])
        .output()
        .expect("chroot podgate --version");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("podgate"),
        "podgate --version in the image's root: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The final stage of the Dockerfile: (instruction, argument) pairs.
fn dockerfile_final_stage() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let (_, last) = text
        .rsplit_once("\nFROM ")
        .expect("a multi-stage Dockerfile");
    last.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(i, a)| (i.to_string(), a.trim().to_string()))
        .collect()
}

/// The value of `NAME=...` (quoted or `(...)`) in scripts/image.
fn script_value(name: &str) -> String {
    let text = std::fs::read_to_string(repo().join("scripts/image")).expect("scripts/image");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in scripts/image"));
    match line.strip_prefix('(').and_then(|l| l.strip_suffix(')')) {
        Some(array) => array.to_string(),
        None => line.trim_matches('"').to_string(),
    }
}

fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// The Dockerfile and scripts/image build the same image: the same cargo flags and target,
/// the same files at the same paths, user, port, entrypoint and command.
#[test]
fn dockerfile_and_buildah_build_agree() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    // Cargo: the RUSTFLAGS and the build command.
    let rustflags = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ENV RUSTFLAGS="))
        .expect("ENV RUSTFLAGS= in the Dockerfile")
        .trim_matches('"');
    assert_eq!(rustflags, script_value("RUSTFLAGS_STATIC"));
    let target = script_value("RUST_TARGET");
    let script_cargo = format!(
        "cargo {}",
        script_value("CARGO_BUILD_ARGS").replace("\"$RUST_TARGET\"", &target)
    );
    assert!(
        dockerfile
            .lines()
            .any(|l| l.contains(&format!("RUN {script_cargo} "))
                || l.trim_end().ends_with(&format!("RUN {script_cargo}"))),
        "the Dockerfile must run `{script_cargo}` as scripts/image does"
    );

    // The final stage against the built image's configuration and files.
    let stage = dockerfile_final_stage();
    let get = |i: &str| -> Vec<String> {
        stage
            .iter()
            .filter(|(k, _)| k == i)
            .map(|(_, a)| a.clone())
            .collect()
    };
    assert_eq!(get("FROM").len(), 0, "no FROM after the final one");
    assert!(
        dockerfile.contains("\nFROM scratch\n"),
        "the final stage is FROM scratch, as scripts/image builds"
    );
    let config_text =
        std::fs::read_to_string(image_dir().join("config.json")).expect("config.json");
    let config: Value = serde_json::from_str(&config_text).expect("buildah inspect json");
    let oci = &config["OCIv1"]["config"];
    assert_eq!(
        get("USER"),
        vec![oci["User"].as_str().unwrap_or_default().to_string()]
    );
    assert_eq!(get("USER"), vec![USER.to_string()]);
    let entrypoint: Vec<String> = get("ENTRYPOINT")
        .first()
        .and_then(|e| serde_json::from_str(e).ok())
        .expect("ENTRYPOINT [..] in exec form");
    assert_eq!(entrypoint, json_strings(&oci["Entrypoint"]));
    let cmd: Vec<String> = get("CMD")
        .first()
        .and_then(|e| serde_json::from_str(e).ok())
        .expect("CMD [..] in exec form");
    assert_eq!(cmd, json_strings(&oci["Cmd"]));
    let ports: BTreeSet<String> = oci["ExposedPorts"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let docker_ports: BTreeSet<String> = get("EXPOSE").iter().map(|p| format!("{p}/tcp")).collect();
    assert_eq!(docker_ports, ports);
    // Every COPY destination is a file of the image, and the image has no other.
    let copied: BTreeSet<String> = get("COPY")
        .iter()
        .filter_map(|a| a.split_whitespace().last().map(str::to_string))
        .collect();
    assert_eq!(copied, files_under(&image_dir().join("rootfs")));
    // The user's passwd and group lines are the same.
    for (name, file) in [("PASSWD_LINE", "etc/passwd"), ("GROUP_LINE", "etc/group")] {
        let line = script_value(name);
        assert!(
            dockerfile.contains(&format!("printf '{line}\\n'")),
            "the Dockerfile writes {line}"
        );
        let in_image = std::fs::read_to_string(image_dir().join("rootfs").join(file)).expect(file);
        assert_eq!(in_image.trim_end(), line);
    }
}
