//! The parser proper: a hand-written scanner over the body for each format.
//!
//! The accepted language follows Prometheus 2.42's own lexers (`promlex.l`,
//! `openmetricslex.l`) and parsers rule by rule; the comments name the rule where it is not
//! obvious. Positions are byte offsets into the body; line numbers are computed from them only
//! when an error is reported, so the hot path does no line bookkeeping.

use std::borrow::Cow;

use super::float::{FloatError, parse_value};
use super::labels::{Labels, unescape_help_text, unescape_label_value};
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
    names: Vec<(usize, usize)>,
    sorted_names: Vec<(usize, usize)>,
    /// The last `# TYPE`: family name and type.
    family_type: Option<(&'a str, MetricType)>,
    /// The last `# HELP`: family name and the text as written (escaped).
    help: Option<(&'a str, &'a str)>,
    /// The last `# UNIT` (OpenMetrics): family name and unit.
    unit: Option<(&'a str, &'a str)>,
    /// The exemplar of the sample last returned.
    exemplar: Option<Exemplar<'a>>,
}

/// A parse failure before it is turned into a [`ParseError`]: where and what.
struct Fail {
    pos: usize,
    message: String,
}

type Parsed<T> = Result<T, Fail>;

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

/// Whose labels or timestamp a message is about; formatted only when an error is reported,
/// so naming it costs nothing on the hot path.
#[derive(Clone, Copy)]
enum Owner<'n> {
    Sample(&'n str),
    Exemplar(&'n str),
}

impl std::fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Sample(name) => f.write_str(name),
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
            family_type: None,
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
            Some((family, t)) if t.family_has(family, sample_name) => t,
            _ => MetricType::Unknown,
        }
    }

    /// The last `# HELP` line read: family name and unescaped text.
    pub fn help(&self) -> Option<(&'a str, Cow<'a, str>)> {
        let (name, raw) = self.help?;
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
    pub fn unit(&self) -> Option<(&'a str, &'a str)> {
        self.unit
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

    fn next_text(&mut self) -> Parsed<Option<Sample<'a>>> {
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
                Some(&c) if METRIC_START[usize::from(c)] => return self.text_sample(i).map(Some),
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
        if !self
            .at(name_start)
            .is_some_and(|c| METRIC_START[usize::from(c)])
        {
            return Err(self.fail(
                name_start,
                format!(
                    "expected a metric name after '# {}', found {}",
                    keyword.as_str(),
                    self.describe(name_start)
                ),
            ));
        }
        let name_end = scan(b, name_start + 1, &METRIC_CHAR);
        let name = self.slice(name_start, name_end);
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
                                "invalid metric type {other:?} for {name} (expected counter, \
                                 gauge, histogram, summary or untyped){}",
                                crlf_hint(other)
                            ),
                        ));
                    }
                };
                self.family_type = Some((name, t));
            }
            Keyword::Help => self.help = Some((name, text)),
            // The text format has no UNIT line; only HELP and TYPE get here.
            Keyword::Unit => self.unit = Some((name, text)),
        }
        Ok(next_line)
    }

    fn text_sample(&mut self, start: usize) -> Parsed<Sample<'a>> {
        let b = self.body.as_bytes();
        let name_end = scan(b, start + 1, &METRIC_CHAR);
        let name = self.slice(start, name_end);
        let mut i = skip_blanks(b, name_end);
        let mut labels = Labels::EMPTY;
        if self.at(i) == Some(b'{') {
            let (parsed, after) = self.text_labels(name, i)?;
            labels = parsed;
            i = skip_blanks(b, after);
        }
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
        let value = parse_value(token)
            .map_err(|e| self.value_error(value_start, token, &format!("value of {name}"), e))?;
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
        Ok(Sample {
            name,
            labels,
            value,
            timestamp_ms,
        })
    }

    /// The label set opening at `open` (a `{`); returns it and the position after `}`.
    ///
    /// Text format rules (promparse `parseLVals`): blanks between all tokens, a comma after
    /// each value optional (so a trailing comma is fine), label values may hold raw newlines.
    fn text_labels(&mut self, name: &str, open: usize) -> Parsed<(Labels<'a>, usize)> {
        let b = self.body.as_bytes();
        self.names.clear();
        let mut count = 0;
        let mut i = open + 1;
        loop {
            i = skip_blanks(b, i);
            match self.at(i) {
                Some(b'}') => break,
                Some(c) if LABEL_START[usize::from(c)] => {}
                _ => {
                    return Err(self.fail(
                        i,
                        format!(
                            "expected a label name or '}}' in the labels of {name}, found {}",
                            self.describe(i)
                        ),
                    ));
                }
            }
            let name_start = i;
            i = scan(b, i + 1, &LABEL_CHAR);
            let label = self.slice(name_start, i);
            i = skip_blanks(b, i);
            if self.at(i) != Some(b'=') {
                return Err(self.fail(
                    i,
                    format!(
                        "expected '=' after label name {label:?}, found {}",
                        self.describe(i)
                    ),
                ));
            }
            i = skip_blanks(b, i + 1);
            let value_start = i;
            i = self.label_value(i, label, true)?;
            self.note_label_name(name_start, label)?;
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
    fn label_value(&self, quote: usize, label: &str, newline_ok: bool) -> Parsed<usize> {
        if self.at(quote) != Some(b'"') {
            return Err(self.fail(
                quote,
                format!(
                    "expected '\"' to start the value of label {label:?}, found {}",
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
                            format!("backslash before end of line in the value of label {label:?}"),
                        ));
                    }
                    None => break,
                    Some(_) => i += 2,
                },
                Some(b'\n') if !newline_ok => {
                    return Err(self.fail(
                        i,
                        format!(
                            "the value of label {label:?} is not terminated before the end of \
                             the line"
                        ),
                    ));
                }
                Some(_) => i += 1,
                None => break,
            }
        }
        Err(self.fail(
            quote,
            format!("the value of label {label:?} is not terminated (no closing '\"')"),
        ))
    }

    fn note_label_name(&mut self, start: usize, label: &str) -> Parsed<()> {
        if label == "__name__" {
            return Err(self.fail(
                start,
                "label name \"__name__\" is not allowed in a label set: it would be a second \
                 metric name"
                    .to_string(),
            ));
        }
        if self.names.len() < LINEAR_DUPLICATE_CHECK {
            let body = self.body;
            if self
                .names
                .iter()
                .any(|&(s, e)| body.get(s..e) == Some(label))
            {
                return Err(self.fail(start, format!("duplicate label name {label:?}")));
            }
        }
        self.names.push((start, start + label.len()));
        Ok(())
    }

    fn check_many_label_names(&mut self) -> Parsed<()> {
        if self.names.len() <= LINEAR_DUPLICATE_CHECK {
            return Ok(());
        }
        let body = self.body;
        let name = |&(s, e): &(usize, usize)| body.get(s..e).unwrap_or("");
        self.sorted_names.clear();
        self.sorted_names.extend_from_slice(&self.names);
        self.sorted_names
            .sort_unstable_by(|a, b| name(a).cmp(name(b)));
        for pair in self.sorted_names.windows(2) {
            if let [a, b] = pair
                && name(a) == name(b)
            {
                return Err(self.fail(a.0.max(b.0), format!("duplicate label name {:?}", name(a))));
            }
        }
        Ok(())
    }

    // ----- OpenMetrics 1.0 ----------------------------------------------------------------

    fn next_om(&mut self) -> Parsed<Option<Sample<'a>>> {
        loop {
            let i = self.pos;
            match self.at(i) {
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
                Some(c) if METRIC_START[usize::from(c)] => return self.om_sample(i).map(Some),
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
        let name_start = word + 5;
        if !self
            .at(name_start)
            .is_some_and(|c| METRIC_START[usize::from(c)])
        {
            return Err(self.fail(
                name_start,
                format!(
                    "expected a metric name after '# {kw} ', found {}",
                    self.describe(name_start)
                ),
            ));
        }
        let name_end = scan(b, name_start + 1, &METRIC_CHAR);
        let name = self.slice(name_start, name_end);
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
                format!("expected end of line after '# {kw}' for {name}, found end of input"),
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
                                "invalid metric type {other:?} for {name} (expected counter, \
                                 gauge, histogram, gaugehistogram, summary, info, stateset or \
                                 unknown){}",
                                crlf_hint(other)
                            ),
                        ));
                    }
                };
                self.family_type = Some((name, t));
            }
            Keyword::Help => self.help = Some((name, text)),
            Keyword::Unit => {
                let is_suffix = name
                    .strip_suffix(text)
                    .is_some_and(|stem| stem.ends_with('_'));
                if !text.is_empty() && !is_suffix {
                    return Err(self.fail(
                        name_end + 1,
                        format!("unit {text:?} is not a suffix of metric {name:?}"),
                    ));
                }
                self.unit = Some((name, text));
            }
        }
        Ok(Some(end + 1))
    }

    fn om_sample(&mut self, start: usize) -> Parsed<Sample<'a>> {
        let b = self.body.as_bytes();
        self.exemplar = None;
        let name_end = scan(b, start + 1, &METRIC_CHAR);
        let name = self.slice(start, name_end);
        let mut i = name_end;
        let mut labels = Labels::EMPTY;
        if self.at(i) == Some(b'{') {
            let (parsed, after) = self.om_labels(Owner::Sample(name), i)?;
            labels = parsed;
            i = after;
        }
        let value_start = i + 1;
        if self.at(i) != Some(b' ') || scan_om_token(b, value_start) == value_start {
            let at = if self.at(i) == Some(b' ') { i + 1 } else { i };
            return Err(self.fail(
                at,
                format!(
                    "expected ' ' and a value after {name}, found {}",
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
        Ok(Sample {
            name,
            labels,
            value,
            timestamp_ms,
        })
    }

    /// OpenMetrics timestamps are seconds as a float; Prometheus keeps `trunc(s * 1000)` ms.
    fn om_timestamp(&self, start: usize, end: usize, name: Owner<'_>) -> Parsed<i64> {
        let token = self.slice(start, end);
        let seconds = parse_value(token)
            .map_err(|e| self.value_error(start, token, &format!("timestamp of {name}"), e))?;
        let ms = (seconds * 1000.0).trunc();
        // i64::MIN is exactly -2^63; anything at or past ±2^63 does not fit. NaN fails both.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if !(-LIMIT..LIMIT).contains(&ms) {
            return Err(self.fail(
                start,
                format!("timestamp {token:?} of {name} is not a finite time in range"),
            ));
        }
        Ok(ms as i64)
    }

    /// The label set opening at `open` with OpenMetrics rules: no blanks, a comma between
    /// labels and none after the last. Returns it and the position after `}`. Exemplar
    /// labels are not checked for duplicates: Prometheus would only drop the exemplar.
    fn om_labels(&mut self, owner: Owner<'_>, open: usize) -> Parsed<(Labels<'a>, usize)> {
        let b = self.body.as_bytes();
        let sample_labels = matches!(owner, Owner::Sample(_));
        if sample_labels {
            self.names.clear();
        }
        let mut count = 0;
        let mut i = open + 1;
        if self.at(i) != Some(b'}') {
            loop {
                if !self.at(i).is_some_and(|c| LABEL_START[usize::from(c)]) {
                    let hint = if self.at(i) == Some(b'}') {
                        " (OpenMetrics does not allow a trailing comma)"
                    } else {
                        ""
                    };
                    return Err(self.fail(
                        i,
                        format!(
                            "expected a label name in the labels of {owner}, found {}{hint}",
                            self.describe(i)
                        ),
                    ));
                }
                let name_start = i;
                i = scan(b, i + 1, &LABEL_CHAR);
                let label = self.slice(name_start, i);
                if self.at(i) != Some(b'=') {
                    return Err(self.fail(
                        i,
                        format!(
                            "expected '=' after label name {label:?}, found {}",
                            self.describe(i)
                        ),
                    ));
                }
                let value_start = i + 1;
                i = self.label_value(value_start, label, false)?;
                if sample_labels {
                    self.note_label_name(name_start, label)?;
                }
                if i - value_start > 2 {
                    count += 1;
                }
                match self.at(i) {
                    Some(b'}') => break,
                    Some(b',') => i += 1,
                    _ => {
                        return Err(self.fail(
                            i,
                            format!(
                                "expected ',' or '}}' after the value of label {label:?}, found {}",
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
            Ok(Some(sample)) => Some(Ok(sample)),
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
