//! Rule files and metrics bodies the daemon tests share: the work-queue rule most of them
//! decide a gate with, built and varied field by field, and the bodies its pods serve.

use std::fmt::Display;

/// A metrics body: gauge `work_queue_depth` at `depth`.
pub fn queue(depth: u32) -> String {
    format!("# TYPE work_queue_depth gauge\nwork_queue_depth {depth}\n")
}

/// As [`queue`], the series carrying the label `queue="a"`.
pub fn labelled_queue(depth: u32) -> String {
    format!("# TYPE work_queue_depth gauge\nwork_queue_depth{{queue=\"a\"}} {depth}\n")
}

/// One rule of a rule file, as YAML text, built from named fields in order.
#[derive(Debug, Clone)]
pub struct RuleYaml {
    /// `(key, value)` in the order written; `vars` is written as its block before `expr`.
    fields: Vec<(String, String)>,
    vars: Vec<(String, String)>,
    expr: String,
    /// Written as it is after `expr` (e.g. a field the test varies as text).
    tail: String,
}

impl RuleYaml {
    /// Rule `queue` on `gate`: `max(work_queue_depth) < 100` from the pod's port `metrics`,
    /// every second (timeout 500ms), a failure turning the gate False at once.
    pub fn queue(gate: &str) -> RuleYaml {
        RuleYaml {
            fields: vec![
                ("name".into(), "queue".into()),
                ("conditionType".into(), gate.into()),
                ("interval".into(), "1s".into()),
                ("timeout".into(), "500ms".into()),
                ("failureThreshold".into(), "1".into()),
                ("scrape".into(), "{port: metrics}".into()),
            ],
            vars: vec![("queue".into(), "{scrape: 'max(work_queue_depth)'}".into())],
            expr: "queue < 100".into(),
            tail: String::new(),
        }
    }

    /// Sets `key` to `value`: in place when the rule has it, else before `scrape`.
    pub fn with(mut self, key: &str, value: impl Display) -> RuleYaml {
        let value = value.to_string();
        if let Some(f) = self.fields.iter_mut().find(|(k, _)| k == key) {
            f.1 = value;
        } else {
            let at = self
                .fields
                .iter()
                .position(|(k, _)| k == "scrape")
                .unwrap_or(self.fields.len());
            self.fields.insert(at, (key.to_string(), value));
        }
        self
    }

    pub fn name(self, name: &str) -> RuleYaml {
        self.with("name", name)
    }

    /// The expression `queue < limit`.
    pub fn limit(mut self, limit: impl Display) -> RuleYaml {
        self.expr = format!("queue < {limit}");
        self
    }

    /// Text written as it is after `expr`: fields of the rule, four spaces in.
    pub fn tail(mut self, text: &str) -> RuleYaml {
        self.tail.push_str(text);
        self
    }

    /// The rule as an item of a `rules:` list.
    pub fn item(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.fields.iter().enumerate() {
            let lead = if i == 0 { "  - " } else { "    " };
            out.push_str(&format!("{lead}{k}: {v}\n"));
        }
        out.push_str("    vars:\n");
        for (name, def) in &self.vars {
            out.push_str(&format!("      {name}: {def}\n"));
        }
        out.push_str(&format!("    expr: '{}'\n", self.expr));
        out.push_str(&self.tail);
        out
    }

    /// A rule file holding this rule alone.
    pub fn file(&self) -> String {
        rule_file([self])
    }
}

/// A rule file holding `rules` in order.
pub fn rule_file<'a>(rules: impl IntoIterator<Item = &'a RuleYaml>) -> String {
    let mut out = String::from("rules:\n");
    for r in rules {
        out.push_str(&r.item());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_rule_is_the_file_the_daemon_tests_wrote_by_hand() {
        let gate = "podgate.dev/x";
        let by_hand = format!(
            r#"rules:
  - name: queue
    conditionType: {gate}
    interval: 1s
    timeout: 500ms
    failureThreshold: 1
    scrape: {{port: metrics}}
    vars:
      queue: {{scrape: 'max(work_queue_depth)'}}
    expr: 'queue < 100'
"#
        );
        assert_eq!(RuleYaml::queue(gate).file(), by_hand);
    }

    #[test]
    fn fields_are_replaced_in_place_or_added_before_scrape() {
        let text = RuleYaml::queue("g")
            .with("onError", "fail")
            .with("interval", "2s")
            .limit(7)
            .item();
        assert!(
            text.contains("    interval: 2s\n    timeout: 500ms\n"),
            "{text}"
        );
        assert!(
            text.contains("    onError: fail\n    scrape: {port: metrics}\n"),
            "{text}"
        );
        assert!(text.ends_with("    expr: 'queue < 7'\n"), "{text}");
    }
}
