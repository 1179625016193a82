//! Loading rule files from a directory (a ConfigMap volume), a list of files, or a string,
//! and the checks that span files: unique names and the rule count limit.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::diag::{self, Diagnostic, RulesError, Severity};
use super::model::RuleSet;
use super::validate::{FileOutcome, validate_file};
use super::yaml::Pos;

/// Largest rule file podgate reads.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most rules one load may hold, across all files.
pub const MAX_RULES: usize = 1000;

/// The `*.yaml` and `*.yml` files of a directory, sorted by name.
///
/// Symlinks are followed (a ConfigMap volume links `name.yaml -> ..data/name.yaml`), and
/// entries whose name starts with `.` are skipped: `..data` and the `..2026_01_01_...`
/// directories hold the same files a second time. Subdirectories are not searched (one
/// named `*.yaml` is listed, and fails to read).
pub fn list_dir(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with('.') {
            continue;
        }
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let path = entry.path();
        // `fs::metadata` follows symlinks. A dangling link is skipped like a missing file (a
        // ConfigMap volume shows one for a moment while a file is removed); anything else
        // that is not a readable file (a directory, a link into an unreadable directory) is
        // listed, so reading it fails and says why instead of its rules vanishing unnoticed.
        match fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            _ => files.push(path),
        }
    }
    files.sort();
    Ok(files)
}

/// One source of rule text.
struct Source {
    file: PathBuf,
    text: Result<String, String>,
}

fn read_file(path: &Path) -> Result<String, String> {
    let f = fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    decode_file(bytes)
}

/// A rule file's bytes as text: within [`MAX_FILE_BYTES`] and valid UTF-8.
fn decode_file(bytes: Vec<u8>) -> Result<String, String> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "the file is larger than {} KiB; split the rules over several files",
            MAX_FILE_BYTES / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Validates every source and returns the rule set, or every diagnostic when there are errors.
fn load_sources(sources: Vec<Source>) -> (Option<RuleSet>, Vec<Diagnostic>, usize) {
    let mut diags = Vec::new();
    let mut outcomes: Vec<(PathBuf, FileOutcome)> = Vec::new();
    for src in sources {
        match src.text {
            Ok(text) => {
                let outcome = validate_file(&src.file, &text, &mut diags);
                outcomes.push((src.file, outcome));
            }
            Err(message) => diags.push(file_error(&src.file, message)),
        }
    }

    // Names are unique across all files; the later definition is the error.
    let mut seen: HashMap<&str, (&Path, Pos)> = HashMap::new();
    let found: usize = outcomes.iter().map(|(_, o)| o.entries.len()).sum();
    let mut total = 0usize;
    for (file, outcome) in &outcomes {
        for (name, pos) in &outcome.entries {
            total += 1;
            if total == MAX_RULES + 1 {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    file: file.clone(),
                    line: pos.line,
                    column: pos.column,
                    rule: name.clone(),
                    field: None,
                    message: format!(
                        "too many rules: {found} across all files; the limit is {MAX_RULES}"
                    ),
                });
            }
            let Some(name) = name else { continue };
            match seen.get(name.as_str()) {
                Some((first_file, first_pos)) => diags.push(Diagnostic {
                    severity: Severity::Error,
                    file: file.clone(),
                    line: pos.line,
                    column: pos.column,
                    rule: Some(name.clone()),
                    field: Some("name".to_string()),
                    message: format!(
                        "duplicate rule name: {name:?} is already defined at {}:{}:{}",
                        first_file.display(),
                        first_pos.line,
                        first_pos.column
                    ),
                }),
                None => {
                    seen.insert(name, (file, *pos));
                }
            }
        }
    }

    diag::sort(&mut diags);
    if diags.iter().any(Diagnostic::is_error) {
        return (None, diags, total);
    }
    let rules = outcomes
        .into_iter()
        .flat_map(|(_, o)| o.rules)
        .map(Arc::new)
        .collect();
    let set = RuleSet {
        rules,
        warnings: diags.clone(),
    };
    (Some(set), diags, total)
}

fn file_error(file: &Path, message: String) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        file: file.to_path_buf(),
        line: 0,
        column: 0,
        rule: None,
        field: None,
        message,
    }
}

fn finish(
    (set, diags, _): (Option<RuleSet>, Vec<Diagnostic>, usize),
) -> Result<RuleSet, RulesError> {
    set.ok_or(RulesError { diagnostics: diags })
}

/// Loads every rule file of a directory (see [`list_dir`]). A directory without rule files
/// gives an empty set.
pub fn load_dir(dir: &Path) -> Result<RuleSet, RulesError> {
    match list_dir(dir) {
        Ok(files) => load_files(&files),
        Err(e) => Err(RulesError {
            diagnostics: vec![file_error(dir, format!("cannot read rules directory: {e}"))],
        }),
    }
}

/// Loads the given rule files, in the given order.
pub fn load_files(paths: &[PathBuf]) -> Result<RuleSet, RulesError> {
    let sources = paths
        .iter()
        .map(|p| Source {
            file: p.clone(),
            text: read_file(p),
        })
        .collect();
    finish(load_sources(sources))
}

/// Loads rules from text, reported as coming from `name`.
pub fn load_str(name: &str, text: &str) -> Result<RuleSet, RulesError> {
    let text = if text.len() as u64 > MAX_FILE_BYTES {
        Err(format!(
            "the file is larger than {} KiB; split the rules over several files",
            MAX_FILE_BYTES / 1024
        ))
    } else {
        Ok(text.to_string())
    };
    finish(load_sources(vec![Source {
        file: PathBuf::from(name),
        text,
    }]))
}

/// What `podgate check` found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Errors and warnings, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// Rule files read.
    pub files: usize,
    /// Rule entries found (valid or not).
    pub rules: usize,
}

impl CheckReport {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// 1 when there are errors, 0 otherwise (warnings alone do not fail the check).
    pub fn exit_code(&self) -> i32 {
        if self.has_errors() { 1 } else { 0 }
    }
}

/// Validates the bytes of one rule file, named `file` in diagnostics, exactly as [`check`]
/// validates a file read from disk.
pub fn check_bytes(file: &Path, bytes: &[u8]) -> CheckReport {
    let (_, diagnostics, rules) = load_sources(vec![Source {
        file: file.to_path_buf(),
        text: decode_file(bytes.to_vec()),
    }]);
    CheckReport {
        diagnostics,
        files: 1,
        rules,
    }
}

/// Validates rule files as the daemon would load them, all together (so duplicate names
/// across files are found). Each path is a file, or a directory whose rule files are read
/// as [`load_dir`] does.
pub fn check(paths: &[PathBuf]) -> CheckReport {
    let mut sources = Vec::new();
    let mut early = Vec::new();
    for path in paths {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => match list_dir(path) {
                Ok(files) if files.is_empty() => early.push(Diagnostic {
                    severity: Severity::Warning,
                    ..file_error(
                        path,
                        "no *.yaml or *.yml files in this directory".to_string(),
                    )
                }),
                Ok(files) => sources.extend(files.into_iter().map(|f| Source {
                    text: read_file(&f),
                    file: f,
                })),
                Err(e) => early.push(file_error(path, format!("cannot read directory: {e}"))),
            },
            Ok(_) => sources.push(Source {
                file: path.clone(),
                text: read_file(path),
            }),
            Err(e) => early.push(file_error(path, format!("cannot read: {e}"))),
        }
    }
    let files = sources.len();
    let (_, mut diagnostics, rules) = load_sources(sources);
    diagnostics.extend(early);
    diag::sort(&mut diagnostics);
    CheckReport {
        diagnostics,
        files,
        rules,
    }
}
