//! Gate expressions: evalexpr 11.3.1 with mathematical numbers.
//!
//! A rule's `expr` is compiled once at load: size and nesting limits are checked, integer
//! literals are rewritten to floats (so `errors == 0` holds for `0.0` and `1/2` is `0.5`), the
//! text is parsed by evalexpr, and the operator tree is checked (allowed functions, variable
//! names, a boolean result). Evaluation binds every variable to an `f64` and walks the
//! precompiled tree. `explain` renders why a verdict came out the way it did, for the gate
//! condition's message.

mod explain;
mod normalize;
#[cfg(test)]
mod tests;

use std::fmt;

use evalexpr::{Context, EvalexprError, EvalexprResult, Node, Operator, Value};

pub use explain::format_value;

/// Longest accepted expression, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4096;
/// Deepest accepted nesting: parentheses, prefix operators and operator-tree depth.
pub const MAX_DEPTH: usize = 64;

/// Functions an expression may call: evalexpr's math built-ins plus `isnan`.
pub const FUNCTIONS: &[&str] = &[
    "isnan",
    "min",
    "max",
    "floor",
    "round",
    "ceil",
    "math::abs",
    "math::ln",
    "math::log",
    "math::log2",
    "math::log10",
    "math::exp",
    "math::exp2",
    "math::pow",
    "math::sqrt",
    "math::cbrt",
    "math::hypot",
    "math::cos",
    "math::acos",
    "math::cosh",
    "math::acosh",
    "math::sin",
    "math::asin",
    "math::sinh",
    "math::asinh",
    "math::tan",
    "math::atan",
    "math::tanh",
    "math::atanh",
    "math::atan2",
    "math::is_nan",
    "math::is_finite",
    "math::is_infinite",
    "math::is_normal",
];

/// Names a variable cannot take: the language's literals and evalexpr's built-in functions
/// (allowed or not), which a variable of the same name would shadow.
pub const RESERVED_NAMES: &[&str] = &[
    "true",
    "false",
    "isnan",
    "min",
    "max",
    "floor",
    "round",
    "ceil",
    "if",
    "typeof",
    "contains",
    "contains_any",
    "len",
    "random",
    "bitand",
    "bitor",
    "bitxor",
    "bitnot",
    "shl",
    "shr",
];

/// Functions taking exactly two arguments; `min`/`max` take one or more, the rest one.
const TWO_ARGUMENT_FUNCTIONS: &[&str] = &["math::log", "math::pow", "math::hypot", "math::atan2"];

/// Functions that test for NaN; variables inside their argument are "NaN-aware".
const NAN_TESTS: &[&str] = &["isnan", "math::is_nan"];

/// Functions returning a boolean; every other allowed function returns a number.
const BOOLEAN_FUNCTIONS: &[&str] = &[
    "isnan",
    "math::is_nan",
    "math::is_finite",
    "math::is_infinite",
    "math::is_normal",
];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ExprError {
    /// 1-based column in the expression text, when known.
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(column) => write!(f, "column {column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl ExprError {
    fn new(message: impl Into<String>) -> ExprError {
        ExprError {
            column: None,
            message: message.into(),
        }
    }
}

/// A compiled gate expression.
#[derive(Debug, Clone)]
pub struct Expr {
    /// The expression as written in the rule.
    pub source: String,
    tree: Node,
    /// Variables read, sorted and unique.
    variables: Vec<String>,
    /// Variables inside an `isnan(...)` argument, sorted and unique.
    nan_aware: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Type {
    Number,
    Bool,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::Number => "a number",
            Type::Bool => "true or false",
        }
    }
}

impl Expr {
    pub fn compile(src: &str) -> Result<Expr, ExprError> {
        if src.len() > MAX_SOURCE_BYTES {
            return Err(ExprError::new(format!(
                "expression is {} bytes long; the limit is {MAX_SOURCE_BYTES}",
                src.len()
            )));
        }
        if src.trim().is_empty() {
            return Err(ExprError::new("expression is empty"));
        }
        let normalized = normalize::normalize(src)?;
        let tree = evalexpr::build_operator_tree(&normalized.text)
            .map_err(|e| ExprError::new(format!("cannot parse expression: {e}")))?;
        let depth = tree_depth(&tree);
        if depth > MAX_DEPTH {
            return Err(ExprError::new(format!(
                "expression nests {depth} operators deep; the limit is {MAX_DEPTH}"
            )));
        }
        let checker = Checker {
            normalized: &normalized,
        };
        let ty = checker.check(&tree)?;
        if ty != Type::Bool {
            return Err(ExprError::new(format!(
                "expression yields {}, not true or false; compare it, e.g. `{} > 0`",
                ty.name(),
                src.trim()
            )));
        }
        let mut variables: Vec<String> = tree
            .iter_read_variable_identifiers()
            .map(str::to_string)
            .collect();
        variables.sort();
        variables.dedup();
        let mut nan_aware = Vec::new();
        collect_nan_aware(&tree, &mut nan_aware);
        nan_aware.sort();
        nan_aware.dedup();
        Ok(Expr {
            source: src.to_string(),
            tree,
            variables,
            nan_aware,
        })
    }

    /// Variable names the expression reads, sorted and unique.
    pub fn variables(&self) -> Vec<String> {
        self.variables.clone()
    }

    /// Variables that appear inside the argument of `isnan(...)` (or `math::is_nan(...)`):
    /// the expression tests them for NaN explicitly, so a NaN there is a value, not "no data".
    pub fn nan_aware_variables(&self) -> Vec<String> {
        self.nan_aware.clone()
    }

    /// Evaluates the expression with every variable bound to a number.
    ///
    /// Errors when a variable the expression reads is missing from `values`, or (which the
    /// compile-time checks make unreachable in practice) when the result is not a boolean.
    pub fn eval(&self, values: &[(&str, f64)]) -> Result<bool, ExprError> {
        let context = Bindings::new(&self.variables, values)?;
        match self.tree.eval_with_context(&context) {
            Ok(Value::Boolean(verdict)) => Ok(verdict),
            Ok(other) => Err(ExprError::new(format!(
                "expression yields {}, not true or false",
                describe_value(&other)
            ))),
            Err(e) => Err(ExprError::new(format!("cannot evaluate expression: {e}"))),
        }
    }

    /// Says why the verdict is what it is, e.g. `errors/requests=0.031 >= 0.01` for a failing
    /// `errors / requests < 0.01`.
    pub fn explain(&self, values: &[(&str, f64)]) -> String {
        match Bindings::new(&self.variables, values) {
            Ok(context) => explain::explain(&self.tree, &context),
            Err(e) => e.message,
        }
    }
}

fn describe_value(value: &Value) -> String {
    match value {
        Value::Float(f) => format!("the number {}", format_value(*f)),
        Value::Int(i) => format!("the number {i}"),
        Value::Boolean(b) => format!("the boolean {b}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Tuple(_) => "a tuple".to_string(),
        Value::Empty => "nothing".to_string(),
    }
}

/// Depth of the operator tree, not counting evalexpr's parenthesis nodes. Iterative, so a
/// long `a + b + c + ...` chain cannot exhaust the stack.
fn tree_depth(root: &Node) -> usize {
    let mut max = 0;
    let mut stack = vec![(root, 0usize)];
    while let Some((node, depth)) = stack.pop() {
        let depth = if matches!(node.operator(), Operator::RootNode) {
            depth
        } else {
            depth + 1
        };
        max = max.max(depth);
        // Stop early: the caller rejects the expression anyway.
        if depth > MAX_DEPTH {
            return depth;
        }
        for child in node.children() {
            stack.push((child, depth));
        }
    }
    max
}

fn collect_nan_aware(node: &Node, out: &mut Vec<String>) {
    if let Operator::FunctionIdentifier { identifier } = node.operator()
        && NAN_TESTS.contains(&identifier.as_str())
    {
        out.extend(node.iter_read_variable_identifiers().map(str::to_string));
        return;
    }
    for child in node.children() {
        collect_nan_aware(child, out);
    }
}

/// Compile-time checks on the operator tree: only supported operators and functions, valid
/// variable names, and operand types that make sense (numbers for arithmetic and ordering,
/// booleans for `&&`, `||`, `!`).
struct Checker<'a> {
    normalized: &'a normalize::Normalized,
}

impl Checker<'_> {
    fn error_at(&self, identifier: &str, message: String) -> ExprError {
        ExprError {
            column: self.normalized.column_of(identifier),
            message,
        }
    }

    fn expect(&self, node: &Node, want: Type, context: &str) -> Result<(), ExprError> {
        let got = self.check(node)?;
        if got != want {
            return Err(ExprError::new(format!(
                "{context} needs {} but `{}` is {}",
                want.name(),
                explain::source_of(node),
                got.name()
            )));
        }
        Ok(())
    }

    fn check(&self, node: &Node) -> Result<Type, ExprError> {
        let children = node.children();
        // evalexpr builds `x ==` or `-` without complaint and fails only when evaluating.
        let operands = match node.operator() {
            Operator::Neg | Operator::Not | Operator::FunctionIdentifier { .. } => Some(1),
            Operator::Const { .. } | Operator::VariableIdentifierRead { .. } => Some(0),
            Operator::Add
            | Operator::Sub
            | Operator::Mul
            | Operator::Div
            | Operator::Mod
            | Operator::Exp
            | Operator::Eq
            | Operator::Neq
            | Operator::Gt
            | Operator::Lt
            | Operator::Geq
            | Operator::Leq
            | Operator::And
            | Operator::Or => Some(2),
            _ => None,
        };
        if let Some(n) = operands
            && children.len() != n
        {
            let op = node.operator();
            return Err(ExprError::new(if children.len() < n {
                format!("`{op}` is missing an operand")
            } else {
                format!("unexpected value after `{op}`")
            }));
        }
        match node.operator() {
            Operator::RootNode => match children {
                [child] => self.check(child),
                [] => Err(ExprError::new("empty parentheses")),
                _ => Err(ExprError::new("missing operator between values")),
            },
            op @ (Operator::Add
            | Operator::Sub
            | Operator::Mul
            | Operator::Div
            | Operator::Mod
            | Operator::Exp) => {
                for child in children {
                    self.expect(child, Type::Number, &format!("`{op}`"))?;
                }
                Ok(Type::Number)
            }
            Operator::Neg => {
                for child in children {
                    self.expect(child, Type::Number, "unary `-`")?;
                }
                Ok(Type::Number)
            }
            op @ (Operator::Gt | Operator::Lt | Operator::Geq | Operator::Leq) => {
                for child in children {
                    self.expect(child, Type::Number, &format!("`{op}`"))?;
                }
                Ok(Type::Bool)
            }
            op @ (Operator::Eq | Operator::Neq) => {
                if let [lhs, rhs] = children {
                    let left = self.check(lhs)?;
                    self.expect(
                        rhs,
                        left,
                        &format!("`{op}` with {} on the left", left.name()),
                    )?;
                }
                Ok(Type::Bool)
            }
            op @ (Operator::And | Operator::Or) => {
                for child in children {
                    self.expect(child, Type::Bool, &format!("`{op}`"))?;
                }
                Ok(Type::Bool)
            }
            Operator::Not => {
                for child in children {
                    self.expect(child, Type::Bool, "`!`")?;
                }
                Ok(Type::Bool)
            }
            Operator::Const { value } => match value {
                Value::Float(_) | Value::Int(_) => Ok(Type::Number),
                Value::Boolean(_) => Ok(Type::Bool),
                Value::String(_) => Err(ExprError::new(
                    "string literals are not supported: variables are numbers",
                )),
                Value::Tuple(_) | Value::Empty => Err(ExprError::new("unexpected value")),
            },
            Operator::VariableIdentifierRead { identifier } => {
                if !is_variable_name(identifier) {
                    return Err(self.error_at(
                        identifier,
                        format!(
                            "`{identifier}` is neither a number nor a variable name \
                             (letters, digits and `_`, not starting with a digit)"
                        ),
                    ));
                }
                Ok(Type::Number)
            }
            Operator::FunctionIdentifier { identifier } => {
                if !FUNCTIONS.contains(&identifier.as_str()) {
                    return Err(self.error_at(
                        identifier,
                        format!(
                            "unknown function `{identifier}`; available: {}",
                            FUNCTIONS.join(", ")
                        ),
                    ));
                }
                for argument in children {
                    self.check_arguments(identifier, argument)?;
                }
                if BOOLEAN_FUNCTIONS.contains(&identifier.as_str()) {
                    Ok(Type::Bool)
                } else {
                    Ok(Type::Number)
                }
            }
            Operator::Tuple => Err(ExprError::new(
                "a comma is only allowed between function arguments",
            )),
            Operator::Chain => Err(ExprError::new(
                "`;` is not supported: an expression is a single condition",
            )),
            Operator::VariableIdentifierWrite { identifier } => Err(self.error_at(
                identifier,
                format!("assignment to `{identifier}` is not supported"),
            )),
            Operator::Assign
            | Operator::AddAssign
            | Operator::SubAssign
            | Operator::MulAssign
            | Operator::DivAssign
            | Operator::ModAssign
            | Operator::ExpAssign
            | Operator::AndAssign
            | Operator::OrAssign => Err(ExprError::new("assignments are not supported")),
        }
    }

    /// Function arguments: one number, or a parenthesised comma-separated list of numbers.
    fn check_arguments(&self, function: &str, node: &Node) -> Result<(), ExprError> {
        let context = format!("an argument of `{function}`");
        let count = match (node.operator(), node.children()) {
            (Operator::RootNode, [inner]) if matches!(inner.operator(), Operator::Tuple) => {
                for argument in inner.children() {
                    self.expect(argument, Type::Number, &context)?;
                }
                inner.children().len()
            }
            (Operator::RootNode, []) => 0,
            _ => {
                self.expect(node, Type::Number, &context)?;
                1
            }
        };
        let (wanted, ok) = if TWO_ARGUMENT_FUNCTIONS.contains(&function) {
            ("2 arguments", count == 2)
        } else if function == "min" || function == "max" {
            ("at least 1 argument", count >= 1)
        } else {
            ("1 argument", count == 1)
        };
        if ok {
            Ok(())
        } else {
            Err(ExprError {
                column: self.normalized.column_of(function),
                message: format!("`{function}` takes {wanted}, not {count}"),
            })
        }
    }
}

fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The evaluation context: the expression's variables (in `Expr::variables` order) bound to
/// values, plus `isnan` and float-only `min`/`max`.
pub(crate) struct Bindings<'a> {
    names: &'a [String],
    values: Vec<Value>,
}

impl<'a> Bindings<'a> {
    fn new(names: &'a [String], given: &[(&str, f64)]) -> Result<Bindings<'a>, ExprError> {
        let mut values = Vec::with_capacity(names.len());
        for name in names {
            match given.iter().find(|(n, _)| n == name) {
                Some((_, v)) => values.push(Value::Float(*v)),
                None => {
                    return Err(ExprError::new(format!("variable `{name}` has no value")));
                }
            }
        }
        Ok(Bindings { names, values })
    }
}

/// `min`/`max` over floats only: evalexpr's built-ins compare against an integer accumulator
/// and return `i64::MAX` for `min(1e19, 2e19)`.
fn fold_numbers(argument: &Value, init: f64, pick: fn(f64, f64) -> f64) -> EvalexprResult<Value> {
    match argument {
        Value::Tuple(items) => {
            let mut acc = init;
            for item in items {
                acc = pick(acc, item.as_number()?);
            }
            Ok(Value::Float(acc))
        }
        other => Ok(Value::Float(other.as_number()?)),
    }
}

impl Context for Bindings<'_> {
    fn get_value(&self, identifier: &str) -> Option<&Value> {
        let index = self.names.iter().position(|n| n == identifier)?;
        self.values.get(index)
    }

    fn call_function(&self, identifier: &str, argument: &Value) -> EvalexprResult<Value> {
        match identifier {
            "isnan" => Ok(Value::Boolean(argument.as_number()?.is_nan())),
            "min" => fold_numbers(argument, f64::INFINITY, f64::min),
            "max" => fold_numbers(argument, f64::NEG_INFINITY, f64::max),
            _ => Err(EvalexprError::FunctionIdentifierNotFound(
                identifier.to_string(),
            )),
        }
    }

    fn are_builtin_functions_disabled(&self) -> bool {
        false
    }

    fn set_builtin_functions_disabled(&mut self, disabled: bool) -> EvalexprResult<()> {
        if disabled {
            Err(EvalexprError::BuiltinFunctionsCannotBeDisabled)
        } else {
            Ok(())
        }
    }
}
