//! The label set of a sample, borrowed from the exposition body.
//!
//! The parser validates a label set once and keeps only the slice between its braces; the
//! accessors re-read that slice on demand. That keeps parsing free of allocation: only a value
//! or a quoted label name that contains an escape sequence is copied, and only when it is read.

use std::borrow::Cow;
use std::fmt;

use super::float_form::openmetrics_float_form;

/// The labels of one sample (the metric name is not among them), in exposition order.
///
/// Values are unescaped the way Prometheus does it: `\\` → `\`, `\"` → `"`, `\n` → newline;
/// any other backslash sequence is kept as written. Quoted label names (`"service.name"="x"`)
/// are unescaped the same way. A label written with an empty value is left out, as Prometheus
/// leaves it out: in its data model an empty value is the same as no label. A metric name
/// written inside the braces (`{"http.server.duration", ...}`) is not a label.
///
/// After a `# TYPE ... histogram` line the value of `le`, and after `# TYPE ... summary` the
/// value of `quantile`, is read in the OpenMetrics float form Prometheus 3 stores: `le="1"`
/// is `le="1.0"`, `le="1e6"` is `le="1e+06"` (a value that is not a number stays as written).
#[derive(Clone, Copy, Default)]
pub struct Labels<'a> {
    /// The validated text between `{` and `}`.
    raw: &'a str,
    /// 32 bits, so that with `float_label` the whole is no larger than a slice and a
    /// `usize` (samples are moved by value on the hot path).
    len: u32,
    float_label: FloatLabel,
}

/// The label whose value Prometheus 3 rewrites in OpenMetrics float form
/// (`normalizeFloatsInLabelValues` in its `model/textparse`). It goes by the type of the last
/// `# TYPE` line, whichever family the sample belongs to, as Prometheus's parsers do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum FloatLabel {
    #[default]
    None,
    /// `le`, after `# TYPE <name> histogram` (not `gaugehistogram`).
    Le,
    /// `quantile`, after `# TYPE <name> summary`.
    Quantile,
}

impl FloatLabel {
    #[inline]
    fn name(self) -> Option<&'static str> {
        match self {
            FloatLabel::None => None,
            FloatLabel::Le => Some("le"),
            FloatLabel::Quantile => Some("quantile"),
        }
    }
}

impl<'a> Labels<'a> {
    /// A label set without labels.
    pub const EMPTY: Labels<'static> = Labels {
        raw: "",
        len: 0,
        float_label: FloatLabel::None,
    };

    /// `raw` must already be validated by the parser; `len` is its number of labels with a
    /// non-empty value.
    pub(crate) fn from_validated(raw: &'a str, len: usize) -> Labels<'a> {
        Labels {
            raw,
            len: u32::try_from(len).unwrap_or(u32::MAX),
            float_label: FloatLabel::None,
        }
    }

    /// The same labels, with `label`'s value read in OpenMetrics float form.
    #[inline]
    pub(crate) fn with_float_label(self, label: FloatLabel) -> Labels<'a> {
        Labels {
            float_label: label,
            ..self
        }
    }

    /// Iterates over `(name, value)` pairs in exposition order.
    pub fn iter(&self) -> LabelsIter<'a> {
        LabelsIter {
            rest: self.raw,
            float_label: self.float_label,
        }
    }

    /// The value of label `name`, if the sample has it.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The number of labels (those with a non-empty value).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the sample has no labels.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Equal when both hold the same names with the same values, in any order.
impl PartialEq for Labels<'_> {
    fn eq(&self, other: &Labels<'_>) -> bool {
        // Names are unique within a label set (the parser rejects duplicates).
        self.len == other.len
            && self
                .iter()
                .all(|(n, v)| other.get(&n).as_deref() == Some(&*v))
    }
}

impl Eq for Labels<'_> {}

impl fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Exposition syntax: `{name="value",...}` with values re-escaped; nothing when empty.
impl fmt::Display for Labels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return Ok(());
        }
        f.write_str("{")?;
        for (i, (name, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write_label_pair(f, &name, &value)?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for Labels<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> LabelsIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Labels<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> LabelsIter<'a> {
        self.iter()
    }
}

/// Iterator over the labels of a sample; see [`Labels::iter`].
#[derive(Clone)]
pub struct LabelsIter<'a> {
    rest: &'a str,
    float_label: FloatLabel,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = (Cow<'a, str>, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (name, name_escaped, raw_value, value_escaped) = self.next_raw()?;
            if raw_value.is_empty() {
                continue;
            }
            let name = unescaped(name, name_escaped);
            let value = unescaped(raw_value, value_escaped);
            let value = match self.float_label.name() {
                Some(label) if name == label => float_form(value),
                _ => value,
            };
            return Some((name, value));
        }
    }
}

/// An `le` or `quantile` value in OpenMetrics float form; copied only when that differs from
/// what was written.
#[inline]
fn float_form(value: Cow<'_, str>) -> Cow<'_, str> {
    match openmetrics_float_form(&value) {
        Some(form) => Cow::Owned(form),
        None => value,
    }
}

#[inline]
fn unescaped(raw: &str, escaped: bool) -> Cow<'_, str> {
    if escaped {
        Cow::Owned(unescape_label_value(raw))
    } else {
        Cow::Borrowed(raw)
    }
}

impl<'a> LabelsIter<'a> {
    /// The next label as written: name and value still escaped, each with whether it has
    /// escapes. A metric name written inside the braces is skipped.
    fn next_raw(&mut self) -> Option<(&'a str, bool, &'a str, bool)> {
        // The text was validated by the parser, so this only has to find the pieces again.
        // It accepts the union of both formats' spellings: separators and blanks between
        // tokens, names bare or quoted, and a value that runs to the first unescaped quote.
        loop {
            let s = self.rest;
            let b = s.as_bytes();
            let at = |i: usize| b.get(i).copied();
            let mut i = 0;
            while matches!(at(i), Some(b' ' | b'\t' | b',')) {
                i += 1;
            }
            if i >= b.len() {
                // The end of the label set: the usual way out, decided here.
                self.rest = "";
                return None;
            }
            let mut name_start = i;
            while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
                i += 1;
            }
            let mut name_end = i;
            let mut name_escaped = false;
            if name_end == name_start {
                match quoted_name_at(s, i) {
                    QuotedName::Label {
                        start,
                        end,
                        escaped,
                    } => {
                        (name_start, name_end, name_escaped) = (start, end, escaped);
                        i = end + 1;
                    }
                    QuotedName::MetricName { after } => {
                        self.rest = s.get(after..).unwrap_or("");
                        continue;
                    }
                    QuotedName::Invalid => {
                        self.rest = "";
                        return None;
                    }
                }
            }
            while matches!(at(i), Some(b' ' | b'\t')) {
                i += 1;
            }
            let found_eq = at(i) == Some(b'=');
            i += 1;
            while matches!(at(i), Some(b' ' | b'\t')) {
                i += 1;
            }
            if !found_eq || at(i) != Some(b'"') {
                self.rest = "";
                return None;
            }
            i += 1;
            let value_start = i;
            let mut value_escaped = false;
            loop {
                match at(i) {
                    Some(b'"') => break,
                    Some(b'\\') => {
                        value_escaped = true;
                        i += 2;
                    }
                    Some(_) => i += 1,
                    None => {
                        self.rest = "";
                        return None;
                    }
                }
            }
            let (Some(name), Some(raw_value)) =
                (s.get(name_start..name_end), s.get(value_start..i))
            else {
                self.rest = "";
                return None;
            };
            self.rest = s.get(i + 1..).unwrap_or("");
            return Some((name, name_escaped, raw_value, value_escaped));
        }
    }
}

/// What a quoted string at the start of a label entry is.
enum QuotedName {
    /// A quoted label name: the text inside the quotes (`start..end`, `end` at the closing
    /// quote) and whether it has escapes.
    Label {
        start: usize,
        end: usize,
        escaped: bool,
    },
    /// The metric name (no `=` follows); the entry ends at `after`.
    MetricName {
        after: usize,
    },
    Invalid,
}

/// The quoted string opening at `i` in validated label text (names with dots are rare, so
/// this is kept out of the common path).
#[cold]
fn quoted_name_at(s: &str, mut i: usize) -> QuotedName {
    let b = s.as_bytes();
    let at = |i: usize| b.get(i).copied();
    if at(i) != Some(b'"') {
        return QuotedName::Invalid;
    }
    let start = i + 1;
    let mut escaped = false;
    i = start;
    loop {
        match at(i) {
            Some(b'"') => break,
            Some(b'\\') => {
                escaped = true;
                i += 2;
            }
            Some(_) => i += 1,
            None => return QuotedName::Invalid,
        }
    }
    let end = i;
    let mut j = end + 1;
    while matches!(at(j), Some(b' ' | b'\t')) {
        j += 1;
    }
    match at(j) {
        Some(b'=') => QuotedName::Label {
            start,
            end,
            escaped,
        },
        Some(b',') | None => QuotedName::MetricName { after: j },
        Some(_) => QuotedName::Invalid,
    }
}

impl std::iter::FusedIterator for LabelsIter<'_> {}

/// Undoes label-value escaping as Prometheus does: `\\`, `\"` and `\n` are replaced, any
/// other backslash sequence stays as written (backslash included).
pub(crate) fn unescape_label_value(raw: &str) -> String {
    unescape(raw, true)
}

/// Undoes escaping in `# HELP` text of the Prometheus text format, where only `\\` and `\n`
/// are escapes.
pub(crate) fn unescape_help_text(raw: &str) -> String {
    unescape(raw, false)
}

fn unescape(raw: &str, quote_is_escape: bool) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some('"') if quote_is_escape => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Whether `name` may be written unquoted as a metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, the
/// names every Prometheus version reads. Any other non-empty UTF-8 name is written quoted
/// inside the braces (`{"http.server.duration"}`), as Prometheus 3 writes it.
pub fn is_legacy_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Whether `name` may be written unquoted as a label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && bytes.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Writes `s` in double quotes, escaped for the exposition formats.
pub(crate) fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    write_escaped(f, s)?;
    f.write_str("\"")
}

/// Writes `name="value"`, the name quoted when it is not a legacy label name.
pub(crate) fn write_label_pair(f: &mut impl fmt::Write, name: &str, value: &str) -> fmt::Result {
    if is_legacy_label_name(name) {
        f.write_str(name)?;
    } else {
        write_quoted(f, name)?;
    }
    f.write_str("=")?;
    write_quoted(f, value)
}

/// Writes a series in exposition syntax: `name{a="1"}` for a legacy metric name (nothing
/// after the name without labels), `{"http.server.duration",a="1"}` for any other.
pub fn write_series<'a>(
    f: &mut impl fmt::Write,
    name: &str,
    labels: impl IntoIterator<Item = (Cow<'a, str>, Cow<'a, str>)>,
    braces_when_empty: bool,
) -> fmt::Result {
    let legacy = is_legacy_metric_name(name);
    let mut open = !legacy;
    if legacy {
        f.write_str(name)?;
    } else {
        f.write_str("{")?;
        write_quoted(f, name)?;
    }
    for (label, value) in labels {
        f.write_str(if open { "," } else { "{" })?;
        open = true;
        write_label_pair(f, &label, &value)?;
    }
    if open {
        f.write_str("}")
    } else if braces_when_empty {
        f.write_str("{}")
    } else {
        Ok(())
    }
}

/// Writes a label value escaped for the exposition formats.
pub(crate) fn write_escaped(f: &mut impl fmt::Write, value: &str) -> fmt::Result {
    let mut last = 0;
    for (i, c) in value.char_indices() {
        let escape = match c {
            '\\' => "\\\\",
            '"' => "\\\"",
            '\n' => "\\n",
            _ => continue,
        };
        f.write_str(value.get(last..i).unwrap_or(""))?;
        f.write_str(escape)?;
        last = i + 1;
    }
    f.write_str(value.get(last..).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(raw: &str, len: usize) -> Labels<'_> {
        Labels::from_validated(raw, len)
    }

    fn pairs(l: &Labels<'_>) -> Vec<(String, String)> {
        l.iter()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect()
    }

    fn want(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn iterates_in_order_and_borrows_unescaped_values() {
        let l = labels(r#"code="200",path="/api""#, 2);
        assert_eq!(pairs(&l), want(&[("code", "200"), ("path", "/api")]));
        assert!(l.iter().all(|(_, v)| matches!(v, Cow::Borrowed(_))));
        assert_eq!(l.len(), 2);
        assert!(!l.is_empty());
    }

    #[test]
    fn reads_text_format_spacing_and_trailing_comma() {
        let l = labels(r#" quantile = "0.5" , a= "b", "#, 2);
        assert_eq!(pairs(&l), want(&[("quantile", "0.5"), ("a", "b")]));
    }

    #[test]
    fn unescapes_like_prometheus() {
        let l = labels(
            r#"a="x\"y",b="C:\\temp",c="l1\nl2",d="keep \t and \q",e="\\n""#,
            5,
        );
        assert_eq!(l.get("a").as_deref(), Some("x\"y"));
        assert_eq!(l.get("b").as_deref(), Some("C:\\temp"));
        assert_eq!(l.get("c").as_deref(), Some("l1\nl2"));
        assert_eq!(l.get("d").as_deref(), Some("keep \\t and \\q"));
        assert_eq!(
            l.get("e").as_deref(),
            Some("\\n"),
            "escaped backslash, then n"
        );
        assert!(matches!(l.get("a"), Some(Cow::Owned(_))));
        assert_eq!(l.get("missing"), None);
    }

    #[test]
    fn help_text_keeps_escaped_quotes() {
        assert_eq!(unescape_help_text(r#"a \"b\" \\ \n"#), "a \\\"b\\\" \\ \n");
        assert_eq!(unescape_label_value(r#"a \"b\""#), "a \"b\"");
    }

    #[test]
    fn value_with_separators_inside_quotes() {
        let l = labels(r#"path="/api/v1,users",query="a=b&c=}d""#, 2);
        assert_eq!(l.get("path").as_deref(), Some("/api/v1,users"));
        assert_eq!(l.get("query").as_deref(), Some("a=b&c=}d"));
    }

    #[test]
    fn equality_ignores_order() {
        let a = labels(r#"a="1",b="2""#, 2);
        let b = labels(r#"b="2",a="1""#, 2);
        let c = labels(r#"b="2",a="3""#, 2);
        let d = labels(r#"a="1""#, 1);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_eq!(Labels::EMPTY, Labels::default());
    }

    #[test]
    fn display_re_escapes() {
        let l = labels(r#"msg="line1\nline2",q="say \"hi\"",p="C:\\t""#, 3);
        assert_eq!(
            l.to_string(),
            r#"{msg="line1\nline2",q="say \"hi\"",p="C:\\t"}"#
        );
        assert_eq!(Labels::EMPTY.to_string(), "");
        let raw_newline = labels("m=\"a\nb\"", 1);
        assert_eq!(raw_newline.to_string(), r#"{m="a\nb"}"#);
    }

    #[test]
    fn empty_values_are_left_out() {
        let l = labels(r#"a="",b="x",c="""#, 1);
        assert_eq!(pairs(&l), want(&[("b", "x")]));
        assert_eq!(l.get("a"), None);
        assert_eq!(l, labels(r#"b="x""#, 1));
        assert_eq!(l.to_string(), r#"{b="x"}"#);
    }

    #[test]
    fn malformed_raw_text_ends_iteration_without_panic() {
        for raw in ["a", "a=", "a=\"x", "=\"x\"", "a=x", "a=\"x\\"] {
            let l = labels(raw, 1);
            assert_eq!(l.iter().count(), 0, "{raw:?}");
        }
    }
}
