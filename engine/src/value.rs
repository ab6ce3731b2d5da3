//! Templated values: a YAML value tree whose string scalars may be templates.
//!
//! Rendering walks the tree and renders each scalar on its own, which is what makes YAML injection
//! impossible: structure comes only from the Katalog, never from a CR value.

use serde_json::{Map, Value};

use crate::template::{Scope, Template, TemplateSet};

/// A value from a Katalog, compiled.
#[derive(Debug, Clone)]
pub enum Tv {
    /// A non-string scalar, or a string with no template in it.
    Lit(Value),
    Tpl(Template),
    Map(Vec<(String, Tv)>),
    List(Vec<Tv>),
}

/// A rendering failure: the path inside the value and the function's message.
#[derive(Debug, Clone, PartialEq)]
pub struct TvError {
    pub path: String,
    pub message: String,
}

impl Tv {
    /// Render against a scope. A single expression that yields nothing renders as null.
    pub fn render(&self, set: &TemplateSet, scope: &Scope) -> Result<Value, TvError> {
        self.render_at(set, scope, &mut String::new())
    }

    fn render_at(
        &self,
        set: &TemplateSet,
        scope: &Scope,
        at: &mut String,
    ) -> Result<Value, TvError> {
        Ok(match self {
            Tv::Lit(v) => v.clone(),
            Tv::Tpl(t) => set.render(t, scope).map_err(|message| TvError {
                path: at.clone(),
                message,
            })?,
            Tv::Map(items) => {
                let mut m = Map::with_capacity(items.len());
                for (k, v) in items {
                    let len = at.len();
                    if !at.is_empty() {
                        at.push('.');
                    }
                    at.push_str(k);
                    let r = v.render_at(set, scope, at);
                    at.truncate(len);
                    m.insert(k.clone(), r?);
                }
                Value::Object(m)
            }
            Tv::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    let len = at.len();
                    at.push_str(&format!("[{i}]"));
                    let r = v.render_at(set, scope, at);
                    at.truncate(len);
                    out.push(r?);
                }
                Value::Array(out)
            }
        })
    }

    /// The entry of a map by key.
    pub fn get(&self, key: &str) -> Option<&Tv> {
        match self {
            Tv::Map(items) => items.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The literal value, when the whole subtree has no template in it.
    pub fn literal(&self) -> Option<Value> {
        match self {
            Tv::Lit(v) => Some(v.clone()),
            Tv::Tpl(Template::Literal(v)) => Some(v.clone()),
            Tv::Tpl(_) => None,
            Tv::Map(items) => {
                let mut m = Map::new();
                for (k, v) in items {
                    m.insert(k.clone(), v.literal()?);
                }
                Some(Value::Object(m))
            }
            Tv::List(items) => items
                .iter()
                .map(Tv::literal)
                .collect::<Option<Vec<_>>>()
                .map(Value::Array),
        }
    }

    /// Every template in the subtree, with its path relative to this value.
    pub fn templates<'a>(&'a self, at: String, out: &mut Vec<(String, &'a Template)>) {
        match self {
            Tv::Lit(_) => {}
            Tv::Tpl(t) => out.push((at, t)),
            Tv::Map(items) => {
                for (k, v) in items {
                    let p = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    v.templates(p, out);
                }
            }
            Tv::List(items) => {
                for (i, v) in items.iter().enumerate() {
                    v.templates(format!("{at}[{i}]"), out);
                }
            }
        }
    }
}
