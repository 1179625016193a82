//! Reloading the rules directory: a watch on the directory (not the files, so a ConfigMap
//! volume's atomic `..data` symlink swap is seen) plus SIGHUP, both reduced to "look again",
//! and the load of a candidate set that must not remove every rule by accident.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::rules::{RuleSet, RulesError};
use crate::rules_dir::{list_dir, load_dir};

/// How long to wait for a burst of file events to settle before reloading.
pub const SETTLE: Duration = Duration::from_millis(300);

/// Errors a rejected reload lists in its log line and on `/readyz`; the rest are counted.
pub const MAX_REPORTED_ERRORS: usize = 20;

/// Why a reload was refused or a trigger could not be set up; says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("cannot read {}: {source}", .dir.display())]
    ReadDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} has no *.yaml rule files; keeping the {in_force} rule(s) in force",
        .dir.display()
    )]
    Emptied { dir: PathBuf, in_force: usize },
    /// The set is invalid: the first errors with their positions, the rest counted.
    #[error("{}", .0.summary(MAX_REPORTED_ERRORS))]
    Invalid(RulesError),
    /// The blocking load itself failed (it panicked or was cancelled).
    #[error("loading the rules failed: {0}")]
    Aborted(String),
    #[error("cannot watch {}: {source}", .dir.display())]
    Watch {
        dir: PathBuf,
        #[source]
        source: notify::Error,
    },
    #[error("cannot handle SIGHUP: {0}")]
    Signal(#[source] std::io::Error),
}

/// Keeps the directory watch alive; dropping it stops the events.
pub struct DirWatch {
    _watcher: notify::RecommendedWatcher,
}

/// Watches `dir` and sends `()` on every change (coalesced: at most one pending).
pub fn watch_dir(dir: &Path, tx: mpsc::Sender<()>) -> Result<DirWatch, ReloadError> {
    let failed = |source| ReloadError::Watch {
        dir: dir.to_path_buf(),
        source,
    };
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Access events (reads) are noise; everything else may change what a load sees.
        if let Ok(ev) = res
            && !matches!(ev.kind, notify::EventKind::Access(_))
        {
            let _ = tx.try_send(());
        }
    })
    .map_err(failed)?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(failed)?;
    Ok(DirWatch { _watcher: watcher })
}

/// Sends `()` on every SIGHUP.
#[cfg(unix)]
pub fn watch_sighup(tx: mpsc::Sender<()>) -> Result<(), ReloadError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).map_err(ReloadError::Signal)?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let _ = tx.try_send(());
        }
    });
    Ok(())
}

/// Loads `dir` as a candidate to replace `current`. An emptied directory is refused while
/// rules are in force: an unmounted or half-written ConfigMap must not remove every gate's
/// rules (write a file with `rules: []` to really remove them all).
///
/// Blocking (it reads files and validates every rule): call it off the async runtime's
/// workers, e.g. with `tokio::task::spawn_blocking`.
pub fn reload(dir: &Path, in_force: usize) -> Result<RuleSet, ReloadError> {
    let files = list_dir(dir).map_err(|source| ReloadError::ReadDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    if files.is_empty() && in_force > 0 {
        return Err(ReloadError::Emptied {
            dir: dir.to_path_buf(),
            in_force,
        });
    }
    load_dir(dir).map_err(ReloadError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: &str = "rules:\n  - name: r\n    conditionType: example.com/g\n    vars: {x: {scrape: 'x'}}\n    expr: 'x < 1'\n";

    #[test]
    fn emptied_directory_keeps_the_rules_in_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("a.yaml"), RULE).expect("write");
        let first = reload(&path, 0).expect("loads");
        assert_eq!(first.len(), 1);
        std::fs::remove_file(path.join("a.yaml")).expect("rm");
        let e = reload(&path, first.len())
            .expect_err("emptied dir refused")
            .to_string();
        assert!(e.contains("keeping the 1 rule(s)"), "{e}");
        // With nothing in force an empty directory is simply no rules.
        assert!(reload(&path, 0).expect("empty").is_empty());
    }

    #[test]
    fn a_rejected_reload_lists_a_bounded_number_of_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        let mut text = String::from("rules:\n");
        for i in 0..MAX_REPORTED_ERRORS + 5 {
            text.push_str(&format!("  - name: r{i}\n    bogus: 1\n"));
        }
        std::fs::write(path.join("a.yaml"), text).expect("write");
        let e = reload(&path, 0).expect_err("invalid").to_string();
        let listed = e.lines().filter(|l| l.contains("a.yaml:")).count();
        assert_eq!(listed, MAX_REPORTED_ERRORS, "{e}");
        let total = e
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("rule files rejected with "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .expect("the header counts the errors");
        assert!(total > MAX_REPORTED_ERRORS, "{e}");
        assert!(
            e.contains(&format!("and {} more errors", total - MAX_REPORTED_ERRORS)),
            "{e}"
        );
    }

    #[test]
    fn a_rule_file_replaced_by_a_directory_is_an_error_not_a_silent_removal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("a.yaml"), RULE).expect("write");
        std::fs::write(path.join("b.yaml"), RULE.replace("name: r", "name: s")).expect("write");
        let first = reload(&path, 0).expect("loads");
        assert_eq!(first.len(), 2);
        std::fs::remove_file(path.join("b.yaml")).expect("rm");
        std::fs::create_dir(path.join("b.yaml")).expect("mkdir");
        let e = reload(&path, first.len())
            .expect_err("a directory where a rule file was")
            .to_string();
        assert!(e.contains("b.yaml"), "{e}");
        assert!(e.contains("cannot read"), "{e}");
    }

    #[test]
    fn a_dangling_rule_file_link_is_skipped() {
        // What a ConfigMap volume shows for a moment while the kubelet removes a file.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("a.yaml"), RULE).expect("write");
        std::os::unix::fs::symlink("..data/b.yaml", path.join("b.yaml")).expect("link");
        assert_eq!(reload(&path, 0).expect("loads").len(), 1);
    }

    #[test]
    fn invalid_set_is_an_error_with_positions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().to_path_buf();
        std::fs::write(path.join("a.yaml"), "rules:\n  - name: r\n    bogus: 1\n").expect("write");
        let e = reload(&path, 0).expect_err("invalid").to_string();
        assert!(e.contains("a.yaml:3:5"), "{e}");
    }

    #[tokio::test]
    async fn a_configmap_style_symlink_swap_is_seen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let v1 = root.join("..2026_01_01_v1");
        std::fs::create_dir(&v1).expect("mkdir");
        std::fs::write(v1.join("a.yaml"), RULE).expect("write");
        std::os::unix::fs::symlink("..2026_01_01_v1", root.join("..data")).expect("link");
        std::os::unix::fs::symlink("..data/a.yaml", root.join("a.yaml")).expect("link");

        let (tx, mut rx) = mpsc::channel(1);
        let _w = watch_dir(root, tx).expect("watch");
        // The kubelet's swap: new timestamped dir, new link, renamed over ..data.
        let v2 = root.join("..2026_01_01_v2");
        std::fs::create_dir(&v2).expect("mkdir");
        std::fs::write(v2.join("a.yaml"), RULE.replace("x < 1", "x < 2")).expect("write");
        std::os::unix::fs::symlink("..2026_01_01_v2", root.join("..data_tmp")).expect("link");
        std::fs::rename(root.join("..data_tmp"), root.join("..data")).expect("swap");
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert!(matches!(got, Ok(Some(()))), "no event for the ..data swap");
        let set = reload(root, 0).expect("loads");
        assert_eq!(set.rules[0].expr_text, "x < 2");
    }
}
