//! PromQL templates for `promql:` variables: query text with per-pod placeholders
//! (`{{pod}}`, `{{namespace}}`, `{{node}}`, `{{podIP}}`, `{{label "key"}}`) that are
//! substituted, escaped, inside PromQL string literals.
//!
//! Placeholders are only accepted inside `'...'` or `"..."` literals: a value substituted
//! anywhere else could change the query's structure (PromQL injection through a label value).
//! `Template::parse` also checks quotes and brackets balance, so a typo is reported at load
//! with its column, not by Prometheus at the first evaluation.

use std::fmt;

use super::scan::QueryError;

/// Longest accepted PromQL template, in bytes (before substitution).
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;

/// A per-pod value a template can reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Placeholder {
    Pod,
    Namespace,
    Node,
    PodIp,
    /// `{{label "key"}}`: the value of the pod's label `key`.
    Label(String),
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placeholder::Pod => f.write_str("{{pod}}"),
            Placeholder::Namespace => f.write_str("{{namespace}}"),
            Placeholder::Node => f.write_str("{{node}}"),
            Placeholder::PodIp => f.write_str("{{podIP}}"),
            Placeholder::Label(key) => write!(f, "{{{{label {key:?}}}}}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// A placeholder inside a string literal delimited by `quote`.
    Value {
        placeholder: Placeholder,
        quote: char,
    },
}

/// A compiled `promql:` template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The template as written in the rule.
    pub source: String,
    parts: Vec<Part>,
    /// The longest range (`[5m]`, or a subquery's `[1h:1m]`) in the query, in ms; 0 if none.
    longest_range_ms: i64,
}

/// A placeholder has no value for this pod (e.g. a label the pod lacks).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{placeholder} has no value: {reason}")]
pub struct RenderError {
    pub placeholder: Placeholder,
    pub reason: String,
}

fn column_at(src: &str, byte: usize) -> usize {
    src.get(..byte).map_or(0, |s| s.chars().count()) + 1
}

fn error_at(src: &str, byte: usize, message: impl Into<String>) -> QueryError {
    QueryError {
        column: column_at(src, byte),
        message: message.into(),
    }
}

/// The range of a `[...]` body in ms: `5m`, `1h30m`, or a subquery's `1h:1m` (its range
/// part). 0 when it is not a duration Prometheus would accept (Prometheus reports that).
fn range_ms(inside: &str) -> i64 {
    let range = inside.split(':').next().unwrap_or("").trim();
    let mut total: i64 = 0;
    let mut rest = range;
    if rest.is_empty() {
        return 0;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Some(n) = rest.get(..digits).and_then(|d| d.parse::<i64>().ok()) else {
            return 0;
        };
        rest = rest.get(digits..).unwrap_or("");
        let (factor, len) = if rest.starts_with("ms") {
            (1, 2)
        } else {
            match rest.chars().next() {
                Some('s') => (1_000, 1),
                Some('m') => (60_000, 1),
                Some('h') => (3_600_000, 1),
                Some('d') => (86_400_000, 1),
                Some('w') => (7 * 86_400_000, 1),
                Some('y') => (365 * 86_400_000, 1),
                _ => return 0,
            }
        };
        rest = rest.get(len..).unwrap_or("");
        total = total.saturating_add(n.saturating_mul(factor));
    }
    total
}

fn closing(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, QueryError> {
        if src.len() > MAX_TEMPLATE_BYTES {
            return Err(QueryError {
                column: 1,
                message: format!(
                    "query is {} bytes long; the limit is {MAX_TEMPLATE_BYTES}",
                    src.len()
                ),
            });
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut longest_range_ms = 0;
        let mut brackets: Vec<(char, usize)> = Vec::new();
        // The open string literal: its quote and where it started.
        let mut string: Option<(char, usize)> = None;
        let mut pos = 0;
        while let Some(c) = src.get(pos..).and_then(|rest| rest.chars().next()) {
            let rest = src.get(pos..).unwrap_or("");
            if rest.starts_with("{{") {
                let (placeholder, end) = parse_placeholder(src, pos)?;
                match string {
                    Some((quote @ ('"' | '\''), _)) => {
                        if !text.is_empty() {
                            parts.push(Part::Text(std::mem::take(&mut text)));
                        }
                        parts.push(Part::Value { placeholder, quote });
                    }
                    Some(_) => {
                        return Err(error_at(
                            src,
                            pos,
                            "placeholders cannot be used in `raw` strings, which cannot escape \
                             values; use \"...\" or '...'",
                        ));
                    }
                    None => {
                        return Err(error_at(
                            src,
                            pos,
                            format!(
                                "{placeholder} must be inside a PromQL string literal, e.g. \
                                 pod=\"{placeholder}\", so its value cannot change the query"
                            ),
                        ));
                    }
                }
                pos = end;
                continue;
            }
            let mut len = c.len_utf8();
            match string {
                Some((quote, start)) => {
                    if c == '\\' && quote != '`' {
                        // Keep the escape and the escaped character together.
                        if let Some(next) = src.get(pos + 1..).and_then(|r| r.chars().next()) {
                            len += next.len_utf8();
                        }
                    } else if c == quote {
                        string = None;
                    } else if c == '\n' && quote != '`' {
                        return Err(error_at(src, start, "unterminated string literal"));
                    }
                }
                None => match c {
                    '"' | '\'' | '`' => string = Some((c, pos)),
                    '#' => {
                        // A comment runs to the end of the line.
                        len = rest.find('\n').unwrap_or(rest.len());
                    }
                    '(' | '[' | '{' => brackets.push((c, pos)),
                    ')' | ']' | '}' => match brackets.pop() {
                        Some((open, at)) if closing(open) == c => {
                            if c == ']' {
                                let inside = src.get(at + 1..pos).unwrap_or("");
                                longest_range_ms = longest_range_ms.max(range_ms(inside));
                            }
                        }
                        Some((open, at)) => {
                            return Err(error_at(
                                src,
                                pos,
                                format!(
                                    "'{c}' does not match the '{open}' at column {}",
                                    column_at(src, at)
                                ),
                            ));
                        }
                        None => {
                            return Err(error_at(src, pos, format!("unbalanced '{c}'")));
                        }
                    },
                    _ => {}
                },
            }
            text.push_str(src.get(pos..pos + len).unwrap_or(""));
            pos += len;
        }
        if let Some((_, start)) = string {
            return Err(error_at(src, start, "unterminated string literal"));
        }
        if let Some((open, at)) = brackets.pop() {
            return Err(error_at(src, at, format!("'{open}' is never closed")));
        }
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template {
            source: src.to_string(),
            parts,
            longest_range_ms,
        })
    }

    /// The longest range the query reads (`[5m]`; a subquery's `[1h:1m]` counts 1h), in ms;
    /// 0 for a query without ranges. A series younger than this cannot fill the window yet.
    pub fn longest_range_ms(&self) -> i64 {
        self.longest_range_ms
    }

    /// True when the query has no per-pod placeholder: it runs once per rule per interval
    /// and its result is joined to pods by label.
    pub fn is_batched(&self) -> bool {
        self.placeholders().next().is_none()
    }

    /// The placeholders used, in order of appearance (repeats included).
    pub fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.parts.iter().filter_map(|p| match p {
            Part::Value { placeholder, .. } => Some(placeholder),
            Part::Text(_) => None,
        })
    }

    /// The query for one pod: every placeholder replaced by its value, escaped for the
    /// surrounding string literal.
    pub fn render<'v>(
        &self,
        lookup: impl Fn(&Placeholder) -> Option<&'v str>,
    ) -> Result<String, RenderError> {
        let mut out = String::with_capacity(self.source.len() + 32);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value { placeholder, quote } => {
                    let Some(value) = lookup(placeholder) else {
                        return Err(RenderError {
                            placeholder: placeholder.clone(),
                            reason: missing_reason(placeholder),
                        });
                    };
                    escape_into(value, *quote, &mut out);
                }
            }
        }
        Ok(out)
    }
}

fn missing_reason(placeholder: &Placeholder) -> String {
    match placeholder {
        Placeholder::Pod => "the pod has no name".to_string(),
        Placeholder::Namespace => "the pod has no namespace".to_string(),
        Placeholder::Node => "the pod is not scheduled to a node yet".to_string(),
        Placeholder::PodIp => "the pod has no IP yet".to_string(),
        Placeholder::Label(key) => format!("the pod has no label {key:?}"),
    }
}

/// Escapes a value for a PromQL string literal delimited by `quote`.
fn escape_into(value: &str, quote: char, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
}

/// Parses the placeholder starting at `start` (on `{{`); returns it and the byte after `}}`.
fn parse_placeholder(src: &str, start: usize) -> Result<(Placeholder, usize), QueryError> {
    let body_start = start + 2;
    let rest = src.get(body_start..).unwrap_or("");
    // Find the closing `}}`, skipping quoted text (the key of `label "key"`).
    let mut quote: Option<char> = None;
    let mut end = None;
    let mut iter = rest.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '}' if matches!(iter.peek(), Some((_, '}'))) => {
                    end = Some(i);
                    break;
                }
                '{' if matches!(iter.peek(), Some((_, '{'))) => break,
                _ => {}
            },
        }
    }
    let Some(end) = end else {
        return Err(error_at(
            src,
            start,
            "unterminated placeholder: '{{' without '}}'",
        ));
    };
    let body = rest.get(..end).unwrap_or("").trim();
    let placeholder = match body {
        "pod" => Placeholder::Pod,
        "namespace" => Placeholder::Namespace,
        "node" => Placeholder::Node,
        "podIP" => Placeholder::PodIp,
        _ => {
            let key = body
                .strip_prefix("label")
                .filter(|r| r.starts_with(char::is_whitespace))
                .map(str::trim)
                .and_then(|r| {
                    let q = r.chars().next().filter(|q| *q == '"' || *q == '\'')?;
                    r.get(1..)?.strip_suffix(q)
                })
                .filter(|k| !k.is_empty() && !k.contains(['"', '\'']));
            match key {
                Some(key) => Placeholder::Label(key.to_string()),
                None => {
                    return Err(error_at(
                        src,
                        start,
                        format!(
                            "unknown placeholder {{{{{body}}}}}; use {{{{pod}}}}, \
                             {{{{namespace}}}}, {{{{node}}}}, {{{{podIP}}}} or \
                             {{{{label \"key\"}}}}"
                        ),
                    ));
                }
            }
        }
    };
    Ok((placeholder, body_start + end + 2))
}
