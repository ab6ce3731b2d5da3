//! The crate's one error type, [`DatabaseError`], and its conversion into the
//! [`ProviderError`] the runtime understands.
//!
//! Server errors keep the server's own code (PostgreSQL's SQLSTATE, MongoDB's error code name)
//! and message, and say whether a retry can help: an unreachable server, wrong credentials and a
//! role that does not exist yet are retried with backoff (a Secret or another node may fix them);
//! a privilege the admin lacks or a statement the server refuses is not. Messages are built from
//! the server's message only, never from the connection settings, so a password cannot reach a
//! row or a log through an error.

use orkestra_provider::ProviderError;

/// What went wrong talking to a database server.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// A PostgreSQL statement or connection failed.
    #[error("{operation} failed: {source}")]
    Postgres {
        /// What was being done (`CREATE ROLE`, `connect to db:5432`).
        operation: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A MongoDB command or connection failed.
    #[error("{operation} failed: {source}")]
    Mongo {
        /// The command (`createUser`, `usersInfo`).
        operation: String,
        /// The driver's error.
        #[source]
        source: Box<mongodb::error::Error>,
    },
    /// TLS could not be set up for a connection.
    #[error("TLS setup for {target} failed: {message}")]
    Tls {
        /// `host:port`.
        target: String,
        /// Why.
        message: String,
    },
    /// A connection attempt did not finish in time.
    #[error("connecting to {target} timed out after {seconds}s")]
    Timeout {
        /// `host:port`.
        target: String,
        /// The limit.
        seconds: u64,
    },
}

impl DatabaseError {
    /// A PostgreSQL failure of `operation`.
    pub fn postgres(operation: impl Into<String>, source: tokio_postgres::Error) -> Self {
        Self::Postgres {
            operation: operation.into(),
            source,
        }
    }

    /// A MongoDB failure of `operation`.
    pub fn mongo(operation: impl Into<String>, source: mongodb::error::Error) -> Self {
        Self::Mongo {
            operation: operation.into(),
            source: Box::new(source),
        }
    }

    /// The PostgreSQL SQLSTATE, when the server answered with one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Postgres { source, .. } => source.code().map(|c| c.code()),
            _ => None,
        }
    }
}

/// SQLSTATEs a retry can fix: connection trouble (class 08), the server shutting down or
/// starting (57P0x), too many connections (53300), serialization failures and deadlocks,
/// wrong credentials (28P01, 28000: the Secret may be corrected) and an object another node
/// has yet to create (42704 undefined_object: a role, 3D000: a database, 3F000: a schema,
/// 42P01: a table a migration has yet to make).
fn retryable_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("57P0")
        || code.starts_with("53")
        || matches!(
            code,
            "40001" | "40P01" | "28P01" | "28000" | "42704" | "3D000" | "3F000" | "42P01"
        )
}

/// MongoDB error codes a retry can fix: authentication (18), host unreachable / not primary
/// and the like (6, 7, 89, 91, 189, 10107, 11600, 11602, 13435, 13436) and a user or role that
/// does not exist yet (11, 31).
fn retryable_mongo(e: &mongodb::error::Error) -> bool {
    use mongodb::error::ErrorKind;
    match e.kind.as_ref() {
        ErrorKind::Command(c) => matches!(
            c.code,
            6 | 7 | 11 | 18 | 31 | 89 | 91 | 189 | 10107 | 11600 | 11602 | 13435 | 13436
        ),
        ErrorKind::Authentication { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::DnsResolve { .. } => true,
        _ => e.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR),
    }
}

fn postgres_parts(source: &tokio_postgres::Error) -> (Option<String>, String, bool) {
    match source.as_db_error() {
        Some(db) => {
            let code = db.code().code().to_string();
            let mut message = db.message().to_string();
            if let Some(detail) = db.detail() {
                message.push_str(&format!(" ({detail})"));
            }
            let retryable = retryable_sqlstate(&code);
            (Some(code), message, retryable)
        }
        None => {
            // No server answer: refused, reset, closed. Describe the chain, retry.
            let mut message = source.to_string();
            let mut cause = std::error::Error::source(source);
            while let Some(c) = cause {
                message.push_str(&format!(": {c}"));
                cause = c.source();
            }
            (None, message, true)
        }
    }
}

impl From<DatabaseError> for ProviderError {
    fn from(e: DatabaseError) -> Self {
        match e {
            DatabaseError::Postgres { operation, source } => {
                let (code, message, retryable) = postgres_parts(&source);
                ProviderError::api(operation, code, message, retryable)
            }
            DatabaseError::Mongo { operation, source } => {
                let code = match source.kind.as_ref() {
                    mongodb::error::ErrorKind::Command(c) => Some(c.code_name.clone())
                        .filter(|n| !n.is_empty())
                        .or_else(|| Some(c.code.to_string())),
                    _ => None,
                };
                let message = match source.kind.as_ref() {
                    mongodb::error::ErrorKind::Command(c) => c.message.clone(),
                    _ => source.to_string(),
                };
                ProviderError::api(operation, code, message, retryable_mongo(&source))
            }
            DatabaseError::Tls { target, message } => {
                ProviderError::api(format!("TLS setup for {target}"), None, message, false)
            }
            e @ DatabaseError::Timeout { .. } => {
                ProviderError::api("connect", None, e.to_string(), true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates() {
        for c in ["08006", "57P01", "53300", "28P01", "42704", "40001"] {
            assert!(retryable_sqlstate(c), "{c}");
        }
        for c in ["42501", "42601", "2BP01", "55006"] {
            assert!(!retryable_sqlstate(c), "{c}");
        }
    }

    #[test]
    fn timeouts_are_retryable_and_name_the_target() {
        let e: ProviderError = DatabaseError::Timeout {
            target: "db:5432".into(),
            seconds: 10,
        }
        .into();
        assert!(e.retryable());
        assert!(e.to_string().contains("db:5432 timed out after 10s"), "{e}");
    }
}
