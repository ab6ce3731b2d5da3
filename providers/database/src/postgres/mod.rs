//! The `postgres` driver: databases, roles and grants through tokio-postgres.
//!
//! Reads are parameterised queries on the catalogs any role may read (`pg_database`, `pg_roles`,
//! `pg_auth_members`, `pg_shdescription`, `aclexplode` of the ACLs), so observing works for an
//! RDS master user as well as for a superuser, and makes no write: a second reconcile with
//! nothing changed runs read-only transactions only (no transaction id is assigned; the tests
//! count this on the server). Statements that change something are DDL, built with
//! [`crate::sql`]'s quoting, one statement per call, each counted as a mutation.

pub mod database;
pub mod grant;
pub mod role;

use orkestra_provider::{Declaration, ProviderError};
use serde_json::{json, Map, Value};
use tokio_postgres::Client;

use crate::connection::Endpoint;
use crate::error::DatabaseError;

/// Run one statement that changes something. `what` names it in errors (`CREATE ROLE`); the
/// statement text itself is never put in an error or a log (it may carry a password verifier).
pub(crate) async fn exec(
    client: &Client,
    what: &str,
    statement: &str,
) -> Result<(), ProviderError> {
    tracing::debug!(statement = what, "executing");
    client
        .batch_execute(statement)
        .await
        .map_err(|e| DatabaseError::postgres(what, e).into())
}

/// Like [`exec`], but keeps the driver's error so the caller can look at its SQLSTATE.
pub(crate) async fn exec_raw(
    client: &Client,
    what: &str,
    statement: &str,
) -> Result<(), DatabaseError> {
    tracing::debug!(statement = what, "executing");
    client
        .batch_execute(statement)
        .await
        .map_err(|e| DatabaseError::postgres(what, e))
}

/// A read, mapped to a [`ProviderError`] naming `what`.
pub(crate) async fn query(
    client: &Client,
    what: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, ProviderError> {
    client
        .query(sql, params)
        .await
        .map_err(|e| DatabaseError::postgres(what, e).into())
}

/// The resource id: `postgres://HOST:PORT/<kind>/<name>` (`database`, `role`, `grant`).
pub(crate) fn id(ep: &Endpoint, kind: &str, name: &str) -> String {
    format!("postgres://{}/{kind}/{name}", ep.target())
}

/// The outputs every kind shares: where the server is.
pub(crate) fn location(ep: &Endpoint) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("host".into(), json!(ep.host));
    m.insert("port".into(), json!(ep.port));
    m
}

/// The declaration's fields as a Create plan shows them: without the connection (where, not
/// what) and with secrets hidden.
pub(crate) fn shown_fields(decl: &Declaration) -> Map<String, Value> {
    let mut fields = decl.fields.clone();
    fields.remove("connection");
    fields
}
