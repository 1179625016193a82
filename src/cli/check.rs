//! `podgate check`: validate rule files exactly as the daemon loads them.

use std::path::PathBuf;

use crate::rules_dir;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rule files or directories of rule files.
    #[arg(required = true, value_name = "DIR|FILE")]
    paths: Vec<PathBuf>,
}

pub fn run(args: Args) -> i32 {
    let report = rules_dir::check(&args.paths);
    for d in &report.diagnostics {
        eprintln!("{d}");
    }
    println!(
        "{} file(s), {} rule(s): {} error(s), {} warning(s)",
        report.files,
        report.rules,
        report.error_count(),
        report.warning_count()
    );
    report.exit_code()
}
