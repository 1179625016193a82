//! Keeping secrets out of what is shown: credentials a server echoes in its error answer,
//! and user info in a URL.

use reqwest::Url;

use super::error::PromErrorKind;

/// Whether `needle` (non-empty) occurs in `haystack`.
pub(super) fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

const REDACTED: &str = "<redacted>";

/// `text` with every occurrence of each (non-empty) secret replaced; longer secrets first, so
/// one that contains another is replaced whole.
pub(super) fn redact(text: &str, secrets: &[String]) -> String {
    let mut sorted: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in sorted {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

impl PromErrorKind {
    /// The same error with every secret in `secrets` removed from its texts.
    pub(super) fn redact(self, secrets: &[String]) -> PromErrorKind {
        let r = |t: String| redact(&t, secrets);
        match self {
            PromErrorKind::Connect { url, detail } => PromErrorKind::Connect {
                url: r(url),
                detail: r(detail),
            },
            PromErrorKind::Http { status, detail } => PromErrorKind::Http {
                status,
                detail: r(detail),
            },
            PromErrorKind::Api {
                status,
                error_type,
                message,
            } => PromErrorKind::Api {
                status,
                error_type: r(error_type),
                message: r(message),
            },
            PromErrorKind::BadResponse(t) => PromErrorKind::BadResponse(r(t)),
            PromErrorKind::NotVector { result_type } => PromErrorKind::NotVector {
                result_type: r(result_type),
            },
            PromErrorKind::Request(t) => PromErrorKind::Request(r(t)),
            other => other,
        }
    }
}

pub(super) fn redact_url(url: &Url) -> String {
    let mut url = url.clone();
    // Both fail only for URLs that cannot have credentials, which then have none to hide.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

pub(super) fn redact_url_text(text: &str) -> String {
    match Url::parse(text) {
        Ok(url) => redact_url(&url),
        Err(_) => "(not a URL)".to_string(),
    }
}
