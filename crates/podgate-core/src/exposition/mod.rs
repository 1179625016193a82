//! The Prometheus text (0.0.4) and OpenMetrics (1.0) exposition parser.
//!
//! [`parse`] returns an iterator of [`Sample`]s borrowed from the body. It accepts what a
//! Prometheus server accepts when it scrapes a target, rule for rule (Prometheus 2.42, plus
//! what Prometheus 3 reads: quoted UTF-8 names, `le`/`quantile` values in float form; checked
//! against Prometheus 3.16 on the OpenMetrics parser suite), and nothing it rejects: every line
//! it cannot read is a [`ParseError`] naming the 1-based line and what was wrong, never a
//! skipped sample or one Prometheus would read otherwise. After an error the iterator ends. A
//! body that fails to parse must be rejected as a whole, as Prometheus fails the whole scrape.
//!
//! Parsing does not allocate per sample: names, label names and label values are slices of
//! the body. [`Labels`] keeps the validated text of a label set and reads it on demand; only
//! a label value or quoted name containing an escape sequence is copied (a `Cow::Owned`), and
//! an `le` or `quantile` value that Prometheus 3 stores in another spelling (`le="1"` is
//! stored as `le="1.0"`, and read so here).
//!
//! See `docs/exposition.md` for the accepted syntax in detail.

mod float;
mod float_form;
mod labels;
mod parser;
pub mod protobuf;
mod sample;

pub use float::PromValue;
pub use labels::write_series;
pub use labels::{Labels, LabelsIter, is_legacy_label_name, is_legacy_metric_name};
pub use parser::Parser;
pub use sample::{Exemplar, MetricType, Sample};

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    Text,
    /// OpenMetrics 1.0 (`application/openmetrics-text`).
    OpenMetrics,
}

impl Format {
    /// Picks the format from a response `Content-Type` header as Prometheus does:
    /// `application/openmetrics-text` (any case, with well-formed parameters) is OpenMetrics;
    /// anything else, including a missing or malformed header, is the text format.
    pub fn from_content_type(content_type: &str) -> Format {
        let (media_type, parameters) = split_media_type(content_type);
        if media_type
            .trim()
            .eq_ignore_ascii_case("application/openmetrics-text")
            && parameters_are_well_formed(parameters)
        {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// How a scraped body is encoded: one of the text formats, or the protobuf format
/// ([`protobuf`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Text(Format),
    Protobuf,
}

impl Encoding {
    /// Picks the parser from a response `Content-Type` header as Prometheus does:
    /// `application/vnd.google.protobuf` (any case, any well-formed parameters) is protobuf;
    /// anything else is read by [`Format::from_content_type`].
    pub fn from_content_type(content_type: &str) -> Encoding {
        let (media_type, parameters) = split_media_type(content_type);
        if media_type.trim().eq_ignore_ascii_case(protobuf::MEDIA_TYPE)
            && parameters_are_well_formed(parameters)
        {
            Encoding::Protobuf
        } else {
            Encoding::Text(Format::from_content_type(content_type))
        }
    }
}

/// Whether a response is protobuf or text, from its Content-Type; a text body's format is
/// then picked by [`detect_format`].
pub fn detect_encoding(content_type: Option<&str>) -> Encoding {
    content_type.map_or(Encoding::Text(Format::Text), Encoding::from_content_type)
}

/// Picks the format of a text body: from the Content-Type when there is one, else
/// OpenMetrics when the body ends with `# EOF`, else text.
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

/// A Content-Type's media type and the `; key=value ...` after it.
fn split_media_type(content_type: &str) -> (&str, &str) {
    content_type
        .find(';')
        .map_or((content_type, ""), |i| content_type.split_at(i))
}

/// Whether `rest` (`; key=value ...` after a media type) is well formed by the rules of Go's
/// `mime.ParseMediaType`; Prometheus falls back to the text format when it is not.
fn parameters_are_well_formed(mut rest: &str) -> bool {
    fn token_len(s: &str) -> usize {
        s.bytes()
            .take_while(|&c| (0x21..0x7f).contains(&c) && !b"()<>@,;:\\\"/[]?=".contains(&c))
            .count()
    }
    let mut keys: Vec<String> = Vec::new();
    loop {
        rest = rest.trim_start();
        let Some(param) = rest.strip_prefix(';') else {
            return rest.is_empty();
        };
        let param = param.trim_start();
        if param.is_empty() {
            // A trailing semicolon is ignored.
            return true;
        }
        let key_len = token_len(param);
        let Some((key, after_key)) = param.split_at_checked(key_len) else {
            return false;
        };
        let Some(value) = after_key.trim_start().strip_prefix('=') else {
            return false;
        };
        let value = value.trim_start();
        let value_len = if value.starts_with('"') {
            // A quoted string with backslash escapes, up to the closing quote.
            let mut escaped = false;
            let close = value.bytes().enumerate().skip(1).find(|&(_, c)| {
                let done = !escaped && c == b'"';
                escaped = !escaped && c == b'\\';
                done
            });
            match close {
                Some((i, _)) => i + 1,
                None => return false,
            }
        } else {
            token_len(value)
        };
        if key.is_empty() || value_len == 0 {
            return false;
        }
        let key = key.to_ascii_lowercase();
        if keys.contains(&key) {
            return false;
        }
        keys.push(key);
        rest = value.get(value_len..).unwrap_or("");
    }
}

/// A body that is not valid exposition input: the 1-based line and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses `body` in `format`, yielding its samples in order.
///
/// ```
/// use podgate_core::exposition::{parse, Format};
///
/// let body = "# TYPE http_requests_total counter\n\
///             http_requests_total{code=\"200\",path=\"/api\"} 1042\n";
/// let samples: Vec<_> = parse(body, Format::Text).collect::<Result<_, _>>()?;
/// assert_eq!(samples[0].name, "http_requests_total");
/// assert_eq!(samples[0].labels.get("code").as_deref(), Some("200"));
/// assert_eq!(samples[0].value, 1042.0);
/// # Ok::<(), podgate_core::exposition::ParseError>(())
/// ```
pub fn parse(body: &str, format: Format) -> Parser<'_> {
    Parser::new(body, format)
}

/// Checks that a raw response body is UTF-8 and returns it as text for [`parse`]; otherwise
/// the error names the line of the first invalid byte.
///
/// Prometheus refuses names, label values and HELP text that are not UTF-8, so a body with
/// invalid bytes is refused as a whole. (Prometheus
/// tolerates them inside plain `#` comments of the text format; podgate does not.)
pub fn decode_body(body: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(body).map_err(|e| {
        let valid = e.valid_up_to();
        let line = 1 + body
            .get(..valid)
            .map_or(0, |before| before.iter().filter(|&&c| c == b'\n').count());
        ParseError {
            line,
            message: format!(
                "invalid UTF-8 at byte {} of the body (exposition bodies must be UTF-8)",
                valid + 1
            ),
        }
    })
}

#[cfg(test)]
mod tests;
