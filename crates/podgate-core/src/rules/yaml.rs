//! A YAML document as a tree of nodes that remember where they are in the source.
//!
//! serde-saphyr parses the text (with its budgets against deep nesting and alias bombs) into
//! this tree through `Spanned`; the validator then walks the tree by hand. Deserializing
//! straight into the rule structs would stop at the first bad field, while `podgate check`
//! must report every problem with its line and column.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};

/// A position in the source: 1-based line and character column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    fn from_location(loc: &Location) -> Pos {
        Pos {
            line: usize::try_from(loc.line()).unwrap_or(usize::MAX),
            column: usize::try_from(loc.column()).unwrap_or(usize::MAX),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    /// Where the node is used (for an alias: the `*alias`).
    pub at: Pos,
    /// Where its text is written (for an alias: the anchored node).
    pub def: Pos,
    /// Byte range of the text at `def` in the source, when known.
    raw: Option<(usize, usize)>,
}

impl Node {
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) | Kind::UInt(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The node's text exactly as written in the source (quotes included), when known.
    pub fn raw<'s>(&self, src: &'s str) -> Option<&'s str> {
        let (start, len) = self.raw?;
        src.get(start..start.checked_add(len)?)
    }

    /// The source position of the character at `index` (0-based, in characters) of this
    /// string scalar's value. Exact when the scalar is written on one line, plain or
    /// single/double quoted; `None` otherwise (block scalars, multi-line flow scalars).
    pub fn char_pos(&self, src: &str, index: usize) -> Option<Pos> {
        let Kind::Str(value) = &self.kind else {
            return None;
        };
        let raw = self.raw(src)?;
        if raw.contains(['\n', '\r']) {
            return None;
        }
        let raw_chars: Vec<char> = raw.chars().collect();
        let raw_index = match raw_chars.first() {
            Some('\'') => single_quoted_index(&raw_chars, value, index)?,
            Some('"') => double_quoted_index(&raw_chars, index)?,
            Some('|' | '>') => return None,
            Some(_) if raw == value => index.min(raw_chars.len()),
            _ => return None,
        };
        Some(Pos {
            line: self.def.line,
            column: self.def.column.checked_add(raw_index)?,
        })
    }
}

/// Raw index of value character `index` in a single-quoted scalar, where `''` stands for `'`.
fn single_quoted_index(raw: &[char], value: &str, index: usize) -> Option<usize> {
    let mut raw_i = 1;
    for c in value.chars().take(index) {
        raw_i += if c == '\'' { 2 } else { 1 };
    }
    (raw_i < raw.len()).then_some(raw_i)
}

/// Raw index of value character `index` in a double-quoted scalar with backslash escapes.
fn double_quoted_index(raw: &[char], index: usize) -> Option<usize> {
    let mut raw_i = 1;
    for _ in 0..index {
        let step = match raw.get(raw_i)? {
            '\\' => match raw.get(raw_i + 1)? {
                'x' => 4,
                'u' => 6,
                'U' => 10,
                _ => 2,
            },
            _ => 1,
        };
        raw_i += step;
    }
    (raw_i < raw.len()).then_some(raw_i)
}

impl From<Spanned<Kind>> for Node {
    fn from(s: Spanned<Kind>) -> Node {
        let span = s.defined.span();
        let raw = match (span.byte_offset(), span.byte_len()) {
            (Some(o), Some(l)) => usize::try_from(o).ok().zip(usize::try_from(l).ok()),
            _ => None,
        };
        Node {
            kind: s.value,
            at: Pos::from_location(&s.referenced),
            def: Pos::from_location(&s.defined),
            raw,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        Spanned::<Kind>::deserialize(d).map(Node::from)
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_none<E>(self) -> Result<Kind, E> {
        Ok(Kind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        Kind::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Kind, E> {
        Ok(Kind::UInt(v))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Kind, E> {
        Ok(i64::try_from(v).map_or(Kind::Float(v as f64), Kind::Int))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Kind, E> {
        Ok(u64::try_from(v).map_or(Kind::Float(v as f64), Kind::UInt))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Kind, E> {
        Err(E::custom("binary values are not supported in rule files"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Kind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Node>()? {
            let v = map.next_value::<Node>()?;
            entries.push((k, v));
        }
        Ok(Kind::Map(entries))
    }
}

/// A YAML syntax (or structure) error with its position, when the parser knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Option<Pos>,
    pub message: String,
}

/// Deepest nesting of lists and mappings accepted. A rule file needs about 8 levels; the
/// limit keeps the recursive tree building well inside a 2 MiB thread stack, even in debug
/// builds (the parser's own default, 64, does not).
const MAX_DEPTH: usize = 24;
/// Most YAML nodes (scalars, lists, mappings) in one file, aliases expanded.
const MAX_NODES: usize = 100_000;

fn options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    let mut budget = o.budget.unwrap_or_default();
    budget.max_depth = MAX_DEPTH;
    // A full 1 MiB file of rules has well under 100k nodes; lower caps keep an alias bomb
    // from costing seconds of CPU on every reload.
    budget.max_nodes = MAX_NODES;
    o.budget = Some(budget);
    o.alias_limits.max_total_replayed_events = MAX_NODES;
    // Only `true`/`false` are booleans: `on`, `yes`, `no` stay strings (YAML 1.2).
    o.strict_booleans = true;
    // `.nan` or `.inf` become strings, so they get a type error with a position instead of
    // failing the whole file.
    o.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::AsString;
    o.reject_unsupported_tags = true;
    o.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    o.with_snippet = false;
    o
}

/// Drops a trailing " at line N, column M": the diagnostic carries the position itself.
fn strip_position(message: &str) -> &str {
    let Some(i) = message.rfind(" at line ") else {
        return message;
    };
    let tail = &message[i + " at line ".len()..];
    let is_num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match tail.split_once(", column ") {
        Some((line, column)) if is_num(line) && is_num(column) => &message[..i],
        _ => message,
    }
}

/// Parses one YAML document.
pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    serde_saphyr::from_str_with_options::<Node>(src, options()).map_err(|e| {
        let pos = e
            .location()
            .map(|l| Pos::from_location(&l))
            .filter(|p| p.line > 0);
        let message = strip_position(&e.without_snippet().to_string()).to_string();
        SyntaxError { pos, message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(src: &str) -> Node {
        match parse(src) {
            Ok(n) => n,
            Err(e) => panic!("parse failed: {e:?}"),
        }
    }

    fn value<'a>(n: &'a Node, key: &str) -> &'a Node {
        let Kind::Map(entries) = &n.kind else {
            panic!("not a map")
        };
        match entries.iter().find(|(k, _)| k.as_str() == Some(key)) {
            Some((_, v)) => v,
            None => panic!("no key {key}"),
        }
    }

    #[test]
    fn positions_of_values() {
        let src = "a: 1\nb:\n  c: hello\n";
        let n = parsed(src);
        assert_eq!(value(&n, "a").at, Pos { line: 1, column: 4 });
        let c = value(value(&n, "b"), "c");
        assert_eq!(c.at, Pos { line: 3, column: 6 });
        assert_eq!(c.as_str(), Some("hello"));
    }

    #[test]
    fn char_positions_in_plain_and_quoted_scalars() {
        let src = "p: ab cd\ns: 'it''s x'\nd: \"a\\\"b\\u00e9c x\"\n";
        let n = parsed(src);
        // plain: index 3 is 'c' at column 4 + 3
        assert_eq!(
            value(&n, "p").char_pos(src, 3),
            Some(Pos { line: 1, column: 7 })
        );
        // single-quoted: value "it's x"; index 5 ('x') is raw index 7 => column 4 + 7
        assert_eq!(
            value(&n, "s").char_pos(src, 5),
            Some(Pos {
                line: 2,
                column: 11
            })
        );
        // double-quoted: value a"béc x; index 6 ('x') is raw 1+1+2+1+6+1+1 = 13
        assert_eq!(
            value(&n, "d").char_pos(src, 6),
            Some(Pos {
                line: 3,
                column: 17
            })
        );
    }

    #[test]
    fn char_positions_unknown_for_block_and_multiline() {
        let src = "b: |\n  abc\nf: abc\n  def\n";
        let n = parsed(src);
        assert_eq!(value(&n, "b").char_pos(src, 1), None);
        assert_eq!(value(&n, "f").char_pos(src, 1), None);
    }

    #[test]
    fn alias_positions_point_at_both_places() {
        let src = "a: &x 'q'\nb: *x\n";
        let n = parsed(src);
        let b = value(&n, "b");
        assert_eq!(b.at, Pos { line: 2, column: 4 });
        assert_eq!(b.def, Pos { line: 1, column: 7 });
        assert_eq!(b.char_pos(src, 0), Some(Pos { line: 1, column: 8 }));
    }

    #[test]
    fn scalar_types() {
        let n = parsed("a: yes\nb: true\nc: 3\nd: -3\ne: 1.5\nf: .nan\ng:\n");
        assert!(matches!(value(&n, "a").kind, Kind::Str(_)));
        assert!(matches!(value(&n, "b").kind, Kind::Bool(true)));
        assert!(matches!(value(&n, "c").kind, Kind::UInt(3)));
        assert!(matches!(value(&n, "d").kind, Kind::Int(-3)));
        assert!(matches!(value(&n, "e").kind, Kind::Float(_)));
        assert!(matches!(value(&n, "f").kind, Kind::Str(_)));
        assert!(value(&n, "g").is_null());
    }

    #[test]
    fn syntax_errors_have_positions_and_clean_messages() {
        let e = match parse("a: [1, 2\n") {
            Ok(_) => panic!("should fail"),
            Err(e) => e,
        };
        assert_eq!(e.pos, Some(Pos { line: 1, column: 4 }));
        assert!(!e.message.contains("at line"), "{}", e.message);
        let e = match parse("a: 1\na: 2\n") {
            Ok(_) => panic!("should fail"),
            Err(e) => e,
        };
        assert_eq!(e.pos.map(|p| p.line), Some(2));
        assert!(e.message.contains("duplicate"), "{}", e.message);
    }

    #[test]
    fn parser_positions_are_stripped_from_messages() {
        assert_eq!(strip_position("bad thing at line 3, column 4"), "bad thing");
        assert_eq!(
            strip_position("x (defined at line 5, column 7) (used here)"),
            "x (defined at line 5, column 7) (used here)"
        );
        assert_eq!(strip_position("no position"), "no position");
    }

    #[test]
    fn nesting_up_to_the_limit_is_fine() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
        assert!(parse(&ok).is_ok());
        let too_deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(&too_deep).is_err());
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(parse(&deep).is_err());
        let deep_map = "a: {".repeat(5_000);
        assert!(parse(&deep_map).is_err());
        let alias_bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
            c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
            e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
            g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
        assert!(parse(alias_bomb).is_err());
    }
}
