//! The HTTP clients that scrape pods' endpoints: one for plain http and system-trusted https,
//! and one per custom TLS setting of a rule's `scrape:` block (its CA file, or verification
//! off), built on first use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use crate::rules::Scheme;

/// Sent with every scrape, so a pod's logs and access metrics can tell podgate's scrapes
/// from Prometheus's.
pub const USER_AGENT: &str = concat!("podgate/", env!("CARGO_PKG_VERSION"));

/// Why no client could be had for a scrape; the message names the setting to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpClientError {
    #[error("HTTP client: {0}")]
    Build(String),
    #[error("scrape.caFile {}: {detail}", .path.display())]
    CaFile { path: PathBuf, detail: String },
}

/// The TLS settings of one endpoint that decide which client scrapes it.
#[derive(Debug, Clone, Copy)]
pub struct TlsSettings<'a> {
    pub scheme: Scheme,
    pub ca_file: Option<&'a PathBuf>,
    pub insecure_skip_verify: bool,
}

/// HTTP clients for scraping: one for plain http and system-trusted https, one per custom
/// TLS setting.
pub struct HttpClients {
    default: reqwest::Client,
    custom: Mutex<HashMap<(Option<PathBuf>, bool), reqwest::Client>>,
}

fn builder() -> reqwest::ClientBuilder {
    // No idle connections between scrapes: an idle HTTP/1 connection holds about 50 KiB
    // of buffers, which over 10,000 pods would be most of podgate's memory; a new
    // connection per scrape costs little CPU next to the scrape itself (docs/scaling.md).
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .pool_max_idle_per_host(0)
}

impl HttpClients {
    pub fn new() -> Result<HttpClients, HttpClientError> {
        super::init_tls();
        let default = builder()
            .build()
            .map_err(|e| HttpClientError::Build(e.to_string()))?;
        Ok(HttpClients {
            default,
            custom: Mutex::new(HashMap::new()),
        })
    }

    /// The client for an endpoint with these settings. A custom TLS setting's client is built
    /// once; its CA file is read asynchronously and with no lock held.
    pub async fn client(&self, tls: TlsSettings<'_>) -> Result<reqwest::Client, HttpClientError> {
        if tls.scheme == Scheme::Http || (tls.ca_file.is_none() && !tls.insecure_skip_verify) {
            return Ok(self.default.clone());
        }
        let key = (tls.ca_file.cloned(), tls.insecure_skip_verify);
        // Each update is one map insert: a panic elsewhere cannot leave the cache half
        // written, so a poisoned lock is used as it is.
        let cached = self
            .custom
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        if let Some(c) = cached {
            return Ok(c);
        }
        let mut b = builder();
        if let Some(ca) = tls.ca_file {
            let ca_error = |detail: String| HttpClientError::CaFile {
                path: ca.clone(),
                detail,
            };
            let pem = tokio::fs::read(ca)
                .await
                .map_err(|e| ca_error(e.to_string()))?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| ca_error(e.to_string()))?;
            b = b.add_root_certificate(cert);
        }
        if tls.insecure_skip_verify {
            b = b.danger_accept_invalid_certs(true);
        }
        let c = b
            .build()
            .map_err(|e| HttpClientError::Build(e.to_string()))?;
        // Two scrapes may have built one each: the first stored is kept.
        let mut cache = self.custom.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(cache.entry(key).or_insert(c).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn https_with_ca(ca: &PathBuf) -> TlsSettings<'_> {
        TlsSettings {
            scheme: Scheme::Https,
            ca_file: Some(ca),
            insecure_skip_verify: false,
        }
    }

    #[tokio::test]
    async fn a_missing_ca_file_is_named_in_the_error() {
        let clients = HttpClients::new().expect("clients");
        let ca = PathBuf::from("/nonexistent/podgate-ca.pem");
        let e = clients
            .client(https_with_ca(&ca))
            .await
            .expect_err("no such file");
        let text = e.to_string();
        assert!(
            text.starts_with("scrape.caFile /nonexistent/podgate-ca.pem: "),
            "{text}"
        );
    }

    #[tokio::test]
    async fn plain_http_never_reads_the_ca_file() {
        let clients = HttpClients::new().expect("clients");
        let ca = PathBuf::from("/nonexistent/podgate-ca.pem");
        let plain = TlsSettings {
            scheme: Scheme::Http,
            ..https_with_ca(&ca)
        };
        assert!(clients.client(plain).await.is_ok());
    }
}
