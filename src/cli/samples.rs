//! `podgate samples`: what podgate sees in an exposition body.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::body::Scraped;
use crate::exposition::protobuf::{self, HistogramOptions, ProtoSample, ProtoValue};
use crate::exposition::{self, Format, Sample};
use crate::source::scrape;

use super::error::Error;
use super::{EXIT_INVALID, EXIT_OK, fail};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["url", "file"])))]
pub struct Args {
    /// Scrape this URL (Content-Type picks the format).
    #[arg(long)]
    url: Option<String>,
    /// Read this file (`-` for stdin).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
    /// Input format for --file (auto: protobuf when the file name ends in `.pb` or the body
    /// is not UTF-8, else OpenMetrics when the body ends with `# EOF`, else text).
    #[arg(long, value_enum, default_value = "auto")]
    input_format: InputFormat,
    /// Scrape timeout for --url.
    #[arg(long, default_value = "10s", value_parser = parse_secs)]
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum InputFormat {
    Auto,
    Text,
    Openmetrics,
    /// The delimited protobuf format (`application/vnd.google.protobuf`).
    Protobuf,
}

impl InputFormat {
    /// The body read as this format says; `path` and the bytes decide for `auto`.
    fn resolve(self, path: &std::path::Path, bytes: Vec<u8>) -> Result<Scraped, Error> {
        let protobuf = match self {
            InputFormat::Protobuf => true,
            InputFormat::Auto => {
                path.extension().is_some_and(|e| e == "pb") || std::str::from_utf8(&bytes).is_err()
            }
            InputFormat::Text | InputFormat::Openmetrics => false,
        };
        if protobuf {
            return Ok(Scraped::Protobuf { body: bytes });
        }
        let body = exposition::decode_body(&bytes)
            .map_err(|source| Error::SamplesBody {
                path: path.to_path_buf(),
                source,
            })?
            .to_string();
        let format = match self {
            InputFormat::Openmetrics => Format::OpenMetrics,
            InputFormat::Text => Format::Text,
            InputFormat::Auto | InputFormat::Protobuf => exposition::detect_format(None, &body),
        };
        Ok(Scraped::Text { format, body })
    }
}

/// `--timeout`'s value parser; clap prints its message after the flag's name.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let n = s.strip_suffix('s').unwrap_or(s);
    n.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds like 10s"))
}

/// Reads a body from a file (`-` = stdin) and picks its format.
pub(crate) fn read_file(path: &PathBuf, input: InputFormat) -> Result<Scraped, Error> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(Error::ReadStdin)?;
        b
    } else {
        std::fs::read(path).map_err(|source| Error::ReadFile {
            path: path.clone(),
            source,
        })?
    };
    input.resolve(path, bytes)
}

pub fn run(args: Args) -> i32 {
    let (scraped, origin) = match (&args.url, &args.file) {
        (Some(url), _) => {
            let client = match reqwest::Client::builder().build() {
                Ok(c) => c,
                Err(e) => return fail(EXIT_INVALID, format!("HTTP client: {e}")),
            };
            let fetched = super::block_on(scrape::fetch(
                &client,
                url,
                args.timeout,
                scrape::DEFAULT_BODY_LIMIT,
            ));
            match fetched {
                Ok(Ok(s)) => (s, url.clone()),
                Ok(Err(e)) => return fail(EXIT_INVALID, e),
                Err(e) => return fail(EXIT_INVALID, e),
            }
        }
        (None, Some(path)) => match read_file(path, args.input_format) {
            Ok(s) => (s, path.display().to_string()),
            Err(e) => return fail(EXIT_INVALID, e),
        },
        (None, None) => return fail(super::EXIT_USAGE, "give --url or --file"),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (format, body) = match scraped {
        Scraped::Text { format, body } => (format, body),
        Scraped::Protobuf { body } => {
            let decoded = match protobuf::decode(body, HistogramOptions::PODGATE) {
                Ok(d) => d,
                Err(e) => return fail(EXIT_INVALID, format!("{origin}: {e}")),
            };
            for sample in decoded.samples() {
                let line = match args.format {
                    OutputFormat::Text => proto_text_line(&sample),
                    OutputFormat::Json => proto_json_line(&sample),
                };
                if writeln!(out, "{line}").is_err() {
                    return EXIT_OK;
                }
            }
            let _ = out.flush();
            return EXIT_OK;
        }
    };
    for item in exposition::parse(&body, format) {
        match item {
            Ok(sample) => {
                let line = match args.format {
                    OutputFormat::Text => text_line(&sample),
                    OutputFormat::Json => json_line(&sample),
                };
                if writeln!(out, "{line}").is_err() {
                    // stdout closed (e.g. piped into `head`): nothing more to say.
                    return EXIT_OK;
                }
            }
            Err(e) => {
                let _ = out.flush();
                return fail(EXIT_INVALID, format!("{origin}: {e}"));
            }
        }
    }
    let _ = out.flush();
    EXIT_OK
}

/// `name{a="1",b="x\"y"} value [timestamp_ms]`, label values escaped as in the text format.
/// A metric or label name outside the legacy character set is quoted as Prometheus 3 writes
/// it: `{"http.server.duration","service.name"="x"} 1`.
pub(crate) fn text_line(s: &Sample<'_>) -> String {
    let mut line = String::new();
    // Writing to a String cannot fail.
    let _ = exposition::write_series(&mut line, &s.name, s.labels.iter(), true);
    line.push(' ');
    line.push_str(&format_sample_value(s.value));
    if let Some(ts) = s.timestamp_ms {
        line.push(' ');
        line.push_str(&ts.to_string());
    }
    line
}

fn json_line(s: &Sample<'_>) -> String {
    let labels: serde_json::Map<String, serde_json::Value> = s
        .labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.into_owned())))
        .collect();
    serde_json::json!({
        "name": &*s.name,
        "labels": labels,
        "value": format_sample_value(s.value),
        "timestamp_ms": s.timestamp_ms,
    })
    .to_string()
}

/// A protobuf sample as [`text_line`] writes a text one; a native histogram's value is its
/// bucket list (`{count:6, sum:7.5, (0.5,1]:2, ...}`).
fn proto_text_line(s: &ProtoSample<'_>) -> String {
    let mut line = String::new();
    let labels = s
        .labels()
        .map(|(k, v)| (std::borrow::Cow::Borrowed(k), std::borrow::Cow::Borrowed(v)));
    let _ = exposition::write_series(&mut line, s.name, labels, true);
    line.push(' ');
    match s.value {
        ProtoValue::Float(v) => line.push_str(&format_sample_value(v)),
        ProtoValue::Histogram(h) => line.push_str(&h.to_string()),
    }
    if let Some(ts) = s.timestamp_ms {
        line.push(' ');
        line.push_str(&ts.to_string());
    }
    line
}

/// A protobuf sample as [`json_line`] writes a text one; a native histogram has
/// `"histogram"` (the Prometheus API's form) instead of `"value"`.
fn proto_json_line(s: &ProtoSample<'_>) -> String {
    let labels: serde_json::Map<String, serde_json::Value> = s
        .labels()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
        .collect();
    let mut line = serde_json::json!({
        "name": s.name,
        "labels": labels,
        "timestamp_ms": s.timestamp_ms,
    });
    match s.value {
        ProtoValue::Float(v) => line["value"] = format_sample_value(v).into(),
        ProtoValue::Histogram(h) => line["histogram"] = h.api_json(),
    }
    line.to_string()
}

/// Values as the Prometheus HTTP API prints them: `NaN`, `+Inf`, `-Inf`, shortest float.
pub(crate) fn format_sample_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(body: &str, format: Format) -> Vec<(String, String)> {
        exposition::parse(body, format)
            .map(|s| {
                let s = s.expect("valid body");
                (text_line(&s), json_line(&s))
            })
            .collect()
    }

    #[test]
    fn utf8_names_print_quoted_as_prometheus_3_writes_them() {
        let got = lines(
            "{\"http.server.duration\", \"service.name\"=\"x\"} 1\n\
             {\"name.with.dots\"} 2\n\
             my_metric{\"label.name\"=\"v\",plain=\"a\\\"b\"} 3 17\n\
             legacy 4\n",
            Format::Text,
        );
        let text: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            text,
            [
                r#"{"http.server.duration","service.name"="x"} 1"#,
                r#"{"name.with.dots"} 2"#,
                r#"my_metric{"label.name"="v",plain="a\"b"} 3 17"#,
                "legacy{} 4",
            ]
        );
        // Every printed line reads back as the same sample.
        for line in &text {
            let again: Vec<_> = exposition::parse(line, Format::Text)
                .collect::<Result<_, _>>()
                .expect("printed line parses");
            assert_eq!(again.len(), 1, "{line}");
        }
        let json: serde_json::Value = serde_json::from_str(&got[0].1).expect("JSON line parses");
        assert_eq!(
            json,
            serde_json::json!({
                "name": "http.server.duration",
                "labels": {"service.name": "x"},
                "value": "1",
                "timestamp_ms": null
            })
        );
    }
}
