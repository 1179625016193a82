//! Diagnostics: what is wrong in a rule file, and exactly where.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding about a rule file.
///
/// `line` and `column` are 1-based and count characters. Both are 0 for findings about a
/// whole file (it cannot be read, is too large, ...); `Display` then leaves them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The rule's `name`, when the finding is inside a rule that has one.
    pub rule: Option<String>,
    /// Dotted path of the field, relative to the rule (`vars.errors.scrape`), or from the
    /// document root (`rules[2].interval`) when the rule has no usable name.
    pub field: Option<String>,
    pub message: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Orders by file, then position, errors before warnings at the same place.
    pub(crate) fn sort_key(&self) -> (&PathBuf, usize, usize, Severity) {
        (&self.file, self.line, self.column, self.severity)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": {}: ", self.severity)?;
        if let Some(rule) = &self.rule {
            write!(f, "rule {rule:?}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "field {field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Sorts diagnostics by file and position.
pub(crate) fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

/// A rule set was rejected. Holds every diagnostic (errors and warnings), sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesError {
    pub diagnostics: Vec<Diagnostic>,
}

impl RulesError {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }
}

impl RulesError {
    /// As `Display`, with at most `max` errors listed and the rest counted: what a reload
    /// logs and shows on `/readyz`, bounded however broken the files are.
    pub fn summary(&self, max: usize) -> String {
        let mut out = self.header();
        for d in self.errors().take(max) {
            out.push('\n');
            out.push_str(&d.to_string());
        }
        let more = self.errors().count().saturating_sub(max);
        if more > 0 {
            out.push_str(&format!(
                "\n... and {more} more error{} (`podgate check` lists them all)",
                if more == 1 { "" } else { "s" }
            ));
        }
        out
    }

    fn header(&self) -> String {
        let n = self.errors().count();
        format!(
            "rule files rejected with {n} error{}",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.header())?;
        for d in self.errors() {
            write!(f, "\n{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RulesError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(rule: Option<&str>, field: Option<&str>, line: usize) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: PathBuf::from("rules/shop.yaml"),
            line,
            column: 7,
            rule: rule.map(str::to_string),
            field: field.map(str::to_string),
            message: "bad".to_string(),
        }
    }

    #[test]
    fn display_has_every_part() {
        let d = diag(Some("checkout-errors"), Some("vars.errors.scrape"), 12);
        assert_eq!(
            d.to_string(),
            "rules/shop.yaml:12:7: error: rule \"checkout-errors\": field vars.errors.scrape: bad"
        );
    }

    #[test]
    fn display_leaves_out_missing_parts() {
        assert_eq!(
            diag(None, None, 3).to_string(),
            "rules/shop.yaml:3:7: error: bad"
        );
        assert_eq!(
            diag(None, None, 0).to_string(),
            "rules/shop.yaml: error: bad"
        );
        let mut w = diag(None, Some("rules[0].vars"), 2);
        w.severity = Severity::Warning;
        assert_eq!(
            w.to_string(),
            "rules/shop.yaml:2:7: warning: field rules[0].vars: bad"
        );
    }
}
