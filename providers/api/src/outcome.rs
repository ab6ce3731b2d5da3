//! What an apply or delete achieved.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The state of an external resource as shown in a status row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Not started yet (earlier declarations still in progress, or waiting for a retry).
    Pending,
    /// Being created; the runtime requeues.
    Creating,
    /// Being changed; the runtime requeues.
    Updating,
    /// Exists and matches the declaration (or is observed, under `managementPolicy: Observe`).
    Ready,
    /// Being deleted, or deletion is held back for the reason in the message.
    Deleting,
    /// Gone after a delete: the runtime drops the row.
    Deleted,
    /// Failed; the message says why.
    Error,
    /// Left in place on purpose (`deletionPolicy: Orphan`, `managementPolicy: Observe`).
    Orphaned,
    /// Exists but belongs to someone else: never touched.
    Conflict,
}

impl State {
    /// An operation is still running and the runtime should come back.
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            State::Creating | State::Updating | State::Deleting | State::Pending
        )
    }

    /// Nothing more will happen on deletion: the finalizer may be released for this resource.
    pub fn delete_finished(self) -> bool {
        matches!(self, State::Deleted | State::Orphaned | State::Conflict)
    }
}

/// What `apply` or `delete` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Resulting state.
    pub state: State,
    /// Resource id (ARN), when known.
    pub id: Option<String>,
    /// Why the state is what it is (empty when Ready with nothing to say). Never a secret.
    pub message: String,
    /// Non-secret outputs (endpoint, region, status).
    pub outputs: Map<String, Value>,
    /// Come back after this long (an operation is in progress, or held back).
    pub requeue_after: Option<Duration>,
    /// Mutating calls made (for metrics and for proving no-ops).
    pub mutations: u32,
}

impl Outcome {
    /// An outcome in `state` with nothing else to say.
    pub fn new(state: State) -> Self {
        Self {
            state,
            id: None,
            message: String::new(),
            outputs: Map::new(),
            requeue_after: None,
            mutations: 0,
        }
    }

    /// Set the id.
    pub fn id(mut self, id: Option<String>) -> Self {
        self.id = id;
        self
    }

    /// Set the message.
    pub fn message(mut self, m: impl Into<String>) -> Self {
        self.message = m.into();
        self
    }

    /// Set the outputs.
    pub fn outputs(mut self, o: Map<String, Value>) -> Self {
        self.outputs = o;
        self
    }

    /// Ask the runtime to come back after `d`.
    pub fn requeue(mut self, d: Duration) -> Self {
        self.requeue_after = Some(d);
        self
    }

    /// Record `n` mutating calls.
    pub fn mutations(mut self, n: u32) -> Self {
        self.mutations = n;
        self
    }
}
