//! PromQL's value types, which the parser checks and the function catalog declares.

/// PromQL's value types, as the parser checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Scalar => "a scalar",
            Type::Vector => "an instant vector",
            Type::Matrix => "a range vector",
            Type::String => "a string",
        }
    }
}
