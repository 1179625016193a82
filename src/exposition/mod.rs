//! The Prometheus text (0.0.4) and OpenMetrics (1.0) exposition parser.
//!
//! Placeholder interface; the parser replaces it.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// Picks the format from a response `Content-Type` header.
    pub fn from_content_type(content_type: &str) -> Format {
        if content_type.starts_with("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// The label set of one sample, borrowed from the body.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    raw: &'a str,
}

impl<'a> Labels<'a> {
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Cow<'a, str>)> + 'a {
        let _ = self.raw;
        std::iter::empty()
    }
}

#[derive(Debug, Clone)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Labels<'a>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

pub struct Parser<'a> {
    _body: &'a str,
}

pub fn parse(body: &str, _format: Format) -> Parser<'_> {
    Parser { _body: body }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Sample<'a>, ParseError>;
    fn next(&mut self) -> Option<Self::Item> {
        None
    }
}
