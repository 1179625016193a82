//! How one write attempt ended, and who is told (the write metrics).

use std::time::Duration;

/// How one write attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteResult {
    /// The condition was written.
    Ok,
    /// The live condition already said the same: nothing written.
    Unchanged,
    /// The pod is gone (404) or is another pod under the same name (other uid): dropped.
    Gone,
    /// The API server answered 409 Conflict: retried.
    Conflict,
    /// The API server was unreachable, timed out, or answered an error: retried.
    Error,
    /// The API server rejected the write as invalid (400/422): dropped, retrying cannot help.
    Invalid,
}

impl WriteResult {
    pub const ALL: [WriteResult; 6] = [
        WriteResult::Ok,
        WriteResult::Unchanged,
        WriteResult::Gone,
        WriteResult::Conflict,
        WriteResult::Error,
        WriteResult::Invalid,
    ];

    /// The `result` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteResult::Ok => "ok",
            WriteResult::Unchanged => "unchanged",
            WriteResult::Gone => "gone",
            WriteResult::Conflict => "conflict",
            WriteResult::Error => "error",
            WriteResult::Invalid => "invalid",
        }
    }

    /// Whether the update is tried again.
    pub fn retried(self) -> bool {
        matches!(self, WriteResult::Conflict | WriteResult::Error)
    }
}

/// Told about every write attempt: its result and how long it took (reading the live pod and
/// the patch; not the event that may follow).
pub trait WriteObserver: Send + Sync + 'static {
    fn write_finished(&self, result: WriteResult, duration: Duration);
}

impl<F> WriteObserver for F
where
    F: Fn(WriteResult, Duration) + Send + Sync + 'static,
{
    fn write_finished(&self, result: WriteResult, duration: Duration) {
        self(result, duration)
    }
}
