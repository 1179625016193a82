//! Rule texts for tests, here and in the daemon's (the `testing` feature).

use super::Diagnostic;

/// A valid rule; fields added by [`with`] start on line 7, column 5.
pub const BASE: &str = "\
rules:
  - name: r1
    conditionType: example.com/gate
    vars:
      x: {scrape: 'up'}
    expr: 'x > 0'
";

/// [`BASE`] with `extra`'s lines added to its rule.
pub fn with(extra: &str) -> String {
    let mut s = BASE.to_string();
    for line in extra.lines() {
        s.push_str("    ");
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// A valid rule file holding one rule named `name`.
pub fn rule_file(name: &str) -> String {
    format!(
        "rules:\n  - name: {name}\n    conditionType: example.com/gate\n    vars:\n      x: {{scrape: up}}\n    expr: x > 0\n"
    )
}

/// Diagnostics one a line, for assertion messages.
pub fn render(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}
