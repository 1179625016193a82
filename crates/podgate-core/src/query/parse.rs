//! The scrape-query grammar: PromQL expressions (operators with PromQL's precedence,
//! aggregations, function calls, selectors with ranges and offsets), type-checked as
//! Prometheus does, so an error names the construct and its 1-based column.

use super::ast::{
    AggOp, Aggregate, BinOp, Binary, Call, Card, Expr, Grouping, Matching, MatrixSel, VectorSel,
};
use super::catalog::{self, Func};
use super::scan::{Parser, QueryError, is_label_char, is_label_start, is_name_char, is_name_start};
use super::types::Type;

/// Longest accepted query, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;

/// Deepest accepted parenthesis nesting.
const MAX_PAREN_DEPTH: usize = 64;

/// Deepest accepted expression tree (operators, calls, aggregations): evaluation recurses
/// over it.
const MAX_TREE_DEPTH: usize = 128;

/// An expression and where it starts in the text.
type Node = (Expr, usize);

pub(crate) fn parse(src: &str) -> Result<Expr, QueryError> {
    if src.len() > MAX_QUERY_BYTES {
        return Err(QueryError {
            column: 1,
            message: format!(
                "query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
                src.len()
            ),
        });
    }
    let mut p = Parser::new(src);
    p.skip_ws();
    if p.at_end() {
        return Err(p.error("empty query"));
    }
    let (mut expr, start) = p.expr(0)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.trailing_error());
    }
    match expr.ty() {
        Type::Scalar | Type::Vector => {}
        Type::Matrix => {
            return Err(p.error_at(
                start,
                "a range selector must be the argument of a function that takes a range, e.g. \
                 rate(x[1m]) or avg_over_time(x[1m])",
            ));
        }
        Type::String => {
            return Err(p.error_at(
                start,
                "a string is not a number (a quoted metric name goes inside the braces: \
                 {\"http.server.duration\"})",
            ));
        }
    }
    if expr.depth() > MAX_TREE_DEPTH {
        return Err(p.error_at(
            0,
            format!("the query nests operators and calls deeper than {MAX_TREE_DEPTH}"),
        ));
    }
    if let Expr::Call(call) = &mut expr
        && call.func == Func::HistogramQuantile
    {
        call.sum_by_le = match call.args.get(1) {
            Some(Expr::Vector(_)) => true,
            Some(Expr::Call(inner)) => matches!(inner.func, Func::Rate | Func::Increase),
            _ => false,
        };
    }
    Ok(expr)
}

impl<'a> Parser<'a> {
    /// The next word, lowercased: PromQL's keywords and aggregation names are
    /// case-insensitive (`SUM(x) BY (job)`).
    fn peek_kw(&mut self) -> Option<String> {
        self.peek_word().map(str::to_ascii_lowercase)
    }

    /// A word equal to `kw` (in any case), consumed when present.
    fn keyword(&mut self, kw: &str) -> bool {
        self.skip_ws();
        if self.peek_kw().as_deref() == Some(kw) {
            self.pos += kw.len();
            true
        } else {
            false
        }
    }

    fn text_from(&self, start: usize) -> Box<str> {
        self.src.get(start..self.pos).unwrap_or("").trim().into()
    }

    /// A binary operator at the cursor and its length.
    fn peek_binop(&mut self) -> Option<(BinOp, usize)> {
        let rest = self.rest();
        let two = rest.get(..2).unwrap_or("");
        let op = match two {
            "==" => return Some((BinOp::Eq, 2)),
            "!=" => return Some((BinOp::Ne, 2)),
            ">=" => return Some((BinOp::Ge, 2)),
            "<=" => return Some((BinOp::Le, 2)),
            _ => match self.peek()? {
                '+' => BinOp::Add,
                '-' => BinOp::Sub,
                '*' => BinOp::Mul,
                '/' => BinOp::Div,
                '%' => BinOp::Mod,
                '^' => BinOp::Pow,
                '>' => BinOp::Gt,
                '<' => BinOp::Lt,
                _ => {
                    return match self.peek_kw()?.as_str() {
                        "and" => Some((BinOp::And, 3)),
                        "or" => Some((BinOp::Or, 2)),
                        "unless" => Some((BinOp::Unless, 6)),
                        _ => None,
                    };
                }
            },
        };
        Some((op, 1))
    }

    /// An expression whose binary operators bind at least as tightly as `min_prec`.
    pub(crate) fn expr(&mut self, min_prec: u8) -> Result<Node, QueryError> {
        self.nest += 1;
        if self.nest > MAX_TREE_DEPTH {
            return Err(self.error(format!(
                "the query nests operators and calls deeper than {MAX_TREE_DEPTH}"
            )));
        }
        let result = self.expr_inner(min_prec);
        self.nest -= 1;
        result
    }

    fn expr_inner(&mut self, min_prec: u8) -> Result<Node, QueryError> {
        let (mut lhs, start) = self.unary()?;
        loop {
            self.skip_ws();
            let op_at = self.pos;
            let Some((op, len)) = self.peek_binop() else {
                if self.peek_kw().as_deref() == Some("atan2") {
                    return Err(self.error(
                        "the `atan2` operator is not supported; compute it in `expr` with \
                         math::atan2",
                    ));
                }
                break;
            };
            if op.precedence() < min_prec {
                break;
            }
            self.pos += len;
            let return_bool = self.keyword("bool");
            if return_bool && !op.is_comparison() {
                return Err(self.error_at(
                    op_at,
                    format!(
                        "`bool` only follows a comparison (==, !=, >, <, >=, <=), not `{}`",
                        op.symbol()
                    ),
                ));
            }
            let matching = self.matching(op)?;
            self.skip_ws();
            if self.at_end() || matches!(self.peek(), Some(')' | ',' | ']' | '}')) {
                return Err(self.error_at(
                    op_at,
                    format!("`{}` needs an operand on its right", op.symbol()),
                ));
            }
            // `^` is right-associative; the others left-associative.
            let next = if op == BinOp::Pow {
                op.precedence()
            } else {
                op.precedence() + 1
            };
            let (rhs, rhs_at) = self.expr(next)?;
            lhs = self.binary(
                op,
                (lhs, start),
                (rhs, rhs_at),
                op_at,
                return_bool,
                matching,
            )?;
        }
        Ok((lhs, start))
    }

    /// `on (...)` / `ignoring (...)` and `group_left/right [(...)]` after an operator.
    fn matching(&mut self, op: BinOp) -> Result<Option<(Matching, usize)>, QueryError> {
        self.skip_ws();
        let at = self.pos;
        let on = match self.peek_kw().as_deref() {
            Some("on") => true,
            Some("ignoring") => false,
            Some("group_left" | "group_right") => {
                return Err(self.error(
                    "group_left/group_right follow on(...) or ignoring(...), e.g. \
                     a * on (pod) group_left b",
                ));
            }
            _ => return Ok(None),
        };
        self.pos += if on { 2 } else { 8 };
        let labels = self.label_list(if on { "on" } else { "ignoring" })?;
        let mut matching = Matching {
            on,
            labels,
            ..Matching::default()
        };
        self.skip_ws();
        let group_at = self.pos;
        let card = match self.peek_kw().as_deref() {
            Some("group_left") => Some(Card::ManyToOne),
            Some("group_right") => Some(Card::OneToMany),
            _ => None,
        };
        if let Some(card) = card {
            if op.is_set() {
                return Err(self.error_at(
                    group_at,
                    format!(
                        "group_left/group_right cannot be used with `{}`",
                        op.symbol()
                    ),
                ));
            }
            self.pos += 10 + usize::from(card == Card::OneToMany);
            matching.card = card;
            self.skip_ws();
            if self.peek() == Some('(') {
                matching.include = self.label_list("group_left/group_right")?;
            }
        }
        Ok(Some((matching, at)))
    }

    /// `(a, "b.c", ...)`: label names, quoted ones as in PromQL 3, a trailing comma allowed.
    fn label_list(&mut self, context: &str) -> Result<Vec<Box<str>>, QueryError> {
        self.skip_ws();
        if !self.eat('(') {
            return Err(self.error(format!(
                "expected '(' and label names after `{context}`, e.g. {context} (pod), found {}",
                self.found()
            )));
        }
        let mut labels = Vec::new();
        loop {
            self.skip_ws();
            if self.eat(')') {
                return Ok(labels);
            }
            let label: Box<str> = if matches!(self.peek(), Some('"' | '\'' | '`')) {
                self.string()?.into()
            } else if let Some(w) = self.word(is_label_start, is_label_char) {
                w.into()
            } else {
                return Err(self.error(format!(
                    "expected a label name or ')' in `{context} (...)`, found {}",
                    self.found()
                )));
            };
            labels.push(label);
            self.skip_ws();
            if self.eat(',') {
                continue;
            }
            if !matches!(self.peek(), Some(')')) {
                return Err(self.error(format!(
                    "expected ',' or ')' after a label name in `{context} (...)`, found {}",
                    self.found()
                )));
            }
        }
    }

    fn binary(
        &self,
        op: BinOp,
        (lhs, lhs_at): Node,
        (rhs, rhs_at): Node,
        op_at: usize,
        return_bool: bool,
        matching: Option<(Matching, usize)>,
    ) -> Result<Expr, QueryError> {
        for (side, at) in [(&lhs, lhs_at), (&rhs, rhs_at)] {
            match side.ty() {
                Type::Scalar | Type::Vector => {}
                Type::Matrix => {
                    return Err(self.error_at(
                        at,
                        format!(
                            "`{}` needs instant vectors or numbers, but this is a range \
                             selector; apply a function first, e.g. rate(x[1m])",
                            op.symbol()
                        ),
                    ));
                }
                Type::String => {
                    return Err(
                        self.error_at(at, format!("`{}` does not apply to a string", op.symbol()))
                    );
                }
            }
        }
        let scalars = (lhs.ty() == Type::Scalar, rhs.ty() == Type::Scalar);
        if op.is_set() && (scalars.0 || scalars.1) {
            return Err(self.error_at(
                op_at,
                format!(
                    "`{}` works between two instant vectors, not with a number",
                    op.symbol()
                ),
            ));
        }
        if op.is_comparison() && scalars == (true, true) && !return_bool {
            return Err(self.error_at(
                op_at,
                format!(
                    "a comparison between two numbers needs `bool` (e.g. 1 {} bool 0)",
                    op.symbol()
                ),
            ));
        }
        if let Some((_, at)) = &matching
            && (scalars.0 || scalars.1)
        {
            return Err(self.error_at(
                *at,
                "on (...) / ignoring (...) apply between two instant vectors only",
            ));
        }
        Ok(Expr::Binary(Box::new(Binary {
            op,
            lhs,
            rhs,
            return_bool,
            matching: matching.map(|(m, _)| m).unwrap_or_default(),
            text: self.text_from(lhs_at),
        })))
    }

    /// A unary `-`/`+` (binding less tightly than `^`, as in PromQL) or a primary.
    fn unary(&mut self) -> Result<Node, QueryError> {
        self.skip_ws();
        let start = self.pos;
        let negate = match self.peek() {
            Some('-') => true,
            Some('+') => false,
            _ => return self.primary(),
        };
        self.pos += 1;
        let (operand, at) = self.expr(BinOp::Pow.precedence())?;
        match operand.ty() {
            Type::Scalar | Type::Vector => {}
            other => {
                return Err(self.error_at(
                    at,
                    format!(
                        "unary minus needs a number or an instant vector, found {}",
                        other.name()
                    ),
                ));
            }
        }
        let expr = match (negate, operand) {
            (false, e) => e,
            (true, Expr::Number(n)) => Expr::Number(-n),
            (true, e) => Expr::Neg(Box::new(e)),
        };
        Ok((expr, start))
    }

    fn primary(&mut self) -> Result<Node, QueryError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('(') => {
                if self.depth >= MAX_PAREN_DEPTH {
                    return Err(
                        self.error(format!("parentheses nested deeper than {MAX_PAREN_DEPTH}"))
                    );
                }
                self.depth += 1;
                self.pos += 1;
                let (inner, _) = self.expr(0)?;
                self.depth -= 1;
                self.skip_ws();
                if !self.eat(')') {
                    return Err(self.error(format!(
                        "expected ')' to close the '(' at column {}, found {}",
                        self.column_at(start),
                        self.found()
                    )));
                }
                self.reject_postfix(start)?;
                Ok((inner, start))
            }
            Some('{') => self.selector_expr(None, start),
            Some('"' | '\'' | '`') => {
                let s = self.string()?;
                self.skip_ws();
                if matches!(self.peek(), Some('[' | '{')) {
                    return Err(self.error_at(
                        start,
                        format!("a quoted metric name goes inside the braces: {{{s:?}}}"),
                    ));
                }
                Ok((Expr::String, start))
            }
            Some(c) if c.is_ascii_digit() || c == '.' => match self.number() {
                Some(n) => {
                    if self.peek().is_some_and(is_name_char) {
                        let end = self
                            .rest()
                            .find(|c: char| !is_name_char(c))
                            .unwrap_or(self.rest().len());
                        let word = self.src.get(start..self.pos + end).unwrap_or("");
                        return Err(self.error_at(
                            start,
                            format!(
                                "`{word}` is not a number (durations go in [...] or after offset)"
                            ),
                        ));
                    }
                    Ok((Expr::Number(n), start))
                }
                None => Err(self.error(format!("expected an expression, found {}", self.found()))),
            },
            _ => {
                let Some(name) = self.word(is_name_start, is_name_char) else {
                    return Err(self.error(format!(
                        "expected a metric name, a selector, a number or a function, found {}",
                        self.found()
                    )));
                };
                let lower = name.to_ascii_lowercase();
                if lower == "inf" || lower == "nan" {
                    let n = if lower == "inf" {
                        f64::INFINITY
                    } else {
                        f64::NAN
                    };
                    return Ok((Expr::Number(n), start));
                }
                self.reject_dotted_name(name, start)?;
                let after_name = self.pos;
                self.skip_ws();
                let grouping_next = matches!(self.peek_kw().as_deref(), Some("by" | "without"));
                let node = if let Some(op) = AggOp::from_name(&lower)
                    && (self.peek() == Some('(') || grouping_next)
                {
                    self.aggregation(op, name, start)?
                } else if self.peek() == Some('(') {
                    self.call(name, start)?
                } else {
                    self.pos = after_name;
                    return self.selector_expr(Some(name), start);
                };
                self.reject_postfix(start)?;
                Ok(node)
            }
        }
    }

    /// After a parenthesised expression: a range (a subquery) or modifiers are refused.
    fn reject_postfix(&mut self, start: usize) -> Result<(), QueryError> {
        let save = self.pos;
        self.skip_ws();
        if self.peek() == Some('[') {
            return Err(self.subquery_error(start));
        }
        if self.peek_kw().as_deref() == Some("offset") || self.peek() == Some('@') {
            return Err(
                self.error("`offset` and `@` apply to a selector only, e.g. rate(x[1m] offset 5m)")
            );
        }
        self.pos = save;
        Ok(())
    }

    fn subquery_error(&self, start: usize) -> QueryError {
        self.error_at(
            start,
            "subqueries (`expr[5m:1m]`) are not supported: a range applies to a selector only; \
             use a range function on the metric, e.g. max_over_time(x[5m]) or \
             avg_over_time(x[5m])",
        )
    }

    /// A selector, then an optional `[range]` and `offset`.
    fn selector_expr(&mut self, name: Option<&'a str>, start: usize) -> Result<Node, QueryError> {
        let selector = self.selector_rest(name, start)?;
        self.skip_ws();
        let mut range = None;
        if self.eat('[') {
            self.skip_ws();
            let range_start = self.pos;
            let range_ms = self.duration()?;
            let range_text = self.text_from(range_start);
            self.skip_ws();
            if self.peek() == Some(':') {
                return Err(self.subquery_error(start));
            }
            if !self.eat(']') {
                return Err(self.error("expected ']' after range duration"));
            }
            range = Some((range_ms, range_text));
        }
        let (offset_ms, offset_text) = self.offset()?;
        let vector = VectorSel {
            selector,
            offset_ms,
            offset_text,
        };
        let expr = match range {
            Some((range_ms, range_text)) => Expr::Matrix(MatrixSel {
                vector,
                range_ms,
                range_text,
            }),
            None => Expr::Vector(vector),
        };
        Ok((expr, start))
    }

    /// `offset <duration>`; `@` and negative offsets are refused.
    fn offset(&mut self) -> Result<(i64, Box<str>), QueryError> {
        self.skip_ws();
        if self.peek() == Some('@') {
            return Err(self.error(
                "the `@` modifier is not supported: a scrape query reads the pod's latest \
                 scrapes; use offset for an earlier time, e.g. x offset 5m",
            ));
        }
        if !self.keyword("offset") {
            return Ok((0, "".into()));
        }
        self.skip_ws();
        if self.peek() == Some('-') {
            return Err(
                self.error("a negative offset would read scrapes that have not happened yet")
            );
        }
        let at = self.pos;
        let ms = self.duration()?;
        let text = self.text_from(at);
        self.skip_ws();
        if self.peek() == Some('[') {
            return Err(self.error("the range goes before the offset, e.g. rate(x[1m] offset 5m)"));
        }
        Ok((ms, text))
    }

    fn aggregation(&mut self, op: AggOp, name: &str, start: usize) -> Result<Node, QueryError> {
        let mut grouping = self.grouping()?;
        let before = grouping.is_some();
        self.expect('(', &format!("after {name}"))?;
        let param = if op.takes_param() {
            let (param, at) = self.expr(0)?;
            if param.ty() != Type::Scalar {
                return Err(self.error_at(
                    at,
                    format!(
                        "the first argument of {name}(...) must be a number, found {}",
                        param.ty().name()
                    ),
                ));
            }
            self.expect(',', &format!("after the first argument of {name}(...)"))?;
            Some(param)
        } else {
            None
        };
        let (expr, at) = self.expr(0)?;
        self.check_vector_arg(&expr, at, name)?;
        self.skip_ws();
        if self.peek() == Some(',') {
            return Err(self.error(format!(
                "{name}(...) takes {} argument{}",
                if op.takes_param() { "two" } else { "one" },
                if op.takes_param() { "s" } else { "" }
            )));
        }
        self.expect(')', &format!("to close {name}("))?;
        let save = self.pos;
        self.skip_ws();
        let by_at = self.pos;
        let after = self.grouping()?;
        match (before, after) {
            (true, Some(_)) => {
                return Err(self.error_at(by_at, format!("{name} has two by/without clauses")));
            }
            (false, Some(g)) => grouping = Some(g),
            (_, None) => self.pos = save,
        }
        let node = Aggregate {
            op,
            grouping: grouping.unwrap_or_default(),
            param,
            expr,
            text: self.text_from(start),
        };
        Ok((Expr::Aggregate(Box::new(node)), start))
    }

    /// `by (...)` or `without (...)`, if present.
    fn grouping(&mut self) -> Result<Option<Grouping>, QueryError> {
        self.skip_ws();
        let without = match self.peek_kw().as_deref() {
            Some("by") => false,
            Some("without") => true,
            _ => return Ok(None),
        };
        self.pos += if without { 7 } else { 2 };
        let labels = self.label_list(if without { "without" } else { "by" })?;
        Ok(Some(Grouping { without, labels }))
    }

    fn check_vector_arg(&self, arg: &Expr, at: usize, name: &str) -> Result<(), QueryError> {
        match arg.ty() {
            Type::Vector => Ok(()),
            Type::Matrix => Err(self.error_at(
                at,
                format!(
                    "{name}(...) takes an instant vector, not a range selector; apply a range \
                     function first, e.g. {name}(rate(x[1m])) or {name}(avg_over_time(x[1m]))"
                ),
            )),
            other => Err(self.error_at(
                at,
                format!(
                    "{name}(...) takes an instant vector, found {}",
                    other.name()
                ),
            )),
        }
    }

    fn call(&mut self, name: &str, start: usize) -> Result<Node, QueryError> {
        let Some(func) = Func::from_name(name) else {
            let message = match catalog::refused(name) {
                Some(hint) => format!("{name}(...) is not supported in a scrape query; {hint}"),
                None => format!(
                    "unknown function `{name}`; supported: {}, and the aggregations sum, min, \
                     max, avg, count, stddev, stdvar, group, quantile, topk, bottomk",
                    catalog::supported_list()
                ),
            };
            return Err(self.error_at(start, message));
        };
        self.expect('(', &format!("after {name}"))?;
        let mut args: Vec<Node> = Vec::new();
        self.skip_ws();
        if !self.eat(')') {
            loop {
                args.push(self.expr(0)?);
                self.skip_ws();
                if self.eat(',') {
                    continue;
                }
                if self.eat(')') {
                    break;
                }
                return Err(self.error(format!(
                    "expected ',' or ')' in the arguments of {name}(...), found {}",
                    self.found()
                )));
            }
        }
        let params = func.params();
        if args.len() < func.required() || args.len() > params.len() {
            let count = if func.required() == params.len() {
                params.len().to_string()
            } else {
                format!("{} or {}", func.required(), params.len())
            };
            let types: Vec<&str> = params.iter().map(|t| t.name()).collect();
            return Err(self.error_at(
                start,
                format!(
                    "{name}() takes {count} argument{} ({}), found {}",
                    if params.len() == 1 { "" } else { "s" },
                    types.join(", "),
                    args.len()
                ),
            ));
        }
        for (i, ((arg, at), want)) in args.iter().zip(params).enumerate() {
            let found = arg.ty();
            if found == *want {
                continue;
            }
            let message = match (want, arg) {
                (Type::Matrix, Expr::Vector(v)) => format!(
                    "{name}() needs a range selector: expected '[' and a range after the \
                     selector, e.g. {name}({}[1m])",
                    v.selector.text
                ),
                (Type::Matrix, _) => format!(
                    "{name}() takes a range selector such as x[1m], found {}",
                    found.name()
                ),
                (Type::Scalar, _) => format!(
                    "argument {} of {name}() must be a number (e.g. 0.99), found {}",
                    i + 1,
                    found.name()
                ),
                _ => format!(
                    "argument {} of {name}() must be {}, found {}",
                    i + 1,
                    want.name(),
                    found.name()
                ),
            };
            return Err(self.error_at(*at, message));
        }
        let call = Call {
            func,
            args: args.into_iter().map(|(e, _)| e).collect(),
            sum_by_le: false,
            text: self.text_from(start),
        };
        Ok((Expr::Call(Box::new(call)), start))
    }

    fn trailing_error(&mut self) -> QueryError {
        match self.peek_kw().as_deref() {
            Some(w @ ("by" | "without")) => {
                return self.error(format!(
                    "`{w} (...)` goes right after an aggregation's name or its closing ')', \
                     e.g. sum by (le) (x) or sum(x) by (le)"
                ));
            }
            Some("offset") => {
                return self
                    .error("`offset` applies to a selector only, e.g. rate(x[1m] offset 5m)");
            }
            _ => {}
        }
        if self.peek() == Some('[') {
            return self.error(
                "subqueries (`expr[5m:1m]`) are not supported: a range applies to a selector \
                 only; use a range function on the metric, e.g. max_over_time(x[5m])",
            );
        }
        if self.peek() == Some('=') {
            return self.error("use '==' to compare");
        }
        self.error(format!("unexpected {} after the query", self.found()))
    }
}
