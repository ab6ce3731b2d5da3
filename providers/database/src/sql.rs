//! Quoting for the PostgreSQL statements that take no parameters.
//!
//! Queries pass names as parameters (`WHERE datname = $1`). DDL (`CREATE ROLE`, `COMMENT ON`,
//! `GRANT`) cannot take parameters, so names go through [`ident`] (always double-quoted, inner
//! quotes doubled: the server reads the exact name back, whatever it contains) and values through
//! [`literal`] (libpq's `PQescapeLiteral` rule). Neither ever leaves a name unquoted, so a name is
//! data, not SQL. A NUL cannot be represented in either and is refused.

use orkestra_provider::ProviderError;

/// `name` as a quoted identifier: `"my ""odd"" name"`.
pub fn ident(name: &str) -> Result<String, ProviderError> {
    if name.contains('\0') {
        return Err(ProviderError::invalid_field(
            "name",
            "contains a NUL character",
        ));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// `value` as a string literal: `'it''s'`, or `E'a\\b'` when it holds a backslash, so the result
/// is the same whatever `standard_conforming_strings` is set to.
pub fn literal(value: &str) -> Result<String, ProviderError> {
    if value.contains('\0') {
        return Err(ProviderError::invalid_field(
            "value",
            "contains a NUL character",
        ));
    }
    let quoted = value.replace('\'', "''");
    Ok(if value.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    })
}

/// A comma-separated list of quoted identifiers.
pub fn idents<S: AsRef<str>>(names: &[S]) -> Result<String, ProviderError> {
    Ok(names
        .iter()
        .map(|n| ident(n.as_ref()))
        .collect::<Result<Vec<_>, _>>()?
        .join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_always_quoted() {
        assert_eq!(ident("app").unwrap(), "\"app\"");
        assert_eq!(
            ident("x\"; DROP ROLE postgres; --").unwrap(),
            "\"x\"\"; DROP ROLE postgres; --\""
        );
        assert!(ident("a\0b").is_err());
        assert_eq!(idents(&["a", "b\"c"]).unwrap(), "\"a\", \"b\"\"c\"");
    }

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(literal("it's").unwrap(), "'it''s'");
        assert_eq!(literal("a\\'b").unwrap(), "E'a\\\\''b'");
        assert_eq!(literal("{\"k\": \"v\"}").unwrap(), "'{\"k\": \"v\"}'");
        assert!(literal("\0").is_err());
    }
}
