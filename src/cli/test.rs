//! `podgate test`: run rule unit test files.

use std::path::{Path, PathBuf};

use crate::{rules_dir, ruletest};

use super::error::Error;
use super::{EXIT_FAIL, EXIT_INVALID, EXIT_OK};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test files (see docs/testing-rules.md).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> i32 {
    let mut code = EXIT_OK;
    for file in &args.files {
        match run_file(file) {
            Ok(report) if report.failures.is_empty() => {
                println!("{}: {} test(s) passed", file.display(), report.tests);
            }
            Ok(report) => {
                println!(
                    "{}: {} of {} test(s) failed",
                    file.display(),
                    report.failures.len(),
                    report.tests
                );
                for f in &report.failures {
                    println!("  FAILED {f}");
                }
                code = code.max(EXIT_FAIL);
            }
            Err(e) => {
                eprintln!("podgate: {e}");
                code = EXIT_INVALID;
            }
        }
    }
    code
}

/// Reads a test file and runs it on the rule files it names. `Err` is an invalid test file
/// (exit 2), not a failing test.
fn run_file(path: &Path) -> Result<ruletest::FileReport, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(ruletest::run(path, &text, rules_dir::load_files)?)
}
