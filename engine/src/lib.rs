//! orkestra's engine: everything between a Katalog file and "what should exist".
//!
//! The plugin (`kubectl orkestra lint`, `render`, `plan`) and the agent call this one library, so
//! what the plugin shows offline is exactly what the agent does in the cluster.
//!
//! - [`source`] parses YAML and remembers where every node is, so every problem has a
//!   file:line:column;
//! - [`template`] compiles Go-template scalars onto handlebars and renders them with types kept;
//! - [`graph`] makes one graph of an entry's declarations (ids, `.resources` reads, `after`);
//! - [`render`] walks it: a node is rendered once what it reads is ready, else it waits;
//! - [`generate`] makes `generate:`d Secret values from the operating system's randomness;
#![forbid(unsafe_code)]

pub mod apply;
pub mod blocks;
pub mod condition;
pub mod cross;
pub mod diagnostic;
pub mod generate;
pub mod graph;
pub mod katalog;
pub mod load;
pub mod mutation;
pub mod path;
pub mod source;
pub mod template;
pub mod validation;
pub mod value;

pub use diagnostic::{Diagnostic, Severity};
pub use katalog::{CrdEntry, Generate, Katalog};
pub use load::{load_file, Loaded};
pub use source::SourceFile;
pub mod objects;
pub mod render;

pub use render::{
    render, render_status, walk, Child, Desired, External, Observed, RenderError, Seen, Unknown,
    Waiting,
};
pub mod cr;
pub mod crd;
pub mod lint;
pub mod readiness;
