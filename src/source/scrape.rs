//! Scraping a pod's own metrics endpoint: one HTTP GET with a timeout, gzip, and a body
//! size limit counted after decompression (so a small gzip bomb cannot grow past it).

use std::time::Duration;

use futures::StreamExt;

use crate::exposition::Format;

/// Prometheus's own preference order: OpenMetrics first, then text 0.0.4.
pub const ACCEPT: &str = "application/openmetrics-text;version=1.0.0;q=0.75,\
text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The default body size limit (10 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 10 << 20;

/// A scraped body, checked to be UTF-8.
#[derive(Debug, Clone)]
pub struct Scraped {
    pub format: Format,
    pub body: String,
}

/// Why a scrape failed. Each message names the URL and what to look at.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    #[error("scrape {url}: timed out after {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("scrape {url}: connection failed: {detail}")]
    Connect { url: String, detail: String },
    #[error("scrape {url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("scrape {url}: body larger than the {limit} byte limit")]
    TooLarge { url: String, limit: usize },
    #[error("scrape {url}: body is not UTF-8 (byte {offset})")]
    NotUtf8 { url: String, offset: usize },
    #[error("scrape {url}: {detail}")]
    Other { url: String, detail: String },
}

/// Picks the format of a body: from the Content-Type when there is one, else OpenMetrics
/// when the body ends with `# EOF`, else text.
pub fn detect_format(content_type: Option<&str>, body: &str) -> Format {
    match content_type {
        Some(ct) if !ct.trim().is_empty() => Format::from_content_type(ct),
        _ => {
            if body.trim_end().ends_with("# EOF") {
                Format::OpenMetrics
            } else {
                Format::Text
            }
        }
    }
}

/// GETs `url` and returns its body, never reading more than `limit` bytes.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
    limit: usize,
) -> Result<Scraped, ScrapeError> {
    match tokio::time::timeout(timeout, fetch_inner(client, url, limit)).await {
        Ok(r) => r,
        Err(_) => Err(ScrapeError::Timeout {
            url: url.to_string(),
            timeout,
        }),
    }
}

async fn fetch_inner(
    client: &reqwest::Client,
    url: &str,
    limit: usize,
) -> Result<Scraped, ScrapeError> {
    let other = |e: &dyn std::fmt::Display| ScrapeError::Other {
        url: url.to_string(),
        detail: e.to_string(),
    };
    let resp = client
        .get(url)
        .header(reqwest::header::ACCEPT, ACCEPT)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                ScrapeError::Connect {
                    url: url.to_string(),
                    detail: error_chain(&e),
                }
            } else {
                other(&error_chain(&e))
            }
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ScrapeError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ScrapeError::TooLarge {
            url: url.to_string(),
            limit,
        });
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| other(&format!("reading body: {}", error_chain(&e))))?;
        if body.len() + chunk.len() > limit {
            return Err(ScrapeError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    let body = String::from_utf8(body).map_err(|e| ScrapeError::NotUtf8 {
        url: url.to_string(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    let format = detect_format(content_type.as_deref(), &body);
    Ok(Scraped { format, body })
}

/// An error with its causes, on one line (reqwest's Display alone hides the useful part).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_content_type_or_eof() {
        assert_eq!(
            detect_format(Some("application/openmetrics-text; version=1.0.0"), "x 1\n"),
            Format::OpenMetrics
        );
        assert_eq!(
            detect_format(Some("text/plain; version=0.0.4"), "x 1\n# EOF\n"),
            Format::Text
        );
        assert_eq!(detect_format(None, "x 1\n# EOF\n"), Format::OpenMetrics);
        assert_eq!(detect_format(None, "x 1\n"), Format::Text);
    }
}
