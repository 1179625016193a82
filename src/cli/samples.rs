//! `podgate samples`: what podgate sees in an exposition body.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::exposition::{self, Format, Sample};
use crate::source::scrape;

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
    /// Input format for --file (auto: OpenMetrics when the body ends with `# EOF`).
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
}

impl InputFormat {
    pub(crate) fn resolve(self, body: &str) -> Format {
        match self {
            InputFormat::Auto => scrape::detect_format(None, body),
            InputFormat::Text => Format::Text,
            InputFormat::Openmetrics => Format::OpenMetrics,
        }
    }
}

pub(crate) fn parse_secs(s: &str) -> Result<Duration, String> {
    let n = s.strip_suffix('s').unwrap_or(s);
    n.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds like 10s"))
}

/// Reads a body from a file (`-` = stdin) and picks its format.
pub(crate) fn read_file(path: &PathBuf, input: InputFormat) -> Result<(Format, String), String> {
    let body = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
    };
    Ok((input.resolve(&body), body))
}

pub fn run(args: Args) -> i32 {
    let (format, body, origin) = match (&args.url, &args.file) {
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
                Ok(Ok(s)) => (s.format, s.body, url.clone()),
                Ok(Err(e)) => return fail(EXIT_INVALID, e),
                Err(e) => return fail(EXIT_INVALID, e),
            }
        }
        (None, Some(path)) => match read_file(path, args.input_format) {
            Ok((f, b)) => (f, b, path.display().to_string()),
            Err(e) => return fail(EXIT_INVALID, e),
        },
        (None, None) => return fail(super::EXIT_USAGE, "give --url or --file"),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
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
