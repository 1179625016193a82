//! What can keep the admission webhook from serving: its certificate files, the TLS setup,
//! the listening address. Each message names the file or address to fix.

use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("webhook {what} {}: {source}", .path.display())]
    Read {
        /// "certificate" or "key".
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("webhook certificate {}: not valid PEM: {detail}", .cert.display())]
    CertificatePem { cert: PathBuf, detail: String },
    #[error("webhook certificate {}: no CERTIFICATE block found", .cert.display())]
    NoCertificate { cert: PathBuf },
    #[error("webhook key {}: no usable private key: {detail}", .key.display())]
    Key { key: PathBuf, detail: String },
    #[error(
        "webhook certificate {} and key {} do not make a pair: {detail}",
        .cert.display(),
        .key.display()
    )]
    NotAPair {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    /// Reading the files on the blocking pool failed (the task panicked or was cancelled).
    #[error("reading the webhook certificate failed: {0}")]
    Aborted(String),
    #[error("webhook TLS: {0}")]
    Tls(String),
    #[error("webhook: cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("webhook listener address: {0}")]
    Address(#[source] std::io::Error),
}
