//! The label set of a sample, borrowed from the exposition body.
//!
//! The parser validates a label set once and keeps only the slice between its braces; the
//! accessors re-read that slice on demand. That keeps parsing free of allocation: only a value
//! that contains an escape sequence is copied, and only when it is read.

use std::borrow::Cow;
use std::fmt;

/// The labels of one sample (the metric name is not among them), in exposition order.
///
/// Values are unescaped the way Prometheus does it: `\\` → `\`, `\"` → `"`, `\n` → newline;
/// any other backslash sequence is kept as written. A label written with an empty value is
/// left out, as Prometheus leaves it out: in its data model an empty value is the same as no
/// label.
#[derive(Clone, Copy, Default)]
pub struct Labels<'a> {
    /// The validated text between `{` and `}`.
    raw: &'a str,
    len: usize,
}

impl<'a> Labels<'a> {
    /// A label set without labels.
    pub const EMPTY: Labels<'static> = Labels { raw: "", len: 0 };

    /// `raw` must already be validated by the parser; `len` is its number of labels with a
    /// non-empty value.
    pub(crate) fn from_validated(raw: &'a str, len: usize) -> Labels<'a> {
        Labels { raw, len }
    }

    /// Iterates over `(name, value)` pairs in exposition order.
    pub fn iter(&self) -> LabelsIter<'a> {
        LabelsIter { rest: self.raw }
    }

    /// The value of label `name`, if the sample has it.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The number of labels (those with a non-empty value).
    pub fn len(&self) -> usize {
        self.len
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
                .all(|(n, v)| other.get(n).as_deref() == Some(&*v))
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
            f.write_str(name)?;
            f.write_str("=\"")?;
            write_escaped(f, &value)?;
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

impl<'a> IntoIterator for Labels<'a> {
    type Item = (&'a str, Cow<'a, str>);
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> LabelsIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Labels<'a> {
    type Item = (&'a str, Cow<'a, str>);
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> LabelsIter<'a> {
        self.iter()
    }
}

/// Iterator over the labels of a sample; see [`Labels::iter`].
#[derive(Clone)]
pub struct LabelsIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (name, raw_value, escaped) = self.next_raw()?;
            if raw_value.is_empty() {
                continue;
            }
            let value = if escaped {
                Cow::Owned(unescape_label_value(raw_value))
            } else {
                Cow::Borrowed(raw_value)
            };
            return Some((name, value));
        }
    }
}

impl<'a> LabelsIter<'a> {
    /// The next label as written: name, value still escaped, and whether it has escapes.
    fn next_raw(&mut self) -> Option<(&'a str, &'a str, bool)> {
        // The text was validated by the parser, so this only has to find the pieces again.
        // It accepts the union of both formats' spellings: separators and blanks between
        // tokens, and a value that runs to the first unescaped quote.
        let s = self.rest;
        let b = s.as_bytes();
        let at = |i: usize| b.get(i).copied();
        let mut i = 0;
        while matches!(at(i), Some(b' ' | b'\t' | b',')) {
            i += 1;
        }
        let name_start = i;
        while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
            i += 1;
        }
        let name_end = i;
        while matches!(at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        let found_eq = at(i) == Some(b'=');
        i += 1;
        while matches!(at(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        if name_end == name_start || !found_eq || at(i) != Some(b'"') {
            self.rest = "";
            return None;
        }
        i += 1;
        let value_start = i;
        let mut escaped = false;
        loop {
            match at(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(_) => i += 1,
                None => {
                    self.rest = "";
                    return None;
                }
            }
        }
        let (Some(name), Some(raw_value)) = (s.get(name_start..name_end), s.get(value_start..i))
        else {
            self.rest = "";
            return None;
        };
        self.rest = s.get(i + 1..).unwrap_or("");
        Some((name, raw_value, escaped))
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

    fn pairs<'a>(l: &Labels<'a>) -> Vec<(&'a str, String)> {
        l.iter().map(|(n, v)| (n, v.into_owned())).collect()
    }

    #[test]
    fn iterates_in_order_and_borrows_unescaped_values() {
        let l = labels(r#"code="200",path="/api""#, 2);
        assert_eq!(
            pairs(&l),
            vec![("code", "200".to_string()), ("path", "/api".to_string())]
        );
        assert!(l.iter().all(|(_, v)| matches!(v, Cow::Borrowed(_))));
        assert_eq!(l.len(), 2);
        assert!(!l.is_empty());
    }

    #[test]
    fn reads_text_format_spacing_and_trailing_comma() {
        let l = labels(r#" quantile = "0.5" , a= "b", "#, 2);
        assert_eq!(
            pairs(&l),
            vec![("quantile", "0.5".to_string()), ("a", "b".to_string())]
        );
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
        assert_eq!(pairs(&l), vec![("b", "x".to_string())]);
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
