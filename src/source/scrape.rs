//! Scraping a pod's own metrics endpoint: one HTTP GET with a timeout, gzip, and a body
//! size limit counted after decompression (so a small gzip bomb cannot grow past it).
//! The core's [`crate::body`] turns what it fetched into stored samples.

use std::time::Duration;

use futures::StreamExt;

pub use crate::body::Scraped;
use crate::exposition::{Encoding, detect_encoding, detect_format};

/// The formats podgate parses, in the order of preference of Prometheus 3 when it scrapes
/// native histograms (`scrape_native_histograms: true`): the protobuf format first (the only
/// one that carries native histograms), then OpenMetrics 1.0.0, then the text format. Each
/// asks for `escaping=allow-utf-8`, so that a client keeps UTF-8 metric and label names
/// (`{"http.server.duration"}`) instead of rewriting them to underscores, whichever format
/// it picks (Prometheus leaves it off the protobuf entry). The response's Content-Type picks
/// the parser ([`detect_encoding`]).
pub const ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
encoding=delimited;escaping=allow-utf-8;q=0.7,\
application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,\
text/plain;version=0.0.4;escaping=allow-utf-8;q=0.4,*/*;q=0.3";

/// The default body size limit (10 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 10 << 20;

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
    if detect_encoding(content_type.as_deref()) == Encoding::Protobuf {
        return Ok(Scraped::Protobuf { body });
    }
    let body = String::from_utf8(body).map_err(|e| ScrapeError::NotUtf8 {
        url: url.to_string(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    let format = detect_format(content_type.as_deref(), &body);
    Ok(Scraped::Text { format, body })
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
    use crate::exposition::Format;

    #[test]
    fn accept_asks_for_utf8_names_in_every_format_it_lists() {
        let entries: Vec<&str> = ACCEPT.split(',').collect();
        let formats: Vec<&str> = entries
            .iter()
            .filter(|e| !e.starts_with("*/*"))
            .copied()
            .collect();
        assert_eq!(formats.len(), 4, "{ACCEPT}");
        for entry in &formats {
            assert!(entry.contains(";escaping=allow-utf-8;"), "{entry}");
        }
        // Prometheus 3's order with native histograms on: protobuf, OpenMetrics, text.
        assert!(formats[0].starts_with(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
        ));
        assert!(formats[1].starts_with("application/openmetrics-text;version=1.0.0;"));
        assert!(
            formats
                .iter()
                .any(|e| e.starts_with("text/plain;version=0.0.4;"))
        );
        // Every listed media type is one the Content-Type detection reads as what it is.
        let media: Vec<Encoding> = formats
            .iter()
            .map(|e| detect_encoding(Some(e.rsplit_once(";q=").map_or(*e, |(m, _)| m))))
            .collect();
        assert_eq!(
            media,
            [
                Encoding::Protobuf,
                Encoding::Text(Format::OpenMetrics),
                Encoding::Text(Format::Text),
                Encoding::Text(Format::Text),
            ]
        );
        // Preferences strictly decrease, the catch-all last.
        let q: Vec<f64> = entries
            .iter()
            .filter_map(|e| e.rsplit_once(";q=").and_then(|(_, q)| q.parse().ok()))
            .collect();
        assert_eq!(q.len(), entries.len());
        assert!(q.windows(2).all(|w| matches!(w, [a, b] if a > b)), "{q:?}");
        assert!(entries.last().is_some_and(|e| e.starts_with("*/*;")));
    }
}
