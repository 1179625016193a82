//! Why a test file could not be run: the file itself is invalid (exit 2), as opposed to a test
//! in it that fails.

use std::path::PathBuf;

use crate::rules::RulesError;

#[derive(Debug, thiserror::Error)]
pub enum RuleTestError {
    /// The text is not YAML of a test file's shape. Boxed: the YAML error is large, and
    /// every `Result` of this type would carry its size.
    #[error("{}: {source}", .path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The rule files it names do not load.
    #[error(transparent)]
    Rules(#[from] RulesError),
    /// A test that cannot run as written: a pod listed twice, a series that does not parse, …
    /// The message is the test's own check, which names the field to fix.
    #[error("{}: {test}: {message}", .path.display())]
    Test {
        path: PathBuf,
        test: String,
        message: String,
    },
}
