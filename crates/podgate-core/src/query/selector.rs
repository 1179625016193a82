//! Selectors: `name{label="v", ...}`, with PromQL 3's quoted UTF-8 names, and their matchers.

use regex::Regex;

use super::scan::{Parser, QueryError, is_label_char, is_label_start};

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

impl<'a> Parser<'a> {
    /// `http.server.duration` written bare: the name stops at the '.', which PromQL reads as
    /// nothing it knows. Say how to write it.
    pub(crate) fn reject_dotted_name(&self, name: &str, start: usize) -> Result<(), QueryError> {
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
    pub(crate) fn selector_rest(
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
    pub(crate) fn name_matcher(
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
    pub(crate) fn dotted_rest(&self) -> &'a str {
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(rest.len());
        rest.get(..end).unwrap_or("")
    }
}
