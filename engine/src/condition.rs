//! `when` (all must hold) and `or` (one must hold) on Katalog entries.

use regex::Regex;
use serde_json::Value;

use crate::template::functions::to_text;
use crate::template::{Scope, TemplateSet};
use crate::value::{Tv, TvError};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    NotEquals,
    Contains,
    Prefix,
    Suffix,
    Exists,
    NotExists,
    Gt,
    Lt,
    Gte,
    Lte,
    In,
    NotIn,
    Regex,
}

impl Operator {
    /// Every operator name as written in a Katalog.
    pub const NAMES: &'static [&'static str] = &[
        "equals",
        "notEquals",
        "contains",
        "prefix",
        "suffix",
        "exists",
        "notExists",
        "gt",
        "lt",
        "gte",
        "lte",
        "in",
        "notIn",
        "regex",
        // Upstream Orkestra's spellings of the comparisons.
        "greaterThan",
        "lessThan",
        "greaterThanOrEqual",
        "lessThanOrEqual",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        use Operator::*;
        Some(match s {
            "equals" => Equals,
            "notEquals" => NotEquals,
            "contains" => Contains,
            "prefix" => Prefix,
            "suffix" => Suffix,
            "exists" => Exists,
            "notExists" => NotExists,
            "gt" | "greaterThan" => Gt,
            "lt" | "lessThan" => Lt,
            "gte" | "greaterThanOrEqual" => Gte,
            "lte" | "lessThanOrEqual" => Lte,
            "in" => In,
            "notIn" => NotIn,
            "regex" => Regex,
            _ => return None,
        })
    }

    /// Whether the operator needs a `value`.
    pub fn needs_value(self) -> bool {
        !matches!(self, Operator::Exists | Operator::NotExists)
    }
}

/// One condition: the CR value at `field` compared with `value`.
#[derive(Debug, Clone)]
pub struct Condition {
    /// The field, as a template that renders the CR's value (`spec.tier` is kept as written for messages).
    pub field: String,
    pub(crate) subject: Tv,
    pub operator: Operator,
    pub(crate) value: Option<Tv>,
    /// A regex compiled once at load.
    pub(crate) regex: Option<Regex>,
}

/// The conditions on an entry.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    pub all: Vec<Condition>,
    pub any: Vec<Condition>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.any.is_empty()
    }

    /// True when every `when` holds and, if there are `or` conditions, at least one of them does.
    pub fn holds(&self, set: &TemplateSet, scope: &Scope) -> Result<bool, TvError> {
        for c in &self.all {
            if !c.holds(set, scope)? {
                return Ok(false);
            }
        }
        if self.any.is_empty() {
            return Ok(true);
        }
        for c in &self.any {
            if c.holds(set, scope)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl Condition {
    fn holds(&self, set: &TemplateSet, scope: &Scope) -> Result<bool, TvError> {
        let subject = self.subject.render(set, scope)?;
        let exists = !subject.is_null();
        let value = match &self.value {
            Some(v) => v.render(set, scope)?,
            None => Value::Null,
        };
        // Values compare as strings after formatting (`true`, `3`), as katalog.md says.
        let (a, b) = (to_text(&subject), to_text(&value));
        let num = || Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?));
        let list = || -> Vec<String> {
            match &value {
                Value::Array(items) => items.iter().map(to_text).collect(),
                _ => b.split(',').map(|s| s.trim().to_string()).collect(),
            }
        };
        Ok(match self.operator {
            Operator::Equals => a == b,
            Operator::NotEquals => a != b,
            Operator::Contains => a.contains(&b),
            Operator::Prefix => a.starts_with(&b),
            Operator::Suffix => a.ends_with(&b),
            Operator::Exists => exists,
            Operator::NotExists => !exists,
            Operator::Gt => num().is_some_and(|(x, y)| x > y),
            Operator::Lt => num().is_some_and(|(x, y)| x < y),
            Operator::Gte => num().is_some_and(|(x, y)| x >= y),
            Operator::Lte => num().is_some_and(|(x, y)| x <= y),
            Operator::In => list().contains(&a),
            Operator::NotIn => !list().contains(&a),
            Operator::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(&a)),
        })
    }
}
