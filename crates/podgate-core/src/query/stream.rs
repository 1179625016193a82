//! How a vector flows from its producer to its consumer: element by element into a sink, and
//! what the producer reports besides (how many, and why none when none).

use super::labels::Element;
use super::outcome::{EvalError, NoData};

/// Receives the elements of a vector as they are produced.
pub(crate) type Sink<'s, 'a> = &'s mut dyn FnMut(Element<'a>) -> Result<(), EvalError>;

/// What a vector expression produced besides its elements: how many, and why none when none.
#[derive(Debug)]
pub(crate) struct Produced {
    pub count: usize,
    pub why: Option<NoData>,
}

impl Produced {
    pub fn some(count: usize) -> Produced {
        Produced { count, why: None }
    }

    pub fn none(why: NoData) -> Produced {
        Produced {
            count: 0,
            why: Some(why),
        }
    }

    /// `count` elements; when none, `why()` says why.
    pub fn counted(count: usize, why: impl FnOnce() -> NoData) -> Produced {
        if count > 0 {
            Produced::some(count)
        } else {
            Produced::none(why())
        }
    }

    /// Why nothing came out (a placeholder when the producer gave no reason).
    pub fn reason(self) -> NoData {
        self.why.unwrap_or(NoData::Filtered {
            expr: "the query".to_string(),
        })
    }
}
