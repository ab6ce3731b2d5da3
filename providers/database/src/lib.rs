//! The `database` provider: PostgreSQL and MongoDB databases, users and grants declared in a
//! Katalog's `database:` block.
//!
//! Every item names its `driver` (`postgres` or `mongo`) and its admin `connection` (a Secret
//! with host, port, username, password and sslmode, or values composed from another node such
//! as an RDS instance's endpoint and a generated password Secret). Kinds:
//!
//! - `database`: PostgreSQL databases (owner, encoding, extensions); MongoDB databases (made on
//!   their first collection: a marker collection carries the ownership mark);
//! - `user`: PostgreSQL roles (login, connection limit, membership, password); MongoDB users
//!   (roles, password);
//! - `grant`: PostgreSQL privileges on a database, a schema or tables (and default privileges);
//!   MongoDB roles granted to a user.
//!
//! Modules:
//! - [`DatabaseProvider`] implements [`orkestra_provider::Provider`];
//! - [`schema`]: the kinds, fields, outputs and naming rules lint checks;
//! - [`connection`]: resolving `connection:` through the read-only reader, TLS, pooling;
//! - [`password`]: passwords sent as SCRAM verifiers, rotation judged from a keyed digest;
//! - [`ownership`]: ownership marks in comments, and the conflict/adopt/Observe/Orphan rules;
//! - [`sql`]: quoting; names are never interpolated unquoted;
//! - [`postgres`], [`mongo`]: the drivers; [`scram`]: SCRAM by hand for MongoDB-compatible
//!   servers the official driver cannot authenticate to (FerretDB 1.x).
//!
//! Passwords never appear in a log, an event, a status row or a plan: they are read from
//! Secrets as [`orkestra_provider::SecretValue`] (whose `Debug` is `(sensitive)`), sent as
//! SCRAM verifiers (PostgreSQL) or in the command body (MongoDB), and represented in status by
//! a keyed digest only.
#![forbid(unsafe_code)]

pub mod connection;
mod error;
#[cfg(test)]
mod fixtures;
pub mod mongo;
pub mod ownership;
pub mod password;
pub mod postgres;
pub mod provider;
pub mod schema;
pub mod scram;
pub mod sql;

pub use error::DatabaseError;
pub use provider::DatabaseProvider;
pub use schema::schema;
