//! Parser for the scrape-variable language: a PromQL subset that yields one number per pod.

use regex::Regex;

use super::QueryError;

/// Longest accepted query, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One label matcher; regexes are compiled once, fully anchored as in Prometheus.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    pub label: Box<str>,
    pub op: MatchOp,
    pub value: Box<str>,
    regex: Option<Regex>,
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == &*self.value,
            (MatchOp::NotEqual, _) => value != &*self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // Regex matchers always carry their compiled regex.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// `name{label="v", ...}`; `name` is `None` when only `{...}` was written (a `__name__`
/// equality matcher is folded into `name`).
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    pub name: Option<Box<str>>,
    pub matchers: Vec<Matcher>,
    /// The selector as written, for messages.
    pub text: Box<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFunc {
    Rate,
    Increase,
}

impl RangeFunc {
    pub fn name(self) -> &'static str {
        match self {
            RangeFunc::Rate => "rate",
            RangeFunc::Increase => "increase",
        }
    }
}

/// An expression yielding a vector of per-series values.
#[derive(Debug, Clone)]
pub(crate) enum VectorExpr {
    Instant(Selector),
    Range {
        func: RangeFunc,
        selector: Selector,
        range_ms: i64,
        /// The range as written (`1m`), for messages.
        range_text: Box<str>,
    },
}

impl VectorExpr {
    pub fn selector(&self) -> &Selector {
        match self {
            VectorExpr::Instant(s) | VectorExpr::Range { selector: s, .. } => s,
        }
    }

    pub fn range_ms(&self) -> i64 {
        match self {
            VectorExpr::Instant(_) => 0,
            VectorExpr::Range { range_ms, .. } => *range_ms,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Min,
    Max,
    Avg,
    Count,
}

impl AggOp {
    fn from_name(name: &str) -> Option<AggOp> {
        Some(match name {
            "sum" => AggOp::Sum,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "avg" => AggOp::Avg,
            "count" => AggOp::Count,
            _ => return None,
        })
    }
}

/// A whole query: it must yield one number.
#[derive(Debug, Clone)]
pub(crate) enum QueryExpr {
    /// A vector that must hold exactly one element at evaluation.
    Vector(VectorExpr),
    Aggregate {
        op: AggOp,
        inner: VectorExpr,
    },
    HistogramQuantile {
        q: f64,
        inner: VectorExpr,
    },
}

impl QueryExpr {
    pub fn vector(&self) -> &VectorExpr {
        match self {
            QueryExpr::Vector(v)
            | QueryExpr::Aggregate { inner: v, .. }
            | QueryExpr::HistogramQuantile { inner: v, .. } => v,
        }
    }
}

/// PromQL functions and operators that exist but are outside the supported subset, so the
/// error can say "not supported" instead of "unexpected".
const UNSUPPORTED_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count_over_time",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_sum",
    "holt_winters",
    "idelta",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "predict_linear",
    "quantile_over_time",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sqrt",
    "stddev_over_time",
    "sum_over_time",
    "time",
    "timestamp",
    "vector",
    "bottomk",
    "topk",
    "quantile",
    "stddev",
    "stdvar",
    "count_values",
    "group",
];

const SUPPORTED: &str = "sum, min, max, avg, count, rate, increase, histogram_quantile";

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    /// Parentheses open around the current position.
    depth: usize,
}

/// Deepest accepted parenthesis nesting.
const MAX_PAREN_DEPTH: usize = 64;

pub(crate) fn parse(src: &str) -> Result<QueryExpr, QueryError> {
    if src.len() > MAX_QUERY_BYTES {
        return Err(QueryError {
            column: 1,
            message: format!(
                "query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
                src.len()
            ),
        });
    }
    let mut p = Parser {
        src,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(p.error("empty query"));
    }
    let expr = p.query()?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.trailing_error());
    }
    Ok(expr)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn is_label_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Parser<'a> {
    fn column_at(&self, pos: usize) -> usize {
        self.src.get(..pos).map_or(0, |s| s.chars().count()) + 1
    }

    fn error_at(&self, pos: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            column: self.column_at(pos),
            message: message.into(),
        }
    }

    fn error(&self, message: impl Into<String>) -> QueryError {
        self.error_at(self.pos, message)
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips whitespace and `#` comments.
    fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else if c == '#' {
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Describes what is at the cursor, for "expected X, found Y" messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "the end of the query".to_string(),
            Some(c) => format!("'{c}'"),
        }
    }

    fn expect(&mut self, c: char, context: &str) -> Result<(), QueryError> {
        self.skip_ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(format!("expected '{c}' {context}, found {}", self.found())))
        }
    }

    fn word(&mut self, start: fn(char) -> bool, rest: fn(char) -> bool) -> Option<&'a str> {
        let begin = self.pos;
        match self.peek() {
            Some(c) if start(c) => {}
            _ => return None,
        }
        while let Some(c) = self.peek() {
            if rest(c) {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        self.src.get(begin..self.pos)
    }

    /// Looks at the next identifier without consuming it.
    fn peek_word(&mut self) -> Option<&'a str> {
        let save = self.pos;
        let w = self.word(is_name_start, is_name_char);
        self.pos = save;
        w
    }

    fn reject_grouping(&mut self, op: &str) -> Result<(), QueryError> {
        self.skip_ws();
        let at = self.pos;
        if let Some(w @ ("by" | "without")) = self.peek_word() {
            return Err(self.error_at(
                at,
                format!(
                    "`{op} {w} (...)` is not supported: a scrape query yields one number for \
                     the pod, so `{op}(...)` always aggregates over every series"
                ),
            ));
        }
        Ok(())
    }

    fn query(&mut self) -> Result<QueryExpr, QueryError> {
        self.skip_ws();
        if self.peek() == Some('(') {
            let open = self.pos;
            if self.depth >= MAX_PAREN_DEPTH {
                return Err(self.error(format!("parentheses nested deeper than {MAX_PAREN_DEPTH}")));
            }
            self.depth += 1;
            self.pos += 1;
            let inner = self.query()?;
            self.depth -= 1;
            self.skip_ws();
            if !self.eat(')') {
                return Err(self.error(format!(
                    "expected ')' to close the '(' at column {}, found {}",
                    self.column_at(open),
                    self.found()
                )));
            }
            return Ok(inner);
        }
        let start = self.pos;
        let Some(name) = self.peek_word() else {
            return self.vector().map(QueryExpr::Vector);
        };
        if let Some(op) = AggOp::from_name(name) {
            let save = self.pos;
            self.pos += name.len();
            self.reject_grouping(name)?;
            self.skip_ws();
            if self.peek() == Some('(') {
                self.pos += 1;
                let inner = self.vector_in(name)?;
                self.expect(')', &format!("to close {name}("))?;
                self.reject_grouping(name)?;
                return Ok(QueryExpr::Aggregate { op, inner });
            }
            self.pos = save;
        }
        if name == "histogram_quantile" {
            self.pos += name.len();
            self.skip_ws();
            if self.peek() == Some('(') {
                self.pos += 1;
                return self.histogram_quantile();
            }
            self.pos = start;
        }
        self.vector().map(QueryExpr::Vector)
    }

    fn histogram_quantile(&mut self) -> Result<QueryExpr, QueryError> {
        self.skip_ws();
        let q = self.number()?;
        self.expect(',', "after the quantile of histogram_quantile(q, buckets)")?;
        self.skip_ws();
        let at = self.pos;
        if let Some(w) = self.peek_word()
            && AggOp::from_name(w).is_some()
        {
            let save = self.pos;
            self.pos += w.len();
            self.skip_ws();
            let aggregates = matches!(self.peek(), Some('('))
                || matches!(self.peek_word(), Some("by" | "without"));
            self.pos = save;
            if aggregates {
                return Err(self.error_at(
                    at,
                    "histogram_quantile already sums the buckets by `le` over all series of \
                     the pod; pass the buckets directly, e.g. \
                     histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[1m]))",
                ));
            }
        }
        let inner = self.vector_in("histogram_quantile")?;
        self.expect(')', "to close histogram_quantile(")?;
        Ok(QueryExpr::HistogramQuantile { q, inner })
    }

    /// A vector expression as the argument of `context(...)`.
    fn vector_in(&mut self, context: &str) -> Result<VectorExpr, QueryError> {
        self.skip_ws();
        let at = self.pos;
        if let Some(w) = self.peek_word() {
            let save = self.pos;
            self.pos += w.len();
            self.skip_ws();
            let call = self.peek() == Some('(');
            self.pos = save;
            if call && (AggOp::from_name(w).is_some() || w == "histogram_quantile") {
                return Err(self.error_at(
                    at,
                    format!(
                        "{w}(...) cannot be nested inside {context}(...); \
                         use a selector, rate(...) or increase(...)"
                    ),
                ));
            }
        }
        self.vector()
    }

    /// `selector`, `rate(selector[range])` or `increase(selector[range])`.
    fn vector(&mut self) -> Result<VectorExpr, QueryError> {
        self.skip_ws();
        let start = self.pos;
        if self.peek() == Some('{') {
            return self.instant_selector(None, start);
        }
        let Some(name) = self.word(is_name_start, is_name_char) else {
            return Err(self.error(format!(
                "expected a metric name, a selector or a function ({SUPPORTED}), found {}{}",
                self.found(),
                self.quoted_name_hint()
            )));
        };
        self.reject_dotted_name(name, start)?;
        let after_name = self.pos;
        self.skip_ws();
        if self.peek() == Some('(') {
            let func = match name {
                "rate" => RangeFunc::Rate,
                "increase" => RangeFunc::Increase,
                _ if UNSUPPORTED_FUNCTIONS.contains(&name)
                    || AggOp::from_name(name).is_some()
                    || name == "histogram_quantile" =>
                {
                    return Err(self.error_at(
                        start,
                        format!("{name}(...) is not supported here; supported: {SUPPORTED}"),
                    ));
                }
                _ => {
                    return Err(self.error_at(
                        start,
                        format!("unknown function `{name}`; supported: {SUPPORTED}"),
                    ));
                }
            };
            self.pos += 1;
            self.skip_ws();
            let selector = self.selector()?;
            self.skip_ws();
            if !self.eat('[') {
                return Err(self.error(format!(
                    "expected '[' and a range after the selector in {}(), e.g. {}({}[1m]), found {}",
                    func.name(),
                    func.name(),
                    selector.text,
                    self.found()
                )));
            }
            self.skip_ws();
            let range_start = self.pos;
            let range_ms = self.duration()?;
            let range_text = self.src.get(range_start..self.pos).unwrap_or("").into();
            self.skip_ws();
            if !self.eat(']') {
                return Err(self.error("expected ']' after range duration"));
            }
            self.reject_modifiers()?;
            self.expect(')', &format!("to close {}(", func.name()))?;
            return Ok(VectorExpr::Range {
                func,
                selector,
                range_ms,
                range_text,
            });
        }
        self.pos = after_name;
        let v = self.instant_selector(Some(name), start)?;
        self.skip_ws();
        if self.peek() == Some('[') {
            return Err(self.error(
                "a range selector needs rate(...) or increase(...) around it; \
                 e.g. rate(x[1m])",
            ));
        }
        Ok(v)
    }

    fn reject_modifiers(&mut self) -> Result<(), QueryError> {
        self.skip_ws();
        let at = self.pos;
        if self.peek() == Some('@') {
            return Err(self.error("the `@` modifier is not supported"));
        }
        if self.peek_word() == Some("offset") {
            return Err(self.error_at(at, "the `offset` modifier is not supported"));
        }
        Ok(())
    }

    fn instant_selector(
        &mut self,
        name: Option<&'a str>,
        start: usize,
    ) -> Result<VectorExpr, QueryError> {
        let selector = self.selector_rest(name, start)?;
        self.reject_modifiers()?;
        Ok(VectorExpr::Instant(selector))
    }

    fn selector(&mut self) -> Result<Selector, QueryError> {
        let start = self.pos;
        if self.peek() == Some('{') {
            return self.selector_rest(None, start);
        }
        match self.word(is_name_start, is_name_char) {
            Some(name) => {
                self.reject_dotted_name(name, start)?;
                self.selector_rest(Some(name), start)
            }
            None => Err(self.error(format!(
                "expected a metric name or '{{', found {}{}",
                self.found(),
                self.quoted_name_hint()
            ))),
        }
    }

    /// When a quoted string stands where a metric name was expected: where it goes instead.
    fn quoted_name_hint(&self) -> &'static str {
        if matches!(self.peek(), Some('"' | '\'' | '`')) {
            " (a quoted metric name goes inside the braces: {\"http.server.duration\"})"
        } else {
            ""
        }
    }

    /// `http.server.duration` written bare: the name stops at the '.', which PromQL reads as
    /// nothing it knows. Say how to write it.
    fn reject_dotted_name(&self, name: &str, start: usize) -> Result<(), QueryError> {
        if self.peek() != Some('.') {
            return Ok(());
        }
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | ':' | '.' | '-')))
            .unwrap_or(rest.len());
        let full = format!("{name}{}", rest.get(..end).unwrap_or(""));
        Err(self.error_at(
            start,
            format!(
                "metric name `{full}` has characters other than letters, digits, '_' and ':'; \
                 quote it inside the braces, as in PromQL 3: {{{full:?}}}"
            ),
        ))
    }

    /// The optional `{...}` after a metric name (or the mandatory one without a name).
    ///
    /// As in PromQL 3, a label name may be quoted (`{"http.status"=~"5.."}`) and a quoted
    /// string alone names the metric (`{"http.server.duration", code="200"}`).
    fn selector_rest(
        &mut self,
        name: Option<&'a str>,
        start: usize,
    ) -> Result<Selector, QueryError> {
        let outer = name;
        let mut name: Option<Box<str>> = name.map(Into::into);
        let mut matchers = Vec::new();
        let save = self.pos;
        self.skip_ws();
        if self.eat('{') {
            loop {
                self.skip_ws();
                if self.eat('}') {
                    break;
                }
                let label_at = self.pos;
                let quoted = matches!(self.peek(), Some('"' | '\'' | '`'));
                let label: String = if quoted {
                    self.string()?
                } else if let Some(word) = self.word(is_label_start, is_label_char) {
                    word.to_string()
                } else {
                    return Err(self.error(format!(
                        "expected a label name, a quoted metric name or '}}', found {}",
                        self.found()
                    )));
                };
                self.skip_ws();
                if quoted && matches!(self.peek(), Some(',' | '}')) {
                    // `{"http.server.duration"}`: the metric name.
                    if let Some(outer) = outer {
                        return Err(self.error_at(
                            label_at,
                            format!(
                                "the metric name is given twice: `{outer}` before the braces \
                                 and {label:?} inside them"
                            ),
                        ));
                    }
                    self.name_matcher(&mut name, &mut matchers, label);
                    if self.eat(',') {
                        continue;
                    }
                    self.eat('}');
                    break;
                }
                if label.is_empty() {
                    return Err(self.error_at(label_at, "a label name must not be empty"));
                }
                let op_at = self.pos;
                let op = if self.eat('=') {
                    if self.eat('~') {
                        MatchOp::Regex
                    } else if self.eat('=') {
                        return Err(self.error_at(op_at, "use '=' to match a label, not '=='"));
                    } else {
                        MatchOp::Equal
                    }
                } else if self.eat('!') {
                    if self.eat('=') {
                        MatchOp::NotEqual
                    } else if self.eat('~') {
                        MatchOp::NotRegex
                    } else {
                        return Err(self.error_at(op_at, "expected '!=' or '!~'"));
                    }
                } else if quoted {
                    return Err(self.error(format!(
                        "expected a label matcher operator (=, !=, =~, !~) after the label name \
                         {label:?}, or ',' or '}}' after it if it is the metric name, found {}",
                        self.found()
                    )));
                } else if self.peek() == Some('.') {
                    return Err(self.error_at(
                        label_at,
                        format!(
                            "label name `{label}{}` has characters other than letters, digits \
                             and '_'; quote it, as in PromQL 3: \"{label}{}\"=\"...\"",
                            self.dotted_rest(),
                            self.dotted_rest()
                        ),
                    ));
                } else {
                    return Err(self.error(format!(
                        "expected a label matcher operator (=, !=, =~, !~) after `{label}`, found {}",
                        self.found()
                    )));
                };
                self.skip_ws();
                let value_at = self.pos;
                let value = self.string()?;
                if label == "__name__" && op == MatchOp::Equal {
                    if let Some(outer) = outer {
                        return Err(self.error_at(
                            label_at,
                            format!(
                                "the metric name is given twice: `{outer}` before the braces \
                                 and __name__={value:?} inside them"
                            ),
                        ));
                    }
                    self.name_matcher(&mut name, &mut matchers, value);
                } else {
                    let regex = match op {
                        MatchOp::Regex | MatchOp::NotRegex => {
                            Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                                self.error_at(value_at, format!("invalid regular expression: {e}"))
                            })?)
                        }
                        MatchOp::Equal | MatchOp::NotEqual => None,
                    };
                    matchers.push(Matcher {
                        label: label.into(),
                        op,
                        value: value.into(),
                        regex,
                    });
                }
                self.skip_ws();
                if self.eat(',') {
                    continue;
                }
                if self.eat('}') {
                    break;
                }
                return Err(self.error(format!(
                    "expected ',' or '}}' after a label matcher, found {}",
                    self.found()
                )));
            }
        } else {
            self.pos = save;
        }
        // As in Prometheus: a selector must not match every series of every metric.
        if name.is_none() && matchers.iter().all(|m| m.matches("")) {
            return Err(self.error_at(
                start,
                "a selector needs a metric name or a matcher that does not match the empty \
                 string",
            ));
        }
        let text = self
            .src
            .get(start..self.pos)
            .unwrap_or("")
            .trim()
            .to_string()
            .into_boxed_str();
        Ok(Selector {
            name,
            matchers,
            text,
        })
    }

    /// A metric name given inside the braces (`{"x"}` or `{__name__="x"}`): the selector's
    /// name when it has none yet; otherwise, as in PromQL 3, one more `__name__` equality
    /// matcher (`{"a", __name__="b"}` matches nothing). An empty name is a matcher too, so
    /// `{""}` is refused like any selector that matches the empty string.
    fn name_matcher(
        &self,
        name: &mut Option<Box<str>>,
        matchers: &mut Vec<Matcher>,
        value: String,
    ) {
        if name.is_none() && !value.is_empty() {
            *name = Some(value.into());
        } else {
            matchers.push(Matcher {
                label: "__name__".into(),
                op: MatchOp::Equal,
                value: value.into(),
                regex: None,
            });
        }
    }

    /// The `.xyz` part of a dotted name at the cursor, for messages.
    fn dotted_rest(&self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(rest.len());
        rest.get(..end).unwrap_or("")
    }

    /// A PromQL string literal: "...", '...' (Go escapes) or `...` (raw).
    fn string(&mut self) -> Result<String, QueryError> {
        let start = self.pos;
        let quote = match self.bump() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => {
                self.pos = start;
                return Err(self.error(format!("expected a quoted string, found {}", self.found())));
            }
        };
        let mut out = String::new();
        loop {
            let at = self.pos;
            let Some(c) = self.bump() else {
                return Err(self.error_at(start, "unterminated string literal"));
            };
            if c == quote {
                return Ok(out);
            }
            if quote == '`' {
                out.push(c);
                continue;
            }
            match c {
                '\n' => return Err(self.error_at(start, "unterminated string literal")),
                '\\' => out.push(self.escape(at)?),
                c => out.push(c),
            }
        }
    }

    fn escape(&mut self, at: usize) -> Result<char, QueryError> {
        let Some(c) = self.bump() else {
            return Err(self.error_at(at, "unterminated escape sequence"));
        };
        let simple = match c {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(s) = simple {
            return Ok(s);
        }
        let (digits, radix) = match c {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => {
                return Err(self.error_at(at, format!("unknown escape sequence '\\{c}'")));
            }
        };
        let mut code: u32 = if radix == 8 {
            c.to_digit(8).unwrap_or(0)
        } else {
            0
        };
        for _ in 0..digits {
            let d = self.bump().and_then(|d| d.to_digit(radix));
            match d {
                Some(d) => code = code * radix + d,
                None => {
                    return Err(self.error_at(at, "invalid escape sequence"));
                }
            }
        }
        // Byte escapes (\x, octal) must stay ASCII: a label value is UTF-8 text.
        if (radix == 8 || c == 'x') && code > 0x7f {
            return Err(self.error_at(
                at,
                "byte escapes above \\x7f are not supported; use \\u for non-ASCII characters",
            ));
        }
        char::from_u32(code)
            .ok_or_else(|| self.error_at(at, "escape sequence is not a valid character"))
    }

    /// A number literal (the quantile of histogram_quantile).
    fn number(&mut self) -> Result<f64, QueryError> {
        let start = self.pos;
        let mut end = self.pos;
        for (i, c) in self.rest().char_indices() {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-') {
                end = self.pos + i + c.len_utf8();
            } else {
                break;
            }
        }
        let text = self.src.get(start..end).unwrap_or("");
        let lower = text.to_ascii_lowercase();
        let digits = lower.trim_start_matches(['+', '-']);
        let valid = !digits.is_empty()
            && (digits == "inf"
                || digits == "nan"
                || digits.starts_with(|c: char| c.is_ascii_digit() || c == '.'));
        match text.parse::<f64>() {
            Ok(v) if valid => {
                self.pos = end;
                Ok(v)
            }
            _ => Err(self.error(format!(
                "expected a number (the quantile, e.g. 0.99), found {}",
                if text.is_empty() {
                    self.found()
                } else {
                    format!("`{text}`")
                }
            ))),
        }
    }

    /// A PromQL duration: one or more `<integer><unit>` with units y, w, d, h, m, s, ms in
    /// decreasing order, each at most once (`1h30m`, `500ms`).
    fn duration(&mut self) -> Result<i64, QueryError> {
        const UNITS: [(&str, i64); 7] = [
            ("y", 365 * 24 * 3_600_000),
            ("w", 7 * 24 * 3_600_000),
            ("d", 24 * 3_600_000),
            ("h", 3_600_000),
            ("ms", 1),
            ("m", 60_000),
            ("s", 1000),
        ];
        // Order in which units may follow each other (ms is finer than s).
        fn rank(unit: &str) -> usize {
            match unit {
                "y" => 0,
                "w" => 1,
                "d" => 2,
                "h" => 3,
                "m" => 4,
                "s" => 5,
                _ => 6,
            }
        }
        let start = self.pos;
        let mut total: i64 = 0;
        let mut last_rank: Option<usize> = None;
        loop {
            let num_start = self.pos;
            while matches!(self.peek(), Some('0'..='9')) {
                self.pos += 1;
            }
            if self.pos == num_start {
                if last_rank.is_some() {
                    break;
                }
                return Err(self.error(format!(
                    "expected a duration such as 30s, 1m or 1h30m, found {}",
                    self.found()
                )));
            }
            let digits = self.src.get(num_start..self.pos).unwrap_or("");
            let unit_at = self.pos;
            let Some((unit, factor)) = UNITS
                .iter()
                .find(|(u, _)| self.rest().starts_with(u))
                .copied()
            else {
                return Err(self.error(format!(
                    "expected a duration unit (ms, s, m, h, d, w, y) after `{digits}`, found {}",
                    self.found()
                )));
            };
            let r = rank(unit);
            if last_rank.is_some_and(|last| r <= last) {
                return Err(self.error_at(
                    unit_at,
                    "duration units must go from largest to smallest, each once (e.g. 1h30m)",
                ));
            }
            last_rank = Some(r);
            self.pos += unit.len();
            let part = digits
                .parse::<i64>()
                .ok()
                .and_then(|n| n.checked_mul(factor))
                .and_then(|ms| total.checked_add(ms));
            match part {
                Some(t) => total = t,
                None => return Err(self.error_at(start, "duration is too long")),
            }
        }
        if total <= 0 {
            return Err(self.error_at(start, "range duration must be greater than zero"));
        }
        Ok(total)
    }

    fn trailing_error(&mut self) -> QueryError {
        let rest = self.rest();
        let binary = ["+", "-", "*", "/", "%", "^", "==", "!=", ">", "<"]
            .iter()
            .any(|op| rest.starts_with(op))
            || matches!(self.peek_word(), Some("and" | "or" | "unless"));
        if binary {
            return self.error(
                "operators are not supported in a scrape query; define one variable per \
                 number and combine them in `expr`",
            );
        }
        if matches!(self.peek_word(), Some("offset")) {
            return self.error("the `offset` modifier is not supported");
        }
        self.error(format!("unexpected {} after the query", self.found()))
    }
}
