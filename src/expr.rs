//! Gate expressions: evalexpr 11.3.1 with mathematical numbers.
//!
//! Placeholder interface; the expression compiler replaces it.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    /// 1-based column in the expression text, when known.
    pub column: Option<usize>,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub source: String,
}

impl Expr {
    pub fn compile(src: &str) -> Result<Expr, ExprError> {
        Ok(Expr {
            source: src.to_string(),
        })
    }

    /// Variable names the expression reads.
    pub fn variables(&self) -> Vec<String> {
        Vec::new()
    }
}
