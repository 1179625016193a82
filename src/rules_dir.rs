//! Reading rule files from disk: every rule file of a directory (a ConfigMap volume), a list
//! of files, and what `podgate check` reads. What the text means, and the checks across
//! files, are the core's ([`podgate_core::rules`]): this module only turns paths into
//! [`RuleSource`]s.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use podgate_core::rules::{
    CheckReport, Diagnostic, MAX_FILE_BYTES, RuleSet, RuleSource, RulesError, Severity,
    SourceError, check_sources, decode_file, file_error, load_sources,
};

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

/// A rule file's text, read no further than one byte past [`MAX_FILE_BYTES`].
fn read_file(path: &Path) -> Result<String, SourceError> {
    let f = fs::File::open(path).map_err(SourceError::Read)?;
    let mut bytes = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(SourceError::Read)?;
    decode_file(bytes)
}

fn source(path: PathBuf) -> RuleSource {
    RuleSource {
        text: read_file(&path),
        file: path,
    }
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
    load_sources(paths.iter().cloned().map(source).collect())
}

/// Validates rule files as the daemon would load them, all together (so duplicate names
/// across files are found): `podgate check`. Each path is a file, or a directory whose rule
/// files are read as [`load_dir`] does.
pub fn check(paths: &[PathBuf]) -> CheckReport {
    let mut sources = Vec::new();
    let mut unread = Vec::new();
    for path in paths {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => match list_dir(path) {
                Ok(files) if files.is_empty() => unread.push(Diagnostic {
                    severity: Severity::Warning,
                    ..file_error(
                        path,
                        "no *.yaml or *.yml files in this directory".to_string(),
                    )
                }),
                Ok(files) => sources.extend(files.into_iter().map(source)),
                Err(e) => unread.push(file_error(path, format!("cannot read directory: {e}"))),
            },
            Ok(_) => sources.push(source(path.clone())),
            Err(e) => unread.push(file_error(path, format!("cannot read: {e}"))),
        }
    }
    check_sources(sources, unread)
}

#[cfg(test)]
mod tests;
