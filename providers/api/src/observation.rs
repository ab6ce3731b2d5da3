//! What a provider saw when it looked (read-only) at the external resource.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ownership::Ownership;

/// The result of `observe`: the external state, in the declaration's own field names so the diff
/// can compare field by field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// The resource exists.
    pub exists: bool,
    /// Its id (an ARN), when it exists.
    pub id: Option<String>,
    /// Observed values keyed like the declaration's fields (`versioning`, `instanceClass`).
    /// Where a change is already requested but pending (RDS), the pending value is reported so
    /// the diff does not ask for it again.
    pub fields: Map<String, Value>,
    /// All tags on the resource, ownership tags included.
    pub tags: BTreeMap<String, String>,
    /// Whose the resource is, judged from `tags`.
    pub ownership: Ownership,
    /// The provider's own status word (`available`, `creating`), if it has one.
    pub status: Option<String>,
    /// An operation is running on the resource (create, modify, delete): do not start another.
    pub busy: bool,
    /// Non-secret outputs (endpoint, region).
    pub outputs: Map<String, Value>,
    /// Human notes worth showing (pending modifications, the region found).
    pub notes: Vec<String>,
}

impl Observation {
    /// A resource that does not exist.
    pub fn absent() -> Self {
        Self::default()
    }
}
