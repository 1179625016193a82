//! `podgate test`: run rule unit test files.

use std::path::PathBuf;

use crate::ruletest;

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
        match ruletest::run_file(file) {
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
