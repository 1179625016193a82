//! The lexical layer of the scrape-query parser: position, whitespace and comments, words,
//! string literals, numbers and durations, and errors that name the 1-based column.

/// A query or template that does not parse, at the 1-based column where it goes wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct QueryError {
    /// 1-based column in the query text.
    pub column: usize,
    pub message: String,
}

pub(crate) struct Parser<'a> {
    pub src: &'a str,
    pub pos: usize,
    /// Parentheses open around the current position.
    pub depth: usize,
    /// Sub-expressions being parsed around the current position (bounds the recursion).
    pub nest: usize,
}

pub(crate) fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

pub(crate) fn is_label_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub(crate) fn is_label_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Parser<'a> {
    pub fn new(src: &'a str) -> Parser<'a> {
        Parser {
            src,
            pos: 0,
            depth: 0,
            nest: 0,
        }
    }

    pub(crate) fn column_at(&self, pos: usize) -> usize {
        self.src.get(..pos).map_or(0, |s| s.chars().count()) + 1
    }

    pub(crate) fn error_at(&self, pos: usize, message: impl Into<String>) -> QueryError {
        QueryError {
            column: self.column_at(pos),
            message: message.into(),
        }
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> QueryError {
        self.error_at(self.pos, message)
    }

    pub(crate) fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Skips whitespace and `#` comments.
    pub(crate) fn skip_ws(&mut self) {
        while let Some(c) = self.peek() {
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else if c == '#' {
                while let Some(c) = self.bump() {
                    if c == '\n' {
                        break;
                    }
                }
            } else {
                break;
            }
        }
    }

    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Describes what is at the cursor, for "expected X, found Y" messages.
    pub(crate) fn found(&self) -> String {
        match self.peek() {
            None => "the end of the query".to_string(),
            Some(c) => format!("'{c}'"),
        }
    }

    pub(crate) fn expect(&mut self, c: char, context: &str) -> Result<(), QueryError> {
        self.skip_ws();
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.error(format!("expected '{c}' {context}, found {}", self.found())))
        }
    }

    pub(crate) fn word(
        &mut self,
        start: fn(char) -> bool,
        rest: fn(char) -> bool,
    ) -> Option<&'a str> {
        let begin = self.pos;
        match self.peek() {
            Some(c) if start(c) => {}
            _ => return None,
        }
        while let Some(c) = self.peek() {
            if rest(c) {
                self.pos += c.len_utf8();
            } else {
                break;
            }
        }
        self.src.get(begin..self.pos)
    }

    /// Looks at the next identifier without consuming it.
    pub(crate) fn peek_word(&mut self) -> Option<&'a str> {
        let save = self.pos;
        let w = self.word(is_name_start, is_name_char);
        self.pos = save;
        w
    }

    /// A PromQL string literal: "...", '...' (Go escapes) or `...` (raw).
    pub(crate) fn string(&mut self) -> Result<String, QueryError> {
        let start = self.pos;
        let quote = match self.bump() {
            Some(q @ ('"' | '\'' | '`')) => q,
            _ => {
                self.pos = start;
                return Err(self.error(format!("expected a quoted string, found {}", self.found())));
            }
        };
        let mut out = String::new();
        loop {
            let at = self.pos;
            let Some(c) = self.bump() else {
                return Err(self.error_at(start, "unterminated string literal"));
            };
            if c == quote {
                return Ok(out);
            }
            if quote == '`' {
                out.push(c);
                continue;
            }
            match c {
                '\n' => return Err(self.error_at(start, "unterminated string literal")),
                '\\' => out.push(self.escape(at)?),
                c => out.push(c),
            }
        }
    }

    pub(crate) fn escape(&mut self, at: usize) -> Result<char, QueryError> {
        let Some(c) = self.bump() else {
            return Err(self.error_at(at, "unterminated escape sequence"));
        };
        let simple = match c {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(s) = simple {
            return Ok(s);
        }
        let (digits, radix) = match c {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => {
                return Err(self.error_at(at, format!("unknown escape sequence '\\{c}'")));
            }
        };
        let mut code: u32 = if radix == 8 {
            c.to_digit(8).unwrap_or(0)
        } else {
            0
        };
        for _ in 0..digits {
            let d = self.bump().and_then(|d| d.to_digit(radix));
            match d {
                Some(d) => code = code * radix + d,
                None => {
                    return Err(self.error_at(at, "invalid escape sequence"));
                }
            }
        }
        // Byte escapes (\x, octal) must stay ASCII: a label value is UTF-8 text.
        if (radix == 8 || c == 'x') && code > 0x7f {
            return Err(self.error_at(
                at,
                "byte escapes above \\x7f are not supported; use \\u for non-ASCII characters",
            ));
        }
        char::from_u32(code)
            .ok_or_else(|| self.error_at(at, "escape sequence is not a valid character"))
    }

    /// A PromQL number literal at the cursor (`1`, `.5`, `1e-3`, `0x1f`; `Inf` and `NaN` are
    /// words, read by the caller), or `None` with the cursor unchanged.
    pub(crate) fn number(&mut self) -> Option<f64> {
        let rest = self.rest();
        let bytes = rest.as_bytes();
        let digits = |from: usize| {
            bytes
                .get(from..)
                .map_or(0, |b| b.iter().take_while(|c| c.is_ascii_digit()).count())
        };
        if let Some(hex) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            let n = hex.bytes().take_while(u8::is_ascii_hexdigit).count();
            let value = hex.get(..n).and_then(|h| u64::from_str_radix(h, 16).ok())?;
            self.pos += 2 + n;
            return Some(value as f64);
        }
        let int = digits(0);
        let mut end = int;
        let mut frac = 0;
        if bytes.get(end) == Some(&b'.') {
            frac = digits(end + 1);
            end += 1 + frac;
        }
        if int + frac == 0 {
            return None;
        }
        if matches!(bytes.get(end), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(bytes.get(end + 1), Some(b'+' | b'-')));
            let exp = digits(end + 1 + sign);
            if exp > 0 {
                end += 1 + sign + exp;
            }
        }
        let value = rest.get(..end).and_then(|t| t.parse::<f64>().ok())?;
        self.pos += end;
        Some(value)
    }

    /// A PromQL duration: one or more `<integer><unit>` with units y, w, d, h, m, s, ms in
    /// decreasing order, each at most once (`1h30m`, `500ms`).
    pub(crate) fn duration(&mut self) -> Result<i64, QueryError> {
        const UNITS: [(&str, i64); 7] = [
            ("y", 365 * 24 * 3_600_000),
            ("w", 7 * 24 * 3_600_000),
            ("d", 24 * 3_600_000),
            ("h", 3_600_000),
            ("ms", 1),
            ("m", 60_000),
            ("s", 1000),
        ];
        // Order in which units may follow each other (ms is finer than s).
        fn rank(unit: &str) -> usize {
            match unit {
                "y" => 0,
                "w" => 1,
                "d" => 2,
                "h" => 3,
                "m" => 4,
                "s" => 5,
                _ => 6,
            }
        }
        let start = self.pos;
        let mut total: i64 = 0;
        let mut last_rank: Option<usize> = None;
        loop {
            let num_start = self.pos;
            while matches!(self.peek(), Some('0'..='9')) {
                self.pos += 1;
            }
            if self.pos == num_start {
                if last_rank.is_some() {
                    break;
                }
                return Err(self.error(format!(
                    "expected a duration such as 30s, 1m or 1h30m, found {}",
                    self.found()
                )));
            }
            let digits = self.src.get(num_start..self.pos).unwrap_or("");
            let unit_at = self.pos;
            let Some((unit, factor)) = UNITS
                .iter()
                .find(|(u, _)| self.rest().starts_with(u))
                .copied()
            else {
                return Err(self.error(format!(
                    "expected a duration unit (ms, s, m, h, d, w, y) after `{digits}`, found {}",
                    self.found()
                )));
            };
            let r = rank(unit);
            if last_rank.is_some_and(|last| r <= last) {
                return Err(self.error_at(
                    unit_at,
                    "duration units must go from largest to smallest, each once (e.g. 1h30m)",
                ));
            }
            last_rank = Some(r);
            self.pos += unit.len();
            let part = digits
                .parse::<i64>()
                .ok()
                .and_then(|n| n.checked_mul(factor))
                .and_then(|ms| total.checked_add(ms));
            match part {
                Some(t) => total = t,
                None => return Err(self.error_at(start, "duration is too long")),
            }
        }
        if total <= 0 {
            return Err(self.error_at(start, "range duration must be greater than zero"));
        }
        Ok(total)
    }
}
