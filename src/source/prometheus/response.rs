//! Reading the HTTP API's answer to an instant query: a vector (a scalar counts as one sample
//! without labels), or why it is not one, in a message that fits on one line.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::error::{DETAIL_SHOWN_CHARS, PromErrorKind, shorten};

/// The largest API response read (a batched result over many thousand pods fits easily).
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// All labels, including `__name__` when the result has one.
    pub labels: BTreeMap<String, String>,
    /// As Prometheus sent it, NaN and ±Inf included.
    pub value: f64,
}

/// The result of an instant query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vector {
    pub samples: Vec<Sample>,
    /// The response's `warnings` (e.g. a partial response).
    pub warnings: Vec<String>,
    /// The response's `infos` (newer Prometheus versions' hints).
    pub infos: Vec<String>,
}

#[derive(Deserialize)]
struct ApiResponse {
    status: String,
    data: Option<Data>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    infos: Vec<String>,
}

/// Just the envelope: used when the whole answer does not parse, to still show its error.
#[derive(Deserialize)]
struct ApiEnvelope {
    status: String,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<VectorItem>),
    Scalar((f64, String)),
    Matrix(IgnoredAny),
    String(IgnoredAny),
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: Option<(f64, String)>,
    histogram: Option<IgnoredAny>,
}

/// Parses a sample value as Prometheus writes it: a decimal number, `NaN`, `+Inf` or `-Inf`.
pub fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        // Rust would also accept "inf", "infinity" or "nan" in any case; Prometheus never
        // writes those, so they are treated as garbage.
        _ if !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E')) =>
        {
            text.parse().ok()
        }
        _ => None,
    }
}

fn sample_value(text: &str, labels: &BTreeMap<String, String>) -> Result<f64, PromErrorKind> {
    parse_value(text).ok_or_else(|| {
        PromErrorKind::BadResponse(format!(
            "sample value {:?} of {} is not a number",
            shorten(text, 40),
            format_labels(labels)
        ))
    })
}

/// `{a="1", b="2"}`, cut to a readable length.
pub fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    shorten(&format!("{{{}}}", inner.join(", ")), 200)
}

/// Turns an API answer (HTTP status and body) into a vector or the reason it is not one.
pub fn parse_response(status: u16, body: &[u8]) -> Result<Vector, PromErrorKind> {
    let ok_status = (200..300).contains(&status);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(if ok_status {
            PromErrorKind::BadResponse("empty answer".to_string())
        } else {
            http_error(status, body)
        });
    }
    let parsed: ApiResponse = match serde_json::from_slice(body) {
        Ok(parsed) => parsed,
        Err(e) => {
            // A malformed `data` must not hide an error the envelope carries.
            if let Ok(envelope) = serde_json::from_slice::<ApiEnvelope>(body)
                && envelope.status == "error"
            {
                return Err(api_error(status, envelope.error_type, envelope.error));
            }
            if !ok_status {
                return Err(http_error(status, body));
            }
            return Err(PromErrorKind::BadResponse(shorten(
                &format!("not a Prometheus API answer ({e})"),
                DETAIL_SHOWN_CHARS,
            )));
        }
    };
    match parsed.status.as_str() {
        "error" => return Err(api_error(status, parsed.error_type, parsed.error)),
        "success" if ok_status => {}
        // Some other JSON (e.g. a Kubernetes Status from a proxy) or a success with an error
        // status: the HTTP status is the best description.
        _ if !ok_status => return Err(http_error(status, body)),
        other => {
            return Err(PromErrorKind::BadResponse(format!(
                "status {:?}, expected \"success\" or \"error\"",
                shorten(other, 40)
            )));
        }
    }
    let Some(data) = parsed.data else {
        return Err(PromErrorKind::BadResponse(
            "a successful answer without data".to_string(),
        ));
    };
    let samples = match data {
        Data::Vector(items) => {
            let mut samples = Vec::with_capacity(items.len());
            for item in items {
                let value = match (item.value, item.histogram) {
                    (Some((_, text)), _) => sample_value(&text, &item.metric)?,
                    (None, Some(_)) => {
                        return Err(PromErrorKind::BadResponse(format!(
                            "{} is a native histogram sample, not a number; use \
                             histogram_quantile(), histogram_count() or histogram_sum()",
                            format_labels(&item.metric)
                        )));
                    }
                    (None, None) => {
                        return Err(PromErrorKind::BadResponse(format!(
                            "vector sample {} has no value",
                            format_labels(&item.metric)
                        )));
                    }
                };
                samples.push(Sample {
                    labels: item.metric,
                    value,
                });
            }
            samples
        }
        Data::Scalar((_, text)) => {
            let labels = BTreeMap::new();
            let value = sample_value(&text, &labels)?;
            vec![Sample { labels, value }]
        }
        Data::Matrix(_) => {
            return Err(PromErrorKind::NotVector {
                result_type: "matrix".to_string(),
            });
        }
        Data::String(_) => {
            return Err(PromErrorKind::NotVector {
                result_type: "string".to_string(),
            });
        }
    };
    Ok(Vector {
        samples,
        warnings: parsed.warnings,
        infos: parsed.infos,
    })
}

fn api_error(status: u16, error_type: Option<String>, error: Option<String>) -> PromErrorKind {
    PromErrorKind::Api {
        status,
        error_type: error_type
            .filter(|t| !t.trim().is_empty())
            .map_or_else(|| "error".to_string(), |t| shorten(&t, 40)),
        message: shorten(
            error.as_deref().unwrap_or("(no error text)"),
            DETAIL_SHOWN_CHARS,
        ),
    }
}

fn http_error(status: u16, body: &[u8]) -> PromErrorKind {
    let text = String::from_utf8_lossy(body.get(..2048).unwrap_or(body));
    PromErrorKind::Http {
        status,
        detail: shorten(&text, 200),
    }
}

pub(super) fn too_large() -> PromErrorKind {
    PromErrorKind::BadResponse(format!(
        "answer larger than {} MiB; select fewer series",
        MAX_RESPONSE_BYTES >> 20
    ))
}
