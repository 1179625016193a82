//! Credentials read from files (the bearer token, the basic-auth password): re-read whenever
//! the file changes (size, mtime or inode; a Kubernetes Secret volume's symlink swap changes
//! the inode), checked to fit in an HTTP header, and never shown.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;

/// The largest secret file read; anything bigger is not a token or a password.
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// How long after a file's mtime its content may still change without the mtime changing
/// (coarse filesystem timestamps); a file read within this window is re-read next time.
const RACY_WINDOW: Duration = Duration::from_secs(2);

/// A credentials file cannot be used: names the file and why, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {}: {why}", .path.display())]
pub struct SecretError {
    /// E.g. "bearer token file".
    pub what: &'static str,
    pub path: PathBuf,
    pub why: String,
}

/// When a file was last seen to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileStamp {
    pub(super) modified: Option<SystemTime>,
    pub(super) len: u64,
    pub(super) dev: u64,
    pub(super) ino: u64,
}

impl FileStamp {
    fn of(meta: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Whether content read at `read_at` from a file with this stamp can be trusted while the
/// stamp stays the same: not when the file had changed so shortly before the read that a
/// later write could keep the same (coarse) mtime and size.
pub(super) fn stamp_is_settled(stamp: &FileStamp, read_at: SystemTime) -> bool {
    match stamp.modified {
        Some(modified) => modified
            .checked_add(RACY_WINDOW)
            .is_some_and(|settled| settled <= read_at),
        None => false,
    }
}

struct CachedSecret {
    value: String,
    stamp: FileStamp,
    read_at: SystemTime,
}

/// A secret kept in a file, re-read when the file changes. Checking costs one `stat` per use.
pub(super) struct SecretFile {
    /// E.g. "bearer token file"; used in error messages with the path.
    what: &'static str,
    path: PathBuf,
    cache: Mutex<Option<CachedSecret>>,
}

impl fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.what, self.path.display())
    }
}

impl SecretFile {
    pub(super) fn new(what: &'static str, path: &Path) -> SecretFile {
        SecretFile {
            what,
            path: path.to_path_buf(),
            cache: Mutex::new(None),
        }
    }

    fn fail(&self, why: impl fmt::Display) -> SecretError {
        SecretError {
            what: self.what,
            path: self.path.clone(),
            why: why.to_string(),
        }
    }

    /// The cached secret, when the file still has the stamp it was read with.
    fn cached(&self, stamp: &FileStamp) -> Option<String> {
        // A poisoned lock only means another thread panicked mid-update; the cache is
        // re-validated by its stamp anyway.
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .as_ref()
            .filter(|cached| {
                cached.stamp == *stamp && stamp_is_settled(&cached.stamp, cached.read_at)
            })
            .map(|cached| cached.value.clone())
    }

    fn check_size(&self, meta: &std::fs::Metadata) -> Result<(), SecretError> {
        if meta.len() > MAX_SECRET_BYTES {
            return Err(self.fail(format_args!(
                "larger than {MAX_SECRET_BYTES} bytes; is it the right file?"
            )));
        }
        Ok(())
    }

    /// Validates what was read and caches it.
    fn accept(
        &self,
        raw: Vec<u8>,
        stamp: FileStamp,
        read_at: SystemTime,
    ) -> Result<String, SecretError> {
        let text = String::from_utf8(raw).map_err(|_| self.fail("not UTF-8 text"))?;
        // Files written by editors and `echo` end with a newline that is not part of it.
        let value = text.trim();
        if value.is_empty() {
            return Err(self.fail("empty"));
        }
        // Checked here so the error names the file (without showing the content).
        if HeaderValue::from_str(value).is_err() {
            return Err(self.fail(
                "contains characters not allowed in an HTTP header (control characters or a \
                 line break inside the value)",
            ));
        }
        let value = value.to_string();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        *cache = Some(CachedSecret {
            value: value.clone(),
            stamp,
            read_at,
        });
        Ok(value)
    }

    /// The current secret, for a request: the file system is touched through tokio's blocking
    /// pool, so a slow volume never stalls the runtime's worker threads.
    pub(super) async fn get(&self) -> Result<String, SecretError> {
        let meta = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| self.fail(e))?;
        let stamp = FileStamp::of(&meta);
        if let Some(value) = self.cached(&stamp) {
            return Ok(value);
        }
        self.check_size(&meta)?;
        let read_at = SystemTime::now();
        let raw = tokio::fs::read(&self.path)
            .await
            .map_err(|e| self.fail(e))?;
        self.accept(raw, stamp, read_at)
    }

    /// The current secret, read in the calling thread: for the check at construction, which
    /// happens at startup before any request.
    pub(super) fn get_blocking(&self) -> Result<String, SecretError> {
        let meta = std::fs::metadata(&self.path).map_err(|e| self.fail(e))?;
        let stamp = FileStamp::of(&meta);
        if let Some(value) = self.cached(&stamp) {
            return Ok(value);
        }
        self.check_size(&meta)?;
        let read_at = SystemTime::now();
        let raw = std::fs::read(&self.path).map_err(|e| self.fail(e))?;
        self.accept(raw, stamp, read_at)
    }
}

/// How requests authenticate.
#[derive(Debug)]
pub(super) enum Auth {
    None,
    Bearer(SecretFile),
    Basic {
        username: String,
        password: SecretFile,
    },
}
