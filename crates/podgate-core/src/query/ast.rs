//! The compiled form of a scrape query: a PromQL expression tree, type-checked by the parser.

use super::catalog::Func;
use super::selector::Selector;
use super::types::Type;

/// `x{...} offset 5m`.
#[derive(Debug, Clone)]
pub(crate) struct VectorSel {
    pub selector: Selector,
    pub offset_ms: i64,
    /// The offset as written (`5m`), for messages; empty without one.
    pub offset_text: Box<str>,
}

/// `x{...}[1m] offset 5m`: only as the argument of a function that takes a range.
#[derive(Debug, Clone)]
pub(crate) struct MatrixSel {
    pub vector: VectorSel,
    pub range_ms: i64,
    /// The range as written (`1m`), for messages.
    pub range_text: Box<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    /// PromQL's precedence, higher binds tighter.
    pub fn precedence(self) -> u8 {
        match self {
            BinOp::Or => 1,
            BinOp::And | BinOp::Unless => 2,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
            BinOp::Pow => 6,
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Lt => "<",
            BinOp::Ge => ">=",
            BinOp::Le => "<=",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Unless => "unless",
        }
    }
}

/// Which side of a vector-vector operation may have several series per match group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    /// `group_left`: several left-hand series per right-hand one.
    ManyToOne,
    /// `group_right`.
    OneToMany,
}

/// `on (...)` / `ignoring (...)` and `group_left/right (...)` of a vector-vector operation.
#[derive(Debug, Clone)]
pub(crate) struct Matching {
    pub card: Card,
    /// `on (...)`: match on these labels only; otherwise on all but these (and the name).
    pub on: bool,
    pub labels: Vec<Box<str>>,
    /// Labels copied from the "one" side (`group_left (a, b)`).
    pub include: Vec<Box<str>>,
}

impl Default for Matching {
    fn default() -> Self {
        Matching {
            card: Card::OneToOne,
            on: false,
            labels: Vec::new(),
            include: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Binary {
    pub op: BinOp,
    pub lhs: Expr,
    pub rhs: Expr,
    /// `bool`: comparisons yield 0 or 1 instead of filtering.
    pub return_bool: bool,
    pub matching: Matching,
    /// The operation as written, for messages.
    pub text: Box<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Min,
    Max,
    Avg,
    Count,
    Stddev,
    Stdvar,
    Group,
    Quantile,
    Topk,
    Bottomk,
}

impl AggOp {
    pub fn from_name(name: &str) -> Option<AggOp> {
        Some(match name {
            "sum" => AggOp::Sum,
            "min" => AggOp::Min,
            "max" => AggOp::Max,
            "avg" => AggOp::Avg,
            "count" => AggOp::Count,
            "stddev" => AggOp::Stddev,
            "stdvar" => AggOp::Stdvar,
            "group" => AggOp::Group,
            "quantile" => AggOp::Quantile,
            "topk" => AggOp::Topk,
            "bottomk" => AggOp::Bottomk,
            _ => return None,
        })
    }

    /// Whether the aggregation takes a parameter before the vector (`topk(3, x)`).
    pub fn takes_param(self) -> bool {
        matches!(self, AggOp::Quantile | AggOp::Topk | AggOp::Bottomk)
    }
}

/// `by (...)` or `without (...)`; no clause is `without ()` of nothing: one group.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grouping {
    pub without: bool,
    pub labels: Vec<Box<str>>,
}

impl Grouping {
    /// Everything in one group (no clause, or `by ()`).
    pub fn is_single(&self) -> bool {
        !self.without && self.labels.is_empty()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Aggregate {
    pub op: AggOp,
    pub grouping: Grouping,
    pub param: Option<Expr>,
    pub expr: Expr,
    /// The aggregation as written, for messages.
    pub text: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub func: Func,
    pub args: Vec<Expr>,
    /// `histogram_quantile(q, buckets)` at the top of a query written in podgate's earlier
    /// form (a selector or `rate`/`increase` of one): the buckets of every series are summed
    /// by `le`, so the query keeps yielding one number where PromQL would yield one per
    /// label set. Where PromQL yields one number, both agree.
    pub sum_by_le: bool,
    /// The call as written, for messages.
    pub text: Box<str>,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Number(f64),
    /// A string literal (no supported function takes one).
    String,
    Vector(VectorSel),
    Matrix(MatrixSel),
    /// Unary minus.
    Neg(Box<Expr>),
    Binary(Box<Binary>),
    Aggregate(Box<Aggregate>),
    Call(Box<Call>),
}

impl Expr {
    pub fn ty(&self) -> Type {
        match self {
            Expr::Number(_) => Type::Scalar,
            Expr::String => Type::String,
            Expr::Vector(_) | Expr::Aggregate(_) => Type::Vector,
            Expr::Matrix(_) => Type::Matrix,
            Expr::Neg(inner) => inner.ty(),
            Expr::Binary(b) => {
                if b.lhs.ty() == Type::Scalar && b.rhs.ty() == Type::Scalar {
                    Type::Scalar
                } else {
                    Type::Vector
                }
            }
            Expr::Call(c) => c.func.returns(),
        }
    }

    /// Calls `f` with every sub-expression, this one first.
    pub fn walk<'e>(&'e self, f: &mut dyn FnMut(&'e Expr)) {
        f(self);
        match self {
            Expr::Number(_) | Expr::String | Expr::Vector(_) | Expr::Matrix(_) => {}
            Expr::Neg(inner) => inner.walk(f),
            Expr::Binary(b) => {
                b.lhs.walk(f);
                b.rhs.walk(f);
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    p.walk(f);
                }
                a.expr.walk(f);
            }
            Expr::Call(c) => c.args.iter().for_each(|a| a.walk(f)),
        }
    }

    /// Calls `f` with every selector and how far back it reads (range plus offset, in ms).
    pub fn selectors<'e>(&'e self, f: &mut dyn FnMut(&'e Selector, i64)) {
        self.walk(&mut |e| match e {
            Expr::Vector(v) => f(&v.selector, v.offset_ms),
            Expr::Matrix(m) => f(
                &m.vector.selector,
                m.range_ms.saturating_add(m.vector.offset_ms),
            ),
            _ => {}
        });
    }

    /// How far back the query reads: the longest range plus offset over all selectors.
    pub fn reach_ms(&self) -> i64 {
        let mut reach = 0;
        self.selectors(&mut |_, ms| reach = reach.max(ms));
        reach
    }

    /// Depth of the tree (a leaf is 1).
    pub fn depth(&self) -> usize {
        match self {
            Expr::Number(_) | Expr::String | Expr::Vector(_) | Expr::Matrix(_) => 1,
            Expr::Neg(inner) => 1 + inner.depth(),
            Expr::Binary(b) => 1 + b.lhs.depth().max(b.rhs.depth()),
            Expr::Aggregate(a) => 1 + a.expr.depth().max(a.param.as_ref().map_or(0, Expr::depth)),
            Expr::Call(c) => 1 + c.args.iter().map(Expr::depth).max().unwrap_or(0),
        }
    }
}
