//! Which pods a rule covers, on top of "the pod declares the rule's readiness gate":
//! a namespace list and a Kubernetes label selector, evaluated as Kubernetes does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Operator {
    pub const NAMES: [&'static str; 4] = ["In", "NotIn", "Exists", "DoesNotExist"];

    pub fn parse(s: &str) -> Option<Operator> {
        match s {
            "In" => Some(Operator::In),
            "NotIn" => Some(Operator::NotIn),
            "Exists" => Some(Operator::Exists),
            "DoesNotExist" => Some(Operator::DoesNotExist),
            _ => None,
        }
    }

    /// In and NotIn need a non-empty `values`; Exists and DoesNotExist forbid it.
    pub fn takes_values(self) -> bool {
        matches!(self, Operator::In | Operator::NotIn)
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        })
    }
}

/// One `matchExpressions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: BTreeSet<String>,
}

impl Requirement {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            // As in Kubernetes: a pod without the label matches NotIn.
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// A rule's `selector`. The empty selector matches every pod in every namespace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    /// Empty: all namespaces podgate watches.
    pub namespaces: BTreeSet<String>,
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<Requirement>,
}

impl Selector {
    /// Whether a pod in `namespace` with `labels` is covered: the namespace is listed (or
    /// no namespaces are listed), and every `matchLabels` pair and every `matchExpressions`
    /// requirement holds (they are ANDed, as in Kubernetes).
    pub fn matches(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        self.matches_namespace(namespace) && self.matches_labels(labels)
    }

    pub fn matches_namespace(&self, namespace: &str) -> bool {
        self.namespaces.is_empty() || self.namespaces.contains(namespace)
    }

    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.to_string(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        let s = Selector::default();
        assert!(s.matches("any", &labels(&[])));
        assert!(s.matches("kube-system", &labels(&[("a", "b")])));
    }

    #[test]
    fn namespaces_restrict() {
        let s = Selector {
            namespaces: ["shop".to_string(), "pay".to_string()].into(),
            ..Selector::default()
        };
        assert!(s.matches("shop", &labels(&[])));
        assert!(s.matches("pay", &labels(&[])));
        assert!(!s.matches("other", &labels(&[])));
    }

    #[test]
    fn match_labels_need_equal_values() {
        let s = Selector {
            match_labels: labels(&[("app", "checkout"), ("tier", "web")]),
            ..Selector::default()
        };
        assert!(s.matches(
            "ns",
            &labels(&[("app", "checkout"), ("tier", "web"), ("x", "y")])
        ));
        assert!(!s.matches("ns", &labels(&[("app", "checkout")])));
        assert!(!s.matches("ns", &labels(&[("app", "cart"), ("tier", "web")])));
    }

    #[test]
    fn in_requires_present_label_with_listed_value() {
        let r = req("env", Operator::In, &["prod", "staging"]);
        assert!(r.matches(&labels(&[("env", "prod")])));
        assert!(r.matches(&labels(&[("env", "staging")])));
        assert!(!r.matches(&labels(&[("env", "dev")])));
        assert!(!r.matches(&labels(&[])));
    }

    #[test]
    fn not_in_matches_missing_label() {
        let r = req("env", Operator::NotIn, &["prod"]);
        assert!(r.matches(&labels(&[("env", "dev")])));
        assert!(r.matches(&labels(&[])));
        assert!(!r.matches(&labels(&[("env", "prod")])));
    }

    #[test]
    fn exists_and_does_not_exist() {
        let e = req("canary", Operator::Exists, &[]);
        let d = req("canary", Operator::DoesNotExist, &[]);
        let with = labels(&[("canary", "")]);
        let without = labels(&[("other", "x")]);
        assert!(e.matches(&with));
        assert!(!e.matches(&without));
        assert!(!d.matches(&with));
        assert!(d.matches(&without));
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let s = Selector {
            namespaces: BTreeSet::new(),
            match_labels: labels(&[("app", "checkout")]),
            match_expressions: vec![req("track", Operator::NotIn, &["canary"])],
        };
        assert!(s.matches("ns", &labels(&[("app", "checkout")])));
        assert!(!s.matches("ns", &labels(&[("app", "checkout"), ("track", "canary")])));
        assert!(!s.matches("ns", &labels(&[("track", "stable")])));
    }

    #[test]
    fn operators_parse_case_sensitively() {
        for name in Operator::NAMES {
            let op = Operator::parse(name);
            assert_eq!(op.map(|o| o.to_string()), Some(name.to_string()));
        }
        assert_eq!(Operator::parse("in"), None);
        assert_eq!(Operator::parse("NotExists"), None);
    }
}
