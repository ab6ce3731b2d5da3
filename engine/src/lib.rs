//! orkestra's engine: everything between a Katalog file and "what should exist".
//!
//! The plugin (`kubectl orkestra lint`, `render`, `plan`) and the agent call this one library, so
//! what the plugin shows offline is exactly what the agent does in the cluster.
//!
//! - [`source`] parses YAML and remembers where every node is, so every problem has a
//!   file:line:column;
//! - [`template`] compiles Go-template scalars onto handlebars and renders them with types kept;
#![forbid(unsafe_code)]

pub mod diagnostic;
pub mod path;
pub mod source;
pub mod template;
