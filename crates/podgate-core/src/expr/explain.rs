//! Human-readable explanations of a verdict, and the shared number formatting.

use evalexpr::{Node, Operator, Value};

use super::Bindings;

/// Formats a number compactly for messages: at most 6 significant digits, trailing zeros
/// trimmed, exponent notation for very large or small magnitudes (like Go's `%g`), and `NaN`,
/// `+Inf`, `-Inf` spelled as Prometheus does.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if v == 0.0 {
        return "0".to_string();
    }
    // Round to 6 significant digits first; the exponent of the rounded value decides the form.
    let sci = format!("{v:.5e}");
    let Some((mantissa, exponent)) = sci.split_once('e') else {
        return sci;
    };
    let Ok(exponent) = exponent.parse::<i32>() else {
        return sci;
    };
    if !(-4..6).contains(&exponent) {
        let mantissa = trim_fraction(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs());
    }
    let decimals = usize::try_from(5 - exponent).unwrap_or(0);
    trim_fraction(&format!("{v:.decimals$}")).to_string()
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// A number literal as it would be written in an expression.
fn format_literal(v: f64) -> String {
    let magnitude = v.abs();
    if v == 0.0 || (1e-4..1e15).contains(&magnitude) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// Strips the parenthesis nodes evalexpr puts around the whole expression and each group.
fn unwrap_root(mut node: &Node) -> &Node {
    while let (Operator::RootNode, [child]) = (node.operator(), node.children()) {
        node = child;
    }
    node
}

/// The source text of a subtree, compacted: no spaces around arithmetic, one around
/// comparisons and logical operators.
pub(crate) fn source_of(node: &Node) -> String {
    let mut out = String::new();
    write_source(unwrap_root(node), &mut out);
    out
}

fn write_source(node: &Node, out: &mut String) {
    let children = node.children();
    match node.operator() {
        Operator::RootNode => {
            out.push('(');
            for child in children {
                write_source(child, out);
            }
            out.push(')');
        }
        Operator::Neg | Operator::Not => {
            out.push_str(if matches!(node.operator(), Operator::Neg) {
                "-"
            } else {
                "!"
            });
            for child in children {
                write_source(child, out);
            }
        }
        Operator::Const { value } => match value {
            Value::Float(f) => out.push_str(&format_literal(*f)),
            other => out.push_str(&other.to_string()),
        },
        Operator::VariableIdentifierRead { identifier }
        | Operator::VariableIdentifierWrite { identifier } => out.push_str(identifier),
        Operator::FunctionIdentifier { identifier } => {
            out.push_str(identifier);
            for child in children {
                if matches!(child.operator(), Operator::RootNode) {
                    write_source(child, out);
                } else {
                    out.push('(');
                    write_source(child, out);
                    out.push(')');
                }
            }
        }
        Operator::Tuple => {
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_source(child, out);
            }
        }
        op => {
            let spaced = matches!(
                op,
                Operator::Eq
                    | Operator::Neq
                    | Operator::Gt
                    | Operator::Lt
                    | Operator::Geq
                    | Operator::Leq
                    | Operator::And
                    | Operator::Or
            );
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    if spaced {
                        out.push(' ');
                        out.push_str(&op.to_string());
                        out.push(' ');
                    } else {
                        out.push_str(&op.to_string());
                        // `a - -b`, not `a--b`.
                        if matches!(child.operator(), Operator::Neg) {
                            out.push(' ');
                        }
                    }
                }
                write_source(child, out);
            }
        }
    }
}

fn negated(op: &Operator) -> &'static str {
    match op {
        Operator::Lt => ">=",
        Operator::Gt => "<=",
        Operator::Leq => ">",
        Operator::Geq => "<",
        Operator::Eq => "!=",
        _ => "==",
    }
}

/// True when a subtree is a number literal, possibly negated: its value adds nothing.
fn is_literal(node: &Node) -> bool {
    let node = unwrap_root(node);
    match (node.operator(), node.children()) {
        (Operator::Const { .. }, _) => true,
        (Operator::Neg, [child]) => is_literal(child),
        _ => false,
    }
}

fn render_value(value: &Value) -> String {
    match value {
        Value::Float(f) => format_value(*f),
        other => other.to_string(),
    }
}

fn eval_bool(node: &Node, context: &Bindings<'_>) -> Result<bool, String> {
    match node.eval_with_context(context) {
        Ok(Value::Boolean(b)) => Ok(b),
        Ok(other) => Err(format!(
            "`{}` is {}, not true or false",
            source_of(node),
            render_value(&other)
        )),
        Err(e) => Err(format!("cannot evaluate `{}`: {e}", source_of(node))),
    }
}

/// Why `tree` evaluates the way it does under `context`: what decided first, then, in
/// parentheses, the guards of a failing `||` that did not apply (`requests == 0`,
/// `isnan(errors)`), so a cut message still shows the story:
/// `errors/requests=0.077 >= 0.01 (requests=39.4 != 0, isnan(errors)=false)`.
pub(crate) fn explain(tree: &Node, context: &Bindings<'_>) -> String {
    let mut out = String::new();
    let mut guards = Vec::new();
    explain_into(tree, context, &mut out, &mut guards);
    if !guards.is_empty() {
        if out.is_empty() {
            return guards.join(" and ");
        }
        out.push_str(" (");
        out.push_str(&guards.join(", "));
        out.push(')');
    }
    out
}

/// An escape hatch in a `||`: `isnan(x)`, or a variable compared for equality with a number
/// (`requests == 0`). When it does not apply, it is context, not the reason.
fn is_guard(node: &Node) -> bool {
    let node = unwrap_root(node);
    match (node.operator(), node.children()) {
        (Operator::FunctionIdentifier { identifier }, _) => identifier == "isnan",
        (Operator::Eq, [lhs, rhs]) => is_literal(lhs) != is_literal(rhs),
        _ => false,
    }
}

fn explain_into(node: &Node, context: &Bindings<'_>, out: &mut String, guards: &mut Vec<String>) {
    let node = unwrap_root(node);
    let children = node.children();
    match node.operator() {
        op @ (Operator::And | Operator::Or) => {
            let verdict = match eval_bool(node, context) {
                Ok(v) => v,
                Err(e) => {
                    out.push_str(&e);
                    return;
                }
            };
            // A failing `&&` and a passing `||` are decided by one operand: name the first.
            // Otherwise every operand contributed: name them all.
            let decisive = matches!(op, Operator::Or) == verdict;
            if decisive {
                for child in children {
                    if eval_bool(child, context) == Ok(verdict) {
                        explain_into(child, context, out, guards);
                        return;
                    }
                }
            }
            // A failing `||`: the guards that did not apply go after the reason.
            let (held, main): (Vec<&Node>, Vec<&Node>) = if matches!(op, Operator::Or) {
                children.iter().partition(|c| is_guard(c))
            } else {
                (Vec::new(), children.iter().collect())
            };
            let (held, main) = if main.is_empty() {
                (Vec::new(), held)
            } else {
                (held, main)
            };
            for child in held {
                let mut text = String::new();
                explain_into(child, context, &mut text, guards);
                guards.push(text);
            }
            for (i, child) in main.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(" and ");
                }
                explain_into(child, context, out, guards);
            }
        }
        Operator::Not => {
            for child in children {
                explain_into(child, context, out, guards);
            }
        }
        op @ (Operator::Eq
        | Operator::Neq
        | Operator::Gt
        | Operator::Lt
        | Operator::Geq
        | Operator::Leq) => {
            let [lhs, rhs] = children else {
                out.push_str(&source_of(node));
                return;
            };
            let verdict = match eval_bool(node, context) {
                Ok(v) => v,
                Err(e) => {
                    out.push_str(&e);
                    return;
                }
            };
            write_operand(lhs, context, out);
            out.push(' ');
            if verdict {
                out.push_str(&op.to_string());
            } else {
                out.push_str(negated(op));
            }
            out.push(' ');
            write_operand(rhs, context, out);
        }
        _ => {
            // A boolean leaf such as `isnan(p99)` or `true`.
            out.push_str(&source_of(node));
            if !is_literal(node) {
                match node.eval_with_context(context) {
                    Ok(value) => {
                        out.push('=');
                        out.push_str(&render_value(&value));
                    }
                    Err(e) => {
                        out.push_str(": ");
                        out.push_str(&e.to_string());
                    }
                }
            }
        }
    }
}

/// `source=value`, or just the source for a number literal.
fn write_operand(node: &Node, context: &Bindings<'_>, out: &mut String) {
    out.push_str(&source_of(node));
    if is_literal(node) {
        return;
    }
    match node.eval_with_context(context) {
        Ok(value) => {
            out.push('=');
            out.push_str(&render_value(&value));
        }
        Err(e) => {
            out.push_str(": ");
            out.push_str(&e.to_string());
        }
    }
}
