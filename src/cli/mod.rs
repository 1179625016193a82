//! The command line. Exit codes (documented in the README):
//! 0 success (for `eval`: pass), 1 rule/test failure (for `eval`: fail or no data),
//! 2 invalid input or source error, 64 usage error.

mod check;
mod error;
mod eval;
mod eval_peers;
mod run;
mod samples;
mod test;

use clap::{Parser, Subcommand};

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_INVALID: i32 = 2;
pub const EXIT_USAGE: i32 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "podgate",
    version,
    about = "Kubernetes pod readiness gates decided from metrics"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch pods, evaluate rules, write gate conditions.
    Run(Box<run::Args>),
    /// Validate rule files; every error is printed as file:line:col.
    Check(check::Args),
    /// Evaluate one rule once and print every variable, the expression and the verdict.
    Eval(eval::Args),
    /// Print every sample of an exposition body exactly as podgate parses it.
    Samples(samples::Args),
    /// Run rule unit tests: samples per step for a pod, expected gate status per step.
    Test(test::Args),
    /// Print the version.
    Version,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => EXIT_OK,
                _ => EXIT_USAGE,
            };
            // clap prints help to stdout and errors to stderr.
            let _ = e.print();
            return code;
        }
    };
    crate::source::init_tls();
    match cli.command {
        Command::Run(args) => run::run(*args),
        Command::Check(args) => check::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Samples(args) => samples::run(args),
        Command::Test(args) => test::run(args),
        Command::Version => {
            println!("podgate {}", env!("CARGO_PKG_VERSION"));
            EXIT_OK
        }
    }
}

/// Prints a one-line error to stderr and returns `code`.
pub(crate) fn fail(code: i32, message: impl std::fmt::Display) -> i32 {
    eprintln!("podgate: {message}");
    code
}

/// A current-thread runtime for the commands that do network I/O once.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, error::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(f))
        .map_err(error::Error::Runtime)
}
