//! Assembling a rule set from rule file texts: each file validated, then the checks that
//! span files (unique names, the rule count limit). Reading the files is the daemon's
//! (`podgate::rules_dir`); here a file is its name and its text, or why it has none.

use std::collections::HashMap;
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

/// One rule file: the name diagnostics give it, and its text or why it has none.
#[derive(Debug)]
pub struct RuleSource {
    pub file: PathBuf,
    pub text: Result<String, SourceError>,
}

/// Why a rule file has no text to validate; reported as an error about the whole file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    #[error(
        "the file is larger than {} KiB; split the rules over several files",
        MAX_FILE_BYTES / 1024
    )]
    TooLarge,
    #[error("the file is not valid UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
}

/// A rule file's bytes as text: within [`MAX_FILE_BYTES`] and valid UTF-8.
pub fn decode_file(bytes: Vec<u8>) -> Result<String, SourceError> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(SourceError::TooLarge);
    }
    String::from_utf8(bytes).map_err(|e| SourceError::NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

/// Validates every source and returns the rule set, or every diagnostic when there are errors.
fn validate_sources(sources: Vec<RuleSource>) -> (Option<RuleSet>, Vec<Diagnostic>, usize) {
    let mut diags = Vec::new();
    let mut outcomes: Vec<(PathBuf, FileOutcome)> = Vec::new();
    for src in sources {
        match src.text {
            Ok(text) => {
                let outcome = validate_file(&src.file, &text, &mut diags);
                outcomes.push((src.file, outcome));
            }
            Err(e) => diags.push(file_error(&src.file, e.to_string())),
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

/// A finding about a whole file (it cannot be read, a directory holds no rule files…).
pub fn file_error(file: &Path, message: String) -> Diagnostic {
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

/// Validates the rule files together (duplicate names across them are errors) and returns
/// the rule set, or every diagnostic when there are errors.
pub fn load_sources(sources: Vec<RuleSource>) -> Result<RuleSet, RulesError> {
    let (set, diagnostics, _) = validate_sources(sources);
    set.ok_or(RulesError { diagnostics })
}

/// Loads rules from text, reported as coming from `name`.
pub fn load_str(name: &str, text: &str) -> Result<RuleSet, RulesError> {
    let text = if text.len() as u64 > MAX_FILE_BYTES {
        Err(SourceError::TooLarge)
    } else {
        Ok(text.to_string())
    };
    load_sources(vec![RuleSource {
        file: PathBuf::from(name),
        text,
    }])
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

/// Validates rule files as the daemon would load them, all together (so duplicate names
/// across files are found): what `podgate check` reports. `unread` are findings about paths
/// that gave no file (a missing path, a directory without rule files); they are reported
/// with the rest, sorted by file and position.
pub fn check_sources(sources: Vec<RuleSource>, unread: Vec<Diagnostic>) -> CheckReport {
    let files = sources.len();
    let (_, mut diagnostics, rules) = validate_sources(sources);
    diagnostics.extend(unread);
    diag::sort(&mut diagnostics);
    CheckReport {
        diagnostics,
        files,
        rules,
    }
}

/// Validates the bytes of one rule file, named `file` in diagnostics, exactly as `podgate
/// check` validates a file read from disk.
pub fn check_bytes(file: &Path, bytes: &[u8]) -> CheckReport {
    check_sources(
        vec![RuleSource {
            file: file.to_path_buf(),
            text: decode_file(bytes.to_vec()),
        }],
        Vec::new(),
    )
}
