//! Rule files: model, load, validate (and, in the daemon, reload).

/// What a no-data or error evaluation counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Pass,
    Fail,
    Keep,
}
