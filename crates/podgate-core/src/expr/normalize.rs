//! Source-level checks and normalisation of gate expressions before evalexpr parses them.
//!
//! evalexpr types `1` as an integer, so `1/2` is `0` and `errors == 0` is false for `0.0`.
//! The scanner here splits the text exactly the way evalexpr 11.3.1 does (runs of characters
//! that are neither operators nor whitespace form one literal; `1e-3` is re-joined from three
//! pieces) and rewrites every integer literal to a float literal (`1` becomes `1.0`), so every
//! number the expression computes with is an `f64`. It also rejects, with a column, what
//! evalexpr would accept but a gate expression must not contain: assignments, `;` chains,
//! comments, hexadecimal literals and excessive nesting.

use super::{ExprError, MAX_DEPTH};

/// The text handed to evalexpr and where each identifier first appears in the original.
#[derive(Debug)]
pub(super) struct Normalized {
    pub text: String,
    /// Identifier (variable or function name) and the 1-based column of its first occurrence.
    pub identifiers: Vec<(String, usize)>,
}

impl Normalized {
    pub fn column_of(&self, identifier: &str) -> Option<usize> {
        self.identifiers
            .iter()
            .find(|(name, _)| name == identifier)
            .map(|(_, column)| *column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    /// A run of literal characters (number, boolean or identifier), as a byte range.
    Literal(usize, usize),
    /// A double-quoted string literal and the byte offset of its opening quote.
    Str(usize),
    /// One operator or punctuation character and its byte offset.
    Op(char, usize),
    Space,
}

const OPERATOR_CHARS: &str = "+-*/%^(),;=!><&|";

/// 1-based character column of a byte offset.
pub(super) fn column_at(src: &str, byte: usize) -> usize {
    src.get(..byte).map_or(0, |s| s.chars().count()) + 1
}

fn err(src: &str, byte: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        column: Some(column_at(src, byte)),
        message: message.into(),
    }
}

fn split(src: &str) -> Result<Vec<Part>, ExprError> {
    let mut parts = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((pos, c)) = chars.next() {
        if c == '"' {
            // evalexpr's string literal: `\"` and `\\` are the only escapes.
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => {}
                }
            }
            if !closed {
                return Err(err(src, pos, "unterminated string literal"));
            }
            parts.push(Part::Str(pos));
        } else if c == '/' && matches!(chars.peek(), Some((_, '/' | '*'))) {
            return Err(err(src, pos, "comments are not supported in expressions"));
        } else if OPERATOR_CHARS.contains(c) {
            parts.push(Part::Op(c, pos));
        } else if c.is_whitespace() {
            parts.push(Part::Space);
        } else {
            let end = pos + c.len_utf8();
            match parts.last_mut() {
                Some(Part::Literal(_, last_end)) if *last_end == pos => *last_end = end,
                _ => parts.push(Part::Literal(pos, end)),
            }
        }
    }
    Ok(parts)
}

fn op_at(parts: &[Part], i: usize) -> Option<char> {
    match parts.get(i) {
        Some(Part::Op(c, _)) => Some(*c),
        _ => None,
    }
}

/// Checks the token stream and rewrites integer literals to floats.
pub(super) fn normalize(src: &str) -> Result<Normalized, ExprError> {
    let parts = split(src)?;
    let mut text = String::with_capacity(src.len() + 16);
    let mut copied = 0usize;
    let mut identifiers: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    // Consecutive prefix operators (`-`, `!`) deepen evalexpr's tree without parentheses.
    let mut unary_run = 0usize;
    // Whether the previous significant part ends a value (so `-` after it is binary).
    let mut after_value = false;

    let mut i = 0;
    while i < parts.len() {
        match parts[i] {
            Part::Space => {
                i += 1;
            }
            Part::Str(start) => {
                if after_value {
                    return Err(err(src, start, "missing operator before this string"));
                }
                after_value = true;
                unary_run = 0;
                i += 1;
            }
            Part::Op(c, pos) => {
                let next = op_at(&parts, i + 1);
                match c {
                    '(' => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Err(err(
                                src,
                                pos,
                                format!("parentheses nested deeper than {MAX_DEPTH}"),
                            ));
                        }
                        after_value = false;
                        i += 1;
                    }
                    ')' => {
                        if depth == 0 {
                            return Err(err(src, pos, "unmatched `)`"));
                        }
                        depth -= 1;
                        after_value = true;
                        unary_run = 0;
                        i += 1;
                    }
                    ';' => {
                        return Err(err(
                            src,
                            pos,
                            "`;` is not supported: an expression is a single condition",
                        ));
                    }
                    '=' => {
                        if next != Some('=') {
                            return Err(err(src, pos, "`=` assigns a variable; compare with `==`"));
                        }
                        after_value = false;
                        i += 2;
                    }
                    '+' | '-' | '*' | '/' | '%' | '^' if next == Some('=') => {
                        return Err(err(
                            src,
                            pos,
                            format!("`{c}=` assigns a variable; assignments are not supported"),
                        ));
                    }
                    '!' | '<' | '>' if next == Some('=') => {
                        after_value = false;
                        i += 2;
                    }
                    '&' | '|' => {
                        if next != Some(c) {
                            return Err(err(
                                src,
                                pos,
                                format!("`{c}` is not an operator; use `{c}{c}`"),
                            ));
                        }
                        if op_at(&parts, i + 2) == Some('=') {
                            return Err(err(
                                src,
                                pos,
                                format!(
                                    "`{c}{c}=` assigns a variable; assignments are not supported"
                                ),
                            ));
                        }
                        after_value = false;
                        i += 2;
                    }
                    '-' | '!' if !after_value => {
                        unary_run += 1;
                        if unary_run > MAX_DEPTH {
                            return Err(err(
                                src,
                                pos,
                                format!("more than {MAX_DEPTH} prefix operators in a row"),
                            ));
                        }
                        i += 1;
                    }
                    _ => {
                        after_value = false;
                        i += 1;
                    }
                }
            }
            Part::Literal(start, end) => {
                let literal = &src[start..end];
                // evalexpr reads `f x` as a call of `f`; nested without parentheses that
                // builds an arbitrarily deep tree. Calls need parentheses here.
                if after_value {
                    return Err(err(
                        src,
                        start,
                        format!("missing operator before `{literal}`"),
                    ));
                }
                after_value = true;
                unary_run = 0;
                if let Some(hex) = literal.strip_prefix("0x")
                    && i64::from_str_radix(hex, 16).is_ok()
                {
                    return Err(err(
                        src,
                        start,
                        format!(
                            "hexadecimal literal `{literal}` is not supported; write it in decimal"
                        ),
                    ));
                }
                if literal.parse::<i64>().is_ok() {
                    // The only rewrite: an integer literal becomes a float literal.
                    text.push_str(&src[copied..end]);
                    text.push_str(".0");
                    copied = end;
                    i += 1;
                    continue;
                }
                if literal.parse::<f64>().is_ok() || literal == "true" || literal == "false" {
                    i += 1;
                    continue;
                }
                // evalexpr re-joins `1e` `-` `3` into the float `1e-3`; mirror that so the `3`
                // is not rewritten.
                if let (Some(sign @ ('+' | '-')), Some(Part::Literal(s3, e3))) =
                    (op_at(&parts, i + 1), parts.get(i + 2))
                    && format!("{literal}{sign}{}", &src[*s3..*e3])
                        .parse::<f64>()
                        .is_ok()
                {
                    i += 3;
                    continue;
                }
                if !identifiers.iter().any(|(name, _)| name == literal) {
                    identifiers.push((literal.to_string(), column_at(src, start)));
                }
                i += 1;
            }
        }
    }
    text.push_str(&src[copied..]);
    Ok(Normalized { text, identifiers })
}
