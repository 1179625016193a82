//! Reading rule files from disk: a ConfigMap volume's directory, files, `podgate check`.

use std::path::Path;

use podgate_core::rules::testing::{BASE, render, rule_file, with};
use podgate_core::rules::{Diagnostic, MAX_FILE_BYTES};

use super::*;

#[test]
fn duplicate_names_across_files_name_both_places() {
    let dir = tempdir();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    write(&a, BASE);
    write(&b, &format!("# other file\n{BASE}"));
    let err = match load_files(&[a.clone(), b.clone()]) {
        Ok(_) => panic!("duplicate names must fail"),
        Err(e) => e,
    };
    let errs: Vec<&Diagnostic> = err.errors().collect();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].file, b);
    assert_eq!((errs[0].line, errs[0].column), (3, 11));
    assert!(
        errs[0].message.contains(&format!("{}:2:11", a.display())),
        "{}",
        errs[0]
    );
}

#[test]
fn file_size_limit() {
    let big = format!("rules: []\n{}", "#".repeat(MAX_FILE_BYTES as usize));
    let dir = tempdir();
    let path = dir.path().join("big.yaml");
    write(&path, &big);
    let report = check(&[path]);
    assert_eq!(report.error_count(), 1);
    assert!(report.diagnostics[0].message.contains("larger than"));
}

fn tempdir() -> tempfile::TempDir {
    match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("tempdir: {e}"),
    }
}

fn write(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        panic!("write {}: {e}", path.display());
    }
}

#[cfg(unix)]
#[test]
fn loads_a_configmap_volume() {
    use std::os::unix::fs::symlink;
    let dir = tempdir();
    let root = dir.path();
    // What the kubelet writes for a ConfigMap volume.
    let ts = root.join("..2026_01_02_03_04_05.000000001");
    std::fs::create_dir(&ts).unwrap_or_else(|e| panic!("{e}"));
    write(&ts.join("b-rules.yaml"), &rule_file("from-b"));
    write(&ts.join("a-rules.yml"), &rule_file("from-a"));
    write(&ts.join("notes.txt"), "not rules");
    let link = |target: &str, name: &str| {
        symlink(target, root.join(name)).unwrap_or_else(|e| panic!("symlink {name}: {e}"));
    };
    link("..2026_01_02_03_04_05.000000001", "..data");
    link("..data/b-rules.yaml", "b-rules.yaml");
    link("..data/a-rules.yml", "a-rules.yml");
    link("..data/notes.txt", "notes.txt");
    link("..data/missing.yaml", "dangling.yaml");
    std::fs::create_dir(root.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    write(&root.join(".hidden.yaml"), "not: valid: yaml: [");

    let files = match list_dir(root) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    };
    let names: Vec<String> = files
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .collect();
    assert_eq!(names, ["a-rules.yml", "b-rules.yaml"]);

    let set = match load_dir(root) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let rules: Vec<&str> = set.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        rules,
        ["from-a", "from-b"],
        "sorted by file name, ..data not read twice"
    );
    assert_eq!(set.rules[0].origin.file, root.join("a-rules.yml"));

    // A directory named like a rule file is not a ConfigMap's doing: an error, so its
    // absence is noticed instead of its rules vanishing.
    std::fs::create_dir(root.join("sub.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let err = match load_dir(root) {
        Ok(_) => panic!("a *.yaml directory must fail the load"),
        Err(e) => e,
    };
    assert!(
        err.to_string().contains("sub.yaml: error: cannot read"),
        "{err}"
    );
}

#[test]
fn load_dir_of_missing_directory_is_an_error() {
    let dir = tempdir();
    let err = match load_dir(&dir.path().join("nope")) {
        Ok(_) => panic!("must fail"),
        Err(e) => e,
    };
    assert_eq!(err.diagnostics.len(), 1);
    assert!(
        err.to_string().contains("cannot read rules directory"),
        "{err}"
    );
}

#[test]
fn empty_directory_loads_no_rules() {
    let dir = tempdir();
    match load_dir(dir.path()) {
        Ok(set) => assert!(set.is_empty()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn check_reports_every_file_sorted_with_exit_code() {
    let dir = tempdir();
    write(
        &dir.path().join("b.yaml"),
        &with("interval: 10\ntimeout: 2"),
    );
    write(
        &dir.path().join("a.yaml"),
        &rule_file("good").replace("x > 0", "x >"),
    );
    write(&dir.path().join("c.yaml"), "rules: []\n");
    let extra = dir.path().join("extra.yml");
    write(&extra, &rule_file("other"));
    let missing = dir.path().join("missing.yaml");

    let report = check(&[dir.path().to_path_buf(), missing.clone()]);
    assert_eq!(
        report.files, 4,
        "three files in the directory plus extra.yml"
    );
    assert_eq!(report.rules, 3);
    assert_eq!(report.exit_code(), 1);
    let errs: Vec<&Diagnostic> = report.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert!(
        errs.iter().any(|d| d.file == missing && d.line == 0),
        "{}",
        render(&report.diagnostics)
    );
    let b: Vec<(usize, Option<&str>)> = errs
        .iter()
        .filter(|d| d.file.ends_with("b.yaml"))
        .map(|d| (d.line, d.field.as_deref()))
        .collect();
    assert_eq!(b, [(7, Some("interval")), (8, Some("timeout"))]);
    let mut sorted = report.diagnostics.clone();
    sorted.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    assert_eq!(sorted, report.diagnostics);
}

#[test]
fn non_utf8_file_is_an_error() {
    let dir = tempdir();
    let path = dir.path().join("bin.yaml");
    if let Err(e) = std::fs::write(&path, b"rules: [\xff]\n") {
        panic!("{e}");
    }
    let report = check(&[path]);
    assert_eq!(report.error_count(), 1);
    assert!(report.diagnostics[0].message.contains("UTF-8"));
}

#[test]
fn check_warns_about_a_directory_without_rule_files() {
    let dir = tempdir();
    write(&dir.path().join("README.md"), "not rules");
    let report = check(&[dir.path().to_path_buf()]);
    assert_eq!(report.exit_code(), 0);
    assert_eq!(report.warning_count(), 1);
    assert!(report.diagnostics[0].message.contains("no *.yaml"));
}
