//! The parser proper: a hand-written scanner over the body for each format.
//!
//! The accepted language follows Prometheus's own lexers (`promlex.l`, `openmetricslex.l`)
//! and parsers rule by rule, as of Prometheus 2.42 and, for UTF-8 names (quoted metric and
//! label names), Prometheus 3.16; the comments name the rule where it is not obvious. Positions are byte offsets into the body; line numbers are computed from them only
//! when an error is reported, so the hot path does no line bookkeeping.

use std::borrow::Cow;

use super::float::{FloatError, parse_value};
use super::labels::{FloatLabel, Labels, unescape_help_text, unescape_label_value};
use super::sample::{Exemplar, MetricType, Sample};
use super::{Format, ParseError};

/// Iterator over the samples of an exposition body; see [`parse`](super::parse).
#[derive(Debug)]
pub struct Parser<'a> {
    body: &'a str,
    format: Format,
    /// Start of the next line to read.
    pos: usize,
    done: bool,
    /// Spans of the label names of the sample being parsed, to find duplicates; reused so
    /// that it allocates only while growing to the largest label set seen.
    /// (Inside the quotes for a quoted name.)
    names: Vec<(usize, usize)>,
    sorted_names: Vec<(usize, usize)>,
    /// Whether a quoted label name of the sample being parsed has an escape sequence: then
    /// two spellings can be one name, and duplicates are looked for on the unescaped names.
    escaped_names: bool,
    /// The metric name of the sample being parsed when it was quoted inside the braces.
    inner_name: Option<NameSpan>,
    /// The last `# TYPE`: family name and type.
    /// (Family names are kept as spans of the body and unescaped when asked for.)
    family_type: Option<(NameSpan, MetricType)>,
    /// The label Prometheus 3 rewrites in float form after that `# TYPE` line; kept apart
    /// so that each sample copies it instead of looking at the type.
    float_label: FloatLabel,
    /// The last `# HELP`: family name and the text as written (escaped).
    help: Option<(NameSpan, &'a str)>,
    /// The last `# UNIT` (OpenMetrics): family name and unit.
    unit: Option<(NameSpan, &'a str)>,
    /// The exemplar of the sample last returned.
    exemplar: Option<Exemplar<'a>>,
}

/// A parse failure before it is turned into a [`ParseError`]: where and what.
struct Fail {
    pos: usize,
    message: String,
}

type Parsed<T> = Result<T, Fail>;

/// A sample as the scanners return it: the name as written (inside the quotes of a quoted
/// one) and whether it has escapes to undo. Kept free of `Cow` so that the hot path moves
/// plain, niche-packed values; [`Parser::next`] builds the [`Sample`].
struct RawSample<'a> {
    name: &'a str,
    name_escaped: bool,
    labels: Labels<'a>,
    value: f64,
    timestamp_ms: Option<i64>,
}

impl<'a> RawSample<'a> {
    fn into_sample(self) -> Sample<'a> {
        Sample {
            name: if self.name_escaped {
                Cow::Owned(unescape_label_value(self.name))
            } else {
                Cow::Borrowed(self.name)
            },
            labels: self.labels,
            value: self.value,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// Up to this many labels, duplicates are found by comparing each new name with the earlier
/// ones; larger label sets are sorted instead, so hostile input cannot make it quadratic.
const LINEAR_DUPLICATE_CHECK: usize = 16;

const fn byte_table(kind: u8) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let alpha = c.is_ascii_alphabetic() || c == b'_';
        table[i] = match kind {
            // Metric name, first character: [a-zA-Z_:]
            0 => alpha || c == b':',
            // Metric name, later characters: [a-zA-Z0-9_:]
            1 => alpha || c == b':' || c.is_ascii_digit(),
            // Label name, first character: [a-zA-Z_]
            2 => alpha,
            // Label name, later characters: [a-zA-Z0-9_]
            _ => alpha || c.is_ascii_digit(),
        };
        i += 1;
    }
    table
}

const METRIC_START: [bool; 256] = byte_table(0);
const METRIC_CHAR: [bool; 256] = byte_table(1);
const LABEL_START: [bool; 256] = byte_table(2);
const LABEL_CHAR: [bool; 256] = byte_table(3);

fn scan(b: &[u8], mut i: usize, table: &[bool; 256]) -> usize {
    while let Some(&c) = b.get(i) {
        if !table[usize::from(c)] {
            break;
        }
        i += 1;
    }
    i
}

/// Skips spaces and tabs (the text format's whitespace).
fn skip_blanks(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t') = b.get(i) {
        i += 1;
    }
    i
}

/// End of a token that runs to the next space or newline (OpenMetrics values, timestamps).
fn scan_om_token(b: &[u8], mut i: usize) -> usize {
    while let Some(&c) = b.get(i) {
        if c == b' ' || c == b'\n' {
            break;
        }
        i += 1;
    }
    i
}

/// The position of the newline ending the line that contains `i`, or the body length.
fn line_end(b: &[u8], i: usize) -> usize {
    b.get(i..)
        .and_then(|rest| rest.iter().position(|&c| c == b'\n'))
        .map_or(b.len(), |n| i + n)
}

fn starts_with_at(b: &[u8], i: usize, prefix: &[u8]) -> bool {
    b.get(i..).is_some_and(|rest| rest.starts_with(prefix))
}

/// A metric or label name in the body: the text between `start` and `end` (inside the
/// quotes when it was quoted), and whether it has escape sequences to undo.
#[derive(Debug, Clone, Copy)]
struct NameSpan {
    start: usize,
    end: usize,
    quoted: bool,
    escaped: bool,
}

impl NameSpan {
    #[inline]
    fn bare(start: usize, end: usize) -> NameSpan {
        NameSpan {
            start,
            end,
            quoted: false,
            escaped: false,
        }
    }

    /// The position after the name (after the closing quote of a quoted name).
    #[inline]
    fn after(self) -> usize {
        self.end + usize::from(self.quoted)
    }
}

/// The name a span holds, unescaped (copied only when it has escape sequences).
#[inline]
fn span_text(body: &str, span: NameSpan) -> Cow<'_, str> {
    let raw = body.get(span.start..span.end).unwrap_or("");
    if span.escaped {
        Cow::Owned(unescape_label_value(raw))
    } else {
        Cow::Borrowed(raw)
    }
}

/// After a bare name, a character that suggests a name Prometheus 3 would need quoted
/// (`http.server.duration`, `service-name`): the hint for the error message.
fn quoting_hint(c: Option<u8>, what: &str) -> String {
    let label = what == "label";
    match c {
        Some(c) if c == b'.' || c == b'-' || c == b'/' || !c.is_ascii() || (label && c == b':') => {
            let (chars, example) = if label {
                ("letters, digits and '_'", "{\"service.name\"=\"x\"}")
            } else {
                ("letters, digits, '_' and ':'", "{\"http.server.duration\"}")
            };
            format!(
                " (a {what} name with characters other than {chars} must be quoted inside the \
                 braces, e.g. {example})"
            )
        }
        _ => String::new(),
    }
}

/// Whose labels or timestamp a message is about; formatted only when an error is reported,
/// so naming it costs nothing on the hot path.
#[derive(Clone, Copy)]
enum Owner<'n> {
    /// A sample whose metric name stands before the braces.
    Sample(&'n str),
    /// A sample whose line starts with `{` (its name is quoted inside the braces).
    BracesFirst,
    Exemplar(&'n str),
}

impl<'n> Owner<'n> {
    /// The metric name before the braces of a sample.
    fn outer(self) -> Option<&'n str> {
        match self {
            Owner::Sample(name) => Some(name),
            Owner::BracesFirst | Owner::Exemplar(_) => None,
        }
    }
}

impl std::fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Sample(name) => f.write_str(name),
            Owner::BracesFirst => f.write_str("the sample"),
            Owner::Exemplar(name) => write!(f, "the exemplar of {name}"),
        }
    }
}

/// Explains a stray carriage return: the body has CRLF line endings.
fn crlf_hint(token: &str) -> &'static str {
    if token.ends_with('\r') {
        " (lines must end with \\n alone, not \\r\\n)"
    } else {
        ""
    }
}

enum Keyword {
    Help,
    Type,
    Unit,
}

impl Keyword {
    fn as_str(&self) -> &'static str {
        match self {
            Keyword::Help => "HELP",
            Keyword::Type => "TYPE",
            Keyword::Unit => "UNIT",
        }
    }
}

impl<'a> Parser<'a> {
    pub(crate) fn new(body: &'a str, format: Format) -> Parser<'a> {
        Parser {
            body,
            format,
            pos: 0,
            done: false,
            names: Vec::new(),
            sorted_names: Vec::new(),
            escaped_names: false,
            inner_name: None,
            family_type: None,
            float_label: FloatLabel::None,
            help: None,
            unit: None,
            exemplar: None,
        }
    }

    /// The format being parsed.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The type of the metric family that `sample_name` belongs to, from the last `# TYPE`
    /// line read so far (call it right after the sample is returned). A sample belongs to the
    /// family when its name is the family name, or the family name plus a suffix its type
    /// uses (`_total`, `_bucket`, `_count`, `_sum`, `_created`, ...). Otherwise
    /// [`MetricType::Unknown`].
    pub fn metric_type(&self, sample_name: &str) -> MetricType {
        match self.family_type {
            Some((family, t)) if t.family_has(&span_text(self.body, family), sample_name) => t,
            _ => MetricType::Unknown,
        }
    }

    /// The last `# HELP` line read: family name and unescaped text.
    pub fn help(&self) -> Option<(Cow<'a, str>, Cow<'a, str>)> {
        let (name, raw) = self.help?;
        let name = span_text(self.body, name);
        let text = if !raw.contains('\\') {
            Cow::Borrowed(raw)
        } else if self.format == Format::OpenMetrics {
            // OpenMetrics escapes HELP text like label values.
            Cow::Owned(unescape_label_value(raw))
        } else {
            Cow::Owned(unescape_help_text(raw))
        };
        Some((name, text))
    }

    /// The last `# UNIT` line read (OpenMetrics): family name and unit.
    pub fn unit(&self) -> Option<(Cow<'a, str>, &'a str)> {
        self.unit
            .map(|(name, unit)| (span_text(self.body, name), unit))
    }

    /// The exemplar attached to the sample last returned, if it had one (OpenMetrics).
    pub fn exemplar(&self) -> Option<Exemplar<'a>> {
        self.exemplar
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.body.as_bytes().get(i).copied()
    }

    fn slice(&self, start: usize, end: usize) -> &'a str {
        // Every offset the scanners produce is next to an ASCII byte, so on a char boundary.
        self.body.get(start..end).unwrap_or("")
    }

    fn fail(&self, pos: usize, message: String) -> Fail {
        Fail { pos, message }
    }

    /// Names what is at `pos`, for "found ..." in messages.
    fn describe(&self, pos: usize) -> String {
        match self.body.get(pos..).and_then(|rest| rest.chars().next()) {
            None => "end of input".to_string(),
            Some('\n') => "end of line".to_string(),
            Some('\r') => {
                "a carriage return (lines must end with \\n alone, not \\r\\n)".to_string()
            }
            Some(c) => format!("{c:?}"),
        }
    }

    /// A name as written, quotes included, for messages.
    fn shown(&self, span: NameSpan) -> &'a str {
        let q = usize::from(span.quoted);
        self.slice(span.start - q, span.end + q)
    }

    /// The quoted name (metric or label) opening at `quote`, as both lexers read it:
    /// `"(\\.|[^\\"])*"`. Any escape `\x` is accepted (and later undone like a label value's),
    /// but not a backslash before a newline; a raw newline may stand inside the quotes, a NUL
    /// byte may not.
    #[cold]
    fn quoted_name(&self, quote: usize, what: &str) -> Parsed<NameSpan> {
        let mut escaped = false;
        let mut i = quote + 1;
        loop {
            match self.at(i) {
                Some(b'"') => {
                    return Ok(NameSpan {
                        start: quote + 1,
                        end: i,
                        quoted: true,
                        escaped,
                    });
                }
                Some(b'\\') => match self.at(i + 1) {
                    Some(b'\n') => {
                        return Err(self.fail(
                            i,
                            format!("backslash before end of line in a quoted {what}"),
                        ));
                    }
                    None => break,
                    Some(_) => {
                        escaped = true;
                        i += 2;
                    }
                },
                Some(0) => {
                    return Err(self.fail(i, format!("NUL byte in a quoted {what}")));
                }
                Some(_) => i += 1,
                None => break,
            }
        }
        Err(self.fail(
            quote,
            format!("the quoted {what} is not terminated (no closing '\"')"),
        ))
    }

    /// The metric name of `# HELP`, `# TYPE` or `# UNIT` at `start`: bare or quoted.
    #[inline(always)]
    fn metadata_name(&self, start: usize, keyword: &str) -> Parsed<NameSpan> {
        match self.at(start) {
            Some(c) if METRIC_START[usize::from(c)] => Ok(NameSpan::bare(
                start,
                scan(self.body.as_bytes(), start + 1, &METRIC_CHAR),
            )),
            _ => self.quoted_metadata_name(start, keyword),
        }
    }

    /// [`Parser::metadata_name`] when the name is not bare: quoted, or an error.
    #[cold]
    fn quoted_metadata_name(&self, start: usize, keyword: &str) -> Parsed<NameSpan> {
        match self.at(start) {
            Some(b'"') => self.quoted_name(start, "metric name"),
            _ => Err(self.fail(
                start,
                format!(
                    "expected a metric name after '# {keyword}', found {}",
                    self.describe(start)
                ),
            )),
        }
    }

    fn line_of(&self, pos: usize) -> usize {
        let b = self.body.as_bytes();
        1 + b
            .get(..pos.min(b.len()))
            .map_or(0, |before| before.iter().filter(|&&c| c == b'\n').count())
    }

    fn value_error(&self, start: usize, token: &str, what: &str, e: FloatError) -> Fail {
        self.fail(
            start,
            format!("{what} {token:?} {}{}", e.describe(), crlf_hint(token)),
        )
    }

    // ----- Prometheus text format 0.0.4 -------------------------------------------------

    fn next_text(&mut self) -> Parsed<Option<RawSample<'a>>> {
        let b = self.body.as_bytes();
        loop {
            // Leading blanks are allowed on every line (`<*>[ \t]+` in promlex).
            let i = skip_blanks(b, self.pos);
            match b.get(i) {
                None => {
                    self.pos = i;
                    return Ok(None);
                }
                Some(b'\n') => self.pos = i + 1,
                Some(b'#') => self.pos = self.text_comment(i)?,
                Some(&c) if c == b'{' || METRIC_START[usize::from(c)] => {
                    return self.text_sample(i).map(Some);
                }
                Some(_) => {
                    return Err(self.fail(
                        i,
                        format!(
                            "expected a metric name, a comment or a blank line, found {}",
                            self.describe(i)
                        ),
                    ));
                }
            }
        }
    }

    /// A line starting with `#` at `hash`; returns the start of the next line.
    fn text_comment(&mut self, hash: usize) -> Parsed<usize> {
        let b = self.body.as_bytes();
        let end = line_end(b, hash);
        let next_line = (end + 1).min(b.len());
        // `#[ \t]+(HELP|TYPE)[ \t]+` starts a metadata line; anything else is a comment.
        let word = skip_blanks(b, hash + 1);
        let keyword = if word == hash + 1 {
            None
        } else if starts_with_at(b, word, b"HELP") {
            Some(Keyword::Help)
        } else if starts_with_at(b, word, b"TYPE") {
            Some(Keyword::Type)
        } else {
            None
        };
        let Some(keyword) = keyword else {
            return Ok(next_line);
        };
        let name_start = skip_blanks(b, word + 4);
        if name_start == word + 4 {
            // "# HELPER ..." or "# HELP" alone: a comment.
            return Ok(next_line);
        }
        let span = self.metadata_name(name_start, keyword.as_str())?;
        let name_end = span.after();
        let name = span;
        // A quoted name may hold a raw newline: the text runs to the end of the line that
        // holds the end of the name.
        let (end, next_line) = if name_end > end {
            let end = line_end(b, name_end);
            (end, (end + 1).min(b.len()))
        } else {
            (end, next_line)
        };
        let rest = self.slice(name_end, end);
        // Prometheus takes the rest of the line and drops its first byte, normally the blank
        // after the name; a rest of blanks only is empty text.
        let text = if rest.bytes().all(|c| c == b' ' || c == b'\t') {
            ""
        } else {
            match rest.chars().next() {
                Some(c) if c.is_ascii() => rest.get(1..).unwrap_or(""),
                _ => {
                    return Err(self.fail(
                        name_end,
                        format!(
                            "expected a blank after the metric name in '# {}', found {}",
                            keyword.as_str(),
                            self.describe(name_end)
                        ),
                    ));
                }
            }
        };
        match keyword {
            Keyword::Type => {
                let t = match text {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "summary" => MetricType::Summary,
                    "untyped" => MetricType::Unknown,
                    other => {
                        return Err(self.fail(
                            name_end,
                            format!(
                                "invalid metric type {other:?} for {} (expected counter, \
                                 gauge, histogram, summary or untyped){}",
                                self.shown(span),
                                crlf_hint(other)
                            ),
                        ));
                    }
                };
                self.set_family_type(name, t);
            }
            Keyword::Help => self.help = Some((name, text)),
            // The text format has no UNIT line; only HELP and TYPE get here.
            Keyword::Unit => self.unit = Some((name, text)),
        }
        Ok(next_line)
    }

    fn text_sample(&mut self, start: usize) -> Parsed<RawSample<'a>> {
        let b = self.body.as_bytes();
        // The name before the braces, unless the line starts with `{` (a quoted name inside).
        let mut outer = None;
        let mut i = start;
        if self.at(start) != Some(b'{') {
            let end = scan(b, start + 1, &METRIC_CHAR);
            outer = Some(self.slice(start, end));
            i = skip_blanks(b, end);
        } else {
            self.inner_name = None;
        }
        let mut labels = Labels::EMPTY;
        if self.at(i) == Some(b'{') {
            let (parsed, after) = self.text_labels(outer, i)?;
            labels = parsed;
            i = skip_blanks(b, after);
        }
        // A quoted name inside the braces is only looked at without a name before them
        // (with one, a quoted name inside is an error).
        let (name, inner) = match outer {
            Some(name) => (name, None),
            None => match self.inner_name {
                Some(span) => (self.shown(span), Some(span)),
                None => return Err(self.missing_name(start)),
            },
        };
        // The value is `[^{ \t\n]+`, then parsed as a float.
        let value_start = i;
        while let Some(&c) = b.get(i) {
            if matches!(c, b'{' | b' ' | b'\t' | b'\n') {
                break;
            }
            i += 1;
        }
        if i == value_start {
            return Err(self.fail(
                i,
                format!("expected a value after {name}, found {}", self.describe(i)),
            ));
        }
        let token = self.slice(value_start, i);
        let value = parse_value(token).map_err(|e| {
            let mut fail = self.value_error(value_start, token, &format!("value of {name}"), e);
            if outer.is_some_and(|o| start + o.len() == value_start) {
                // `http.server.duration 1`: the name stopped at the '.'.
                fail.message
                    .push_str(&quoting_hint(self.at(value_start), "metric"));
            }
            fail
        })?;
        i = skip_blanks(b, i);
        let mut timestamp_ms = None;
        match self.at(i) {
            None => {}
            Some(b'\n') => i += 1,
            Some(c) if c.is_ascii_digit() => {
                // Text timestamps are `[0-9]+` milliseconds that fit an i64.
                let ts_start = i;
                while self.at(i).is_some_and(|c| c.is_ascii_digit()) {
                    i += 1;
                }
                let token = self.slice(ts_start, i);
                let ts = token.parse::<i64>().map_err(|_| {
                    self.fail(
                        ts_start,
                        format!("timestamp {token} of {name} is out of range"),
                    )
                })?;
                timestamp_ms = Some(ts);
                i = skip_blanks(b, i);
                match self.at(i) {
                    None => {}
                    Some(b'\n') => i += 1,
                    Some(_) => {
                        return Err(self.fail(
                            i,
                            format!(
                                "expected end of line after the timestamp of {name}, found {}",
                                self.describe(i)
                            ),
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(self.fail(
                    i,
                    format!(
                        "expected a timestamp (integer milliseconds) or end of line after the \
                         value of {name}, found {}",
                        self.describe(i)
                    ),
                ));
            }
        }
        self.pos = i;
        Ok(self.raw_sample(inner, name, labels, value, timestamp_ms))
    }

    /// The sample, named by the quoted name inside its braces when there is one.
    #[inline(always)]
    fn raw_sample(
        &self,
        inner: Option<NameSpan>,
        name: &'a str,
        labels: Labels<'a>,
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> RawSample<'a> {
        let labels = labels.with_float_label(self.float_label);
        match inner {
            Some(span) => RawSample {
                name: self.slice(span.start, span.end),
                name_escaped: span.escaped,
                labels,
                value,
                timestamp_ms,
            },
            None => RawSample {
                name,
                name_escaped: false,
                labels,
                value,
                timestamp_ms,
            },
        }
    }

    /// Records a `# TYPE` line, and which label Prometheus 3 rewrites in float form in the
    /// samples that follow it.
    fn set_family_type(&mut self, name: NameSpan, t: MetricType) {
        self.family_type = Some((name, t));
        self.float_label = match t {
            MetricType::Histogram => FloatLabel::Le,
            MetricType::Summary => FloatLabel::Quantile,
            _ => FloatLabel::None,
        };
    }

    /// The error for a sample without a metric name (`{a="1"} 1`, `{} 1`).
    #[cold]
    fn missing_name(&self, start: usize) -> Fail {
        self.fail(
            start,
            "a sample needs a metric name, before the braces or quoted inside them \
             ({\"http.server.duration\", code=\"200\"})"
                .to_string(),
        )
    }

    /// A label name for messages: quoted as written, or a bare name in quotes.
    fn label_display(&self, span: NameSpan) -> String {
        if span.quoted {
            self.shown(span).to_string()
        } else {
            format!("{:?}", self.shown(span))
        }
    }

    /// The label name at `start..end` (inside the quotes of a quoted one) for messages.
    fn label_shown(&self, (start, end): (usize, usize)) -> String {
        let quoted = self.at(end) == Some(b'"') && self.at(start.wrapping_sub(1)) == Some(b'"');
        self.label_display(NameSpan {
            start,
            end,
            quoted,
            escaped: false,
        })
    }

    /// A quoted string in a label set followed by `,` or `}`: the metric name (Prometheus
    /// 3). It may be given once, and not besides a name before the braces.
    #[cold]
    fn note_metric_name(&mut self, outer: Option<&str>, span: NameSpan) -> Parsed<()> {
        let first = match (outer, self.inner_name) {
            (Some(name), _) => Some(name),
            (None, Some(first)) => Some(self.shown(first)),
            (None, None) => None,
        };
        if let Some(first) = first {
            return Err(self.fail(
                span.start - 1,
                format!(
                    "the metric name is given twice: {first} and {}",
                    self.shown(span)
                ),
            ));
        }
        if span.start == span.end {
            return Err(self.fail(span.start - 1, "empty metric name \"\"".to_string()));
        }
        self.inner_name = Some(span);
        Ok(())
    }

    /// The error when the label name at `start..end` is not followed by '=' at `i`.
    fn expected_equal(&self, i: usize, name: (usize, usize)) -> Fail {
        let hint = if self.at(name.1) == Some(b'"') || name.1 != i {
            String::new()
        } else {
            quoting_hint(self.at(i), "label")
        };
        self.fail(
            i,
            format!(
                "expected '=' after label name {}, found {}{hint}",
                self.label_shown(name),
                self.describe(i)
            ),
        )
    }

    /// The quoted string opening at `quote` inside the braces (both formats; `text` allows
    /// blanks around `=`): the metric name when `,` or `}` follows it, which is recorded and
    /// the position of that separator returned, or a label name, whose value is read and the
    /// position after it returned with 1 when the label counts (its value is not empty).
    /// An exemplar (`sample_labels` false) has no metric name.
    #[cold]
    fn quoted_entry(
        &mut self,
        outer: Option<&str>,
        quote: usize,
        text: bool,
        sample_labels: bool,
    ) -> Parsed<(usize, usize)> {
        let b = self.body.as_bytes();
        let span = self.quoted_name(quote, "name")?;
        let blanks = |i| if text { skip_blanks(b, i) } else { i };
        let mut i = blanks(span.after());
        if matches!(self.at(i), Some(b',' | b'}')) {
            if !sample_labels {
                return Err(self.fail(
                    quote,
                    format!(
                        "expected '=' after label name {} in an exemplar (an exemplar has no \
                         metric name)",
                        self.shown(span)
                    ),
                ));
            }
            self.note_metric_name(outer, span)?;
            return Ok((i, 0));
        }
        if self.at(i) != Some(b'=') {
            return Err(self.expected_equal(i, (span.start, span.end)));
        }
        i = blanks(i + 1);
        let value_start = i;
        i = self.label_value(i, (span.start, span.end), text)?;
        if sample_labels {
            if span.start == span.end {
                return Err(self.fail(quote, "empty label name \"\"".to_string()));
            }
            if span.escaped {
                self.escaped_names = true;
                if span_text(self.body, span) == "__name__" {
                    return Err(self.reserved_name(quote));
                }
            }
            self.note_label_name(span.start, span.end)?;
        }
        Ok((i, usize::from(i - value_start > 2)))
    }

    /// The label set opening at `open` (a `{`); returns it and the position after `}`. A
    /// metric name quoted inside the braces is left in `inner_name`.
    ///
    /// Text format rules (promparse `parseLVals`): blanks between all tokens, a comma after
    /// each value optional (so a trailing comma is fine), label values may hold raw newlines.
    /// A quoted string followed by `,` or `}` is the metric name (Prometheus 3); a quoted
    /// string followed by `=` is a label name.
    fn text_labels(&mut self, outer: Option<&'a str>, open: usize) -> Parsed<(Labels<'a>, usize)> {
        let b = self.body.as_bytes();
        self.names.clear();
        self.escaped_names = false;
        let mut count = 0;
        let mut i = open + 1;
        loop {
            i = skip_blanks(b, i);
            match self.at(i) {
                Some(b'}') => break,
                Some(c) if LABEL_START[usize::from(c)] => {}
                Some(b'"') => {
                    let (next, counted) = self.quoted_entry(outer, i, true, true)?;
                    count += counted;
                    i = skip_blanks(b, next);
                    if self.at(i) == Some(b',') {
                        i += 1;
                    }
                    continue;
                }
                _ => {
                    return Err(self.fail(
                        i,
                        format!(
                            "expected a label name or '}}' in the labels of {}, found {}",
                            outer.unwrap_or("the sample"),
                            self.describe(i)
                        ),
                    ));
                }
            }
            let name_start = i;
            i = scan(b, i + 1, &LABEL_CHAR);
            let name = (name_start, i);
            i = skip_blanks(b, i);
            if self.at(i) != Some(b'=') {
                return Err(self.expected_equal(i, name));
            }
            i = skip_blanks(b, i + 1);
            let value_start = i;
            i = self.label_value(i, name, true)?;
            self.note_label_name(name.0, name.1)?;
            // `""` (two quotes): an empty value, which Prometheus drops with its label.
            if i - value_start > 2 {
                count += 1;
            }
            i = skip_blanks(b, i);
            if self.at(i) == Some(b',') {
                i += 1;
            }
        }
        self.check_many_label_names()?;
        Ok((
            Labels::from_validated(self.slice(open + 1, i), count),
            i + 1,
        ))
    }

    /// A quoted label value starting at `quote`; returns the position after the closing
    /// quote. Any escape `\x` is accepted (and later unescaped as Prometheus does), but not
    /// a backslash before a newline. The text format allows raw newlines inside the quotes,
    /// OpenMetrics does not.
    fn label_value(&self, quote: usize, label: (usize, usize), newline_ok: bool) -> Parsed<usize> {
        if self.at(quote) != Some(b'"') {
            return Err(self.fail(
                quote,
                format!(
                    "expected '\"' to start the value of label {}, found {}",
                    self.label_shown(label),
                    self.describe(quote)
                ),
            ));
        }
        let mut i = quote + 1;
        loop {
            match self.at(i) {
                Some(b'"') => return Ok(i + 1),
                Some(b'\\') => match self.at(i + 1) {
                    Some(b'\n') => {
                        return Err(self.fail(
                            i,
                            format!(
                                "backslash before end of line in the value of label {}",
                                self.label_shown(label)
                            ),
                        ));
                    }
                    None => break,
                    Some(_) => i += 2,
                },
                Some(b'\n') if !newline_ok => {
                    return Err(self.fail(
                        i,
                        format!(
                            "the value of label {} is not terminated before the end of the line",
                            self.label_shown(label)
                        ),
                    ));
                }
                Some(_) => i += 1,
                None => break,
            }
        }
        Err(self.fail(
            quote,
            format!(
                "the value of label {} is not terminated (no closing '\"')",
                self.label_shown(label)
            ),
        ))
    }

    fn reserved_name(&self, at: usize) -> Fail {
        self.fail(
            at,
            "label name \"__name__\" is not allowed in a label set: it would be a second metric \
             name"
                .to_string(),
        )
    }

    /// Records the label name at `start..end` (inside the quotes of a quoted one) and
    /// checks it against the earlier ones, as written; escaped quoted names are compared
    /// again unescaped at the end of the label set.
    fn note_label_name(&mut self, start: usize, end: usize) -> Parsed<()> {
        // Compared as bytes: the spans come from the scanners, and equal bytes are equal
        // names.
        let b = self.body.as_bytes();
        let label = b.get(start..end).unwrap_or_default();
        if label == b"__name__" {
            return Err(self.reserved_name(start - usize::from(self.at(end) == Some(b'"'))));
        }
        let len = label.len();
        if self.names.len() < LINEAR_DUPLICATE_CHECK
            && self
                .names
                .iter()
                .any(|&(s, e)| e - s == len && b.get(s..e) == Some(label))
        {
            return Err(self.fail(
                start - usize::from(self.at(end) == Some(b'"')),
                format!("duplicate label name {}", self.label_shown((start, end))),
            ));
        }
        self.names.push((start, end));
        Ok(())
    }

    /// The duplicate checks left after each name was compared with the earlier ones: none
    /// for the usual small label set of plain names (inline, so that costs one branch).
    #[inline(always)]
    fn check_many_label_names(&mut self) -> Parsed<()> {
        if !self.escaped_names && self.names.len() <= LINEAR_DUPLICATE_CHECK {
            return Ok(());
        }
        self.check_label_names_further()
    }

    #[cold]
    fn check_label_names_further(&mut self) -> Parsed<()> {
        if self.escaped_names {
            return self.check_unescaped_label_names();
        }
        let b = self.body.as_bytes();
        let name = |&(s, e): &(usize, usize)| b.get(s..e).unwrap_or_default();
        self.sorted_names.clear();
        self.sorted_names.extend_from_slice(&self.names);
        self.sorted_names
            .sort_unstable_by(|a, b| name(a).cmp(name(b)));
        for pair in self.sorted_names.windows(2) {
            if let [a, b] = *pair
                && name(&a) == name(&b)
            {
                let later = if a.0 > b.0 { a } else { b };
                return Err(self.fail(
                    later.0 - usize::from(self.at(later.1) == Some(b'"')),
                    format!("duplicate label name {}", self.label_shown(later)),
                ));
            }
        }
        Ok(())
    }

    /// The duplicate check on unescaped names, for a label set with an escaped quoted name
    /// (`"a\\q"` and `"a\q"`, or `"x\ny"` and a raw newline, are one name each).
    #[cold]
    fn check_unescaped_label_names(&mut self) -> Parsed<()> {
        let body = self.body;
        let quoted = |end: usize| body.as_bytes().get(end) == Some(&b'"');
        let mut unescaped: Vec<(Cow<'a, str>, usize, usize)> = self
            .names
            .iter()
            .map(|&(start, end)| {
                let raw = body.get(start..end).unwrap_or("");
                let text = if quoted(end) && raw.contains('\\') {
                    Cow::Owned(unescape_label_value(raw))
                } else {
                    Cow::Borrowed(raw)
                };
                (text, start, end)
            })
            .collect();
        unescaped.sort_unstable();
        for pair in unescaped.windows(2) {
            if let [a, b] = pair
                && a.0 == b.0
            {
                let later = if a.1 > b.1 { (a.1, a.2) } else { (b.1, b.2) };
                return Err(self.fail(
                    later.0 - usize::from(quoted(later.1)),
                    format!("duplicate label name {}", self.label_shown(later)),
                ));
            }
        }
        Ok(())
    }

    // ----- OpenMetrics 1.0 ----------------------------------------------------------------

    fn next_om(&mut self) -> Parsed<Option<RawSample<'a>>> {
        loop {
            let i = self.pos;
            match self.at(i) {
                // An empty response is a scrape without samples in Prometheus (its scrape
                // loop never hands it to the parser), whatever the format.
                None if self.body.is_empty() => return Ok(None),
                None => {
                    return Err(self.fail(
                        i,
                        "missing '# EOF': an OpenMetrics body must end with it (the body may \
                         be truncated)"
                            .to_string(),
                    ));
                }
                Some(b'#') => match self.om_comment(i)? {
                    Some(next) => self.pos = next,
                    None => return Ok(None),
                },
                Some(c) if c == b'{' || METRIC_START[usize::from(c)] => {
                    return self.om_sample(i).map(Some);
                }
                Some(_) => {
                    return Err(self.fail(
                        i,
                        format!(
                            "expected a metric name or '# ' at the start of the line, found {} \
                             (OpenMetrics allows no blank lines and no leading blanks)",
                            self.describe(i)
                        ),
                    ));
                }
            }
        }
    }

    /// A `#` line at `hash`: HELP, TYPE, UNIT or EOF. Returns the start of the next line, or
    /// None at a valid `# EOF`.
    fn om_comment(&mut self, hash: usize) -> Parsed<Option<usize>> {
        let b = self.body.as_bytes();
        let word = hash + 2;
        if !starts_with_at(b, hash, b"# ") {
            return Err(self.fail(
                hash,
                "expected '# HELP', '# TYPE', '# UNIT' or '# EOF' (OpenMetrics has no other \
                 comments)"
                    .to_string(),
            ));
        }
        if starts_with_at(b, word, b"EOF") {
            let mut end = word + 3;
            if self.at(end) == Some(b'\n') {
                end += 1;
            }
            if end < b.len() {
                return Err(self.fail(end, "unexpected data after '# EOF'".to_string()));
            }
            self.pos = end;
            return Ok(None);
        }
        let keyword = if starts_with_at(b, word, b"HELP ") {
            Keyword::Help
        } else if starts_with_at(b, word, b"TYPE ") {
            Keyword::Type
        } else if starts_with_at(b, word, b"UNIT ") {
            Keyword::Unit
        } else {
            return Err(self.fail(
                word,
                "expected '# HELP', '# TYPE', '# UNIT' or '# EOF' (OpenMetrics has no other \
                 comments)"
                    .to_string(),
            ));
        };
        let kw = keyword.as_str();
        let span = self.metadata_name(word + 5, kw)?;
        let name_end = span.after();
        let name = span;
        if self.at(name_end) != Some(b' ') {
            return Err(self.fail(
                name_end,
                format!(
                    "expected ' ' and text after the metric name in '# {kw}', found {}",
                    self.describe(name_end)
                ),
            ));
        }
        let end = line_end(b, name_end);
        if end >= b.len() {
            return Err(self.fail(
                end,
                format!(
                    "expected end of line after '# {kw}' for {}, found end of input",
                    self.shown(span)
                ),
            ));
        }
        let text = self.slice(name_end + 1, end);
        match keyword {
            Keyword::Type => {
                let t = match text {
                    "counter" => MetricType::Counter,
                    "gauge" => MetricType::Gauge,
                    "histogram" => MetricType::Histogram,
                    "gaugehistogram" => MetricType::GaugeHistogram,
                    "summary" => MetricType::Summary,
                    "info" => MetricType::Info,
                    "stateset" => MetricType::StateSet,
                    "unknown" => MetricType::Unknown,
                    other => {
                        return Err(self.fail(
                            name_end + 1,
                            format!(
                                "invalid metric type {other:?} for {} (expected counter, \
                                 gauge, histogram, gaugehistogram, summary, info, stateset or \
                                 unknown){}",
                                self.shown(span),
                                crlf_hint(other)
                            ),
                        ));
                    }
                };
                self.set_family_type(name, t);
            }
            Keyword::Help => self.help = Some((name, text)),
            Keyword::Unit => {
                let is_suffix = span_text(self.body, span)
                    .strip_suffix(text)
                    .is_some_and(|stem| stem.ends_with('_'));
                if !text.is_empty() && !is_suffix {
                    return Err(self.fail(
                        name_end + 1,
                        format!(
                            "unit {text:?} is not a suffix of metric {}",
                            self.label_display(span)
                        ),
                    ));
                }
                self.unit = Some((name, text));
            }
        }
        Ok(Some(end + 1))
    }

    fn om_sample(&mut self, start: usize) -> Parsed<RawSample<'a>> {
        let b = self.body.as_bytes();
        self.exemplar = None;
        // `name` is the metric name as written, for messages; `inner` is the quoted name
        // when the line starts with `{` (Prometheus 3), read apart from the common case.
        let (name, inner, labels, mut i) = if self.at(start) == Some(b'{') {
            let (span, labels, after) = self.om_braces_first(start)?;
            (self.shown(span), Some(span), labels, after)
        } else {
            let name_end = scan(b, start + 1, &METRIC_CHAR);
            let name = self.slice(start, name_end);
            let mut i = name_end;
            let mut labels = Labels::EMPTY;
            if self.at(i) == Some(b'{') {
                let (parsed, after) = self.om_labels(Owner::Sample(name), i)?;
                labels = parsed;
                i = after;
            }
            (name, None, labels, i)
        };
        let value_start = i + 1;
        if self.at(i) != Some(b' ') || scan_om_token(b, value_start) == value_start {
            let at = if self.at(i) == Some(b' ') { i + 1 } else { i };
            let hint = if inner.is_none() && at == start + name.len() {
                quoting_hint(self.at(at), "metric")
            } else {
                String::new()
            };
            return Err(self.fail(
                at,
                format!(
                    "expected ' ' and a value after {name}, found {}{hint}",
                    self.describe(at)
                ),
            ));
        }
        i = scan_om_token(b, value_start);
        let token = self.slice(value_start, i);
        let value = parse_value(token)
            .map_err(|e| self.value_error(value_start, token, &format!("value of {name}"), e))?;
        let mut timestamp_ms = None;
        if self.at(i) == Some(b' ') && !starts_with_at(b, i, b" # {") {
            let ts_start = i + 1;
            i = scan_om_token(b, ts_start);
            if i == ts_start {
                return Err(self.fail(
                    i,
                    format!(
                        "expected a timestamp after the value of {name}, found {}",
                        self.describe(i)
                    ),
                ));
            }
            timestamp_ms = Some(self.om_timestamp(ts_start, i, Owner::Sample(name))?);
        }
        match self.at(i) {
            Some(b'\n') => i += 1,
            Some(b' ') if starts_with_at(b, i, b" # {") => i = self.om_exemplar(i + 3, name)?,
            None => {
                return Err(self.fail(
                    i,
                    format!(
                        "expected end of line after the sample {name}, found end of input \
                         (an OpenMetrics body must end with '# EOF'; it may be truncated)"
                    ),
                ));
            }
            Some(_) => {
                return Err(self.fail(
                    i,
                    format!(
                        "expected end of line or an exemplar (' # {{...}} value') after the \
                         {} of {name}, found {}",
                        if timestamp_ms.is_some() {
                            "timestamp"
                        } else {
                            "value"
                        },
                        self.describe(i)
                    ),
                ));
            }
        }
        self.pos = i;
        Ok(self.raw_sample(inner, name, labels, value, timestamp_ms))
    }

    /// The label set of an OpenMetrics sample line that starts with `{`: it must hold the
    /// quoted metric name. Returns that name, the labels and the position after `}`.
    #[cold]
    fn om_braces_first(&mut self, start: usize) -> Parsed<(NameSpan, Labels<'a>, usize)> {
        self.inner_name = None;
        let (labels, after) = self.om_labels(Owner::BracesFirst, start)?;
        match self.inner_name {
            Some(span) => Ok((span, labels, after)),
            None => Err(self.missing_name(start)),
        }
    }

    /// OpenMetrics timestamps are seconds as a float; Prometheus keeps `trunc(s * 1000)` ms.
    /// NaN and infinite timestamps are errors, as in Prometheus; a finite one past the range
    /// of i64 milliseconds is `i64::MIN`, the value Go's conversion (`int64(s * 1000)`) gives
    /// it on amd64: a sample long before any storage's bounds, which Prometheus drops.
    fn om_timestamp(&self, start: usize, end: usize, name: Owner<'_>) -> Parsed<i64> {
        let token = self.slice(start, end);
        let seconds = parse_value(token)
            .map_err(|e| self.value_error(start, token, &format!("timestamp of {name}"), e))?;
        if !seconds.is_finite() {
            return Err(self.fail(
                start,
                format!("timestamp {token:?} of {name} is not a finite time"),
            ));
        }
        let ms = (seconds * 1000.0).trunc();
        // i64::MIN is exactly -2^63; anything at or past ±2^63 does not fit.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if (-LIMIT..LIMIT).contains(&ms) {
            Ok(ms as i64)
        } else {
            Ok(i64::MIN)
        }
    }

    /// The label set opening at `open` with OpenMetrics rules: no blanks, a comma between
    /// labels. Returns it and the position after `}`. As in Prometheus 3, a comma may follow
    /// the last label, and a quoted string followed by `,` or `}` is the metric name (left
    /// in `inner_name`; not in an exemplar). Exemplar labels are not checked for duplicates:
    /// Prometheus would only drop the exemplar.
    fn om_labels(&mut self, owner: Owner<'_>, open: usize) -> Parsed<(Labels<'a>, usize)> {
        let b = self.body.as_bytes();
        let sample_labels = !matches!(owner, Owner::Exemplar(_));
        if sample_labels {
            self.names.clear();
            self.escaped_names = false;
        }
        let mut count = 0;
        let mut i = open + 1;
        if self.at(i) != Some(b'}') {
            loop {
                if self.at(i).is_some_and(|c| LABEL_START[usize::from(c)]) {
                    let name_start = i;
                    i = scan(b, i + 1, &LABEL_CHAR);
                    let name = (name_start, i);
                    if self.at(i) != Some(b'=') {
                        return Err(self.expected_equal(i, name));
                    }
                    let value_start = i + 1;
                    i = self.label_value(value_start, name, false)?;
                    if sample_labels {
                        self.note_label_name(name.0, name.1)?;
                    }
                    if i - value_start > 2 {
                        count += 1;
                    }
                } else {
                    match self.at(i) {
                        // After a comma that ends the list, as Prometheus 3 accepts.
                        Some(b'}') => break,
                        Some(b'"') => {
                            let (next, counted) =
                                self.quoted_entry(owner.outer(), i, false, sample_labels)?;
                            count += counted;
                            i = next;
                        }
                        _ => {
                            return Err(self.fail(
                                i,
                                format!(
                                    "expected a label name or '}}' in the labels of {owner}, \
                                     found {}",
                                    self.describe(i)
                                ),
                            ));
                        }
                    }
                }
                match self.at(i) {
                    Some(b'}') => break,
                    Some(b',') => i += 1,
                    _ => {
                        return Err(self.fail(
                            i,
                            format!(
                                "expected ',' or '}}' after a label of {owner}, found {}",
                                self.describe(i)
                            ),
                        ));
                    }
                }
            }
        }
        if sample_labels {
            self.check_many_label_names()?;
        }
        Ok((
            Labels::from_validated(self.slice(open + 1, i), count),
            i + 1,
        ))
    }

    /// The exemplar whose label set opens at `open`; returns the start of the next line.
    fn om_exemplar(&mut self, open: usize, name: &str) -> Parsed<usize> {
        let b = self.body.as_bytes();
        let owner = Owner::Exemplar(name);
        let (labels, mut i) = self.om_labels(owner, open)?;
        let value_start = i + 1;
        if self.at(i) != Some(b' ') || scan_om_token(b, value_start) == value_start {
            let at = if self.at(i) == Some(b' ') { i + 1 } else { i };
            return Err(self.fail(
                at,
                format!(
                    "expected ' ' and a value after the labels of {owner}, found {}",
                    self.describe(at)
                ),
            ));
        }
        i = scan_om_token(b, value_start);
        let token = self.slice(value_start, i);
        let value = parse_value(token)
            .map_err(|e| self.value_error(value_start, token, &format!("value of {owner}"), e))?;
        let mut timestamp_ms = None;
        if self.at(i) == Some(b' ') {
            let ts_start = i + 1;
            i = scan_om_token(b, ts_start);
            if i == ts_start {
                return Err(self.fail(
                    i,
                    format!(
                        "expected a timestamp after the value of {owner}, found {}",
                        self.describe(i)
                    ),
                ));
            }
            timestamp_ms = Some(self.om_timestamp(ts_start, i, owner)?);
        }
        match self.at(i) {
            Some(b'\n') => i += 1,
            None => {
                return Err(self.fail(
                    i,
                    format!(
                        "expected end of line after {owner}, found end of input (an \
                         OpenMetrics body must end with '# EOF'; it may be truncated)"
                    ),
                ));
            }
            Some(_) => {
                return Err(self.fail(
                    i,
                    format!(
                        "expected end of line after {owner}, found {}",
                        self.describe(i)
                    ),
                ));
            }
        }
        self.exemplar = Some(Exemplar {
            labels,
            value,
            timestamp_ms,
        });
        Ok(i)
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Sample<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let parsed = match self.format {
            Format::Text => self.next_text(),
            Format::OpenMetrics => self.next_om(),
        };
        match parsed {
            Ok(Some(sample)) => Some(Ok(sample.into_sample())),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(fail) => {
                self.done = true;
                self.exemplar = None;
                Some(Err(ParseError {
                    line: self.line_of(fail.pos),
                    message: fail.message,
                }))
            }
        }
    }
}

impl std::iter::FusedIterator for Parser<'_> {}
