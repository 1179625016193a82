//! The command line: `podgate check|samples|eval|test|version`.

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    0
}
