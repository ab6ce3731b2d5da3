//! What the `database` block accepts, what each kind outputs, and the naming rules PostgreSQL and
//! MongoDB enforce, so lint rejects a name the server would refuse before any connection is made.
//!
//! Every item names its `driver` (`postgres` or `mongo`): the block is discriminated by it, and
//! fields that only one driver understands are rejected for the other (see [`check_driver`]).
//! Names are always sent quoted (PostgreSQL) or as BSON strings (MongoDB), never spliced into a
//! statement, so the rules here exist to give early, readable errors, not for safety.
//!
//! Outputs are what other declarations reference as `.resources.<id>.outputs.<name>`. None is
//! sensitive: a password is never an output. `passwordVersion` is a keyed digest of the password
//! last set (see [`crate::password`]); it changes when the password changes and reveals nothing
//! about it.

use orkestra_provider::schema::OutputSchema as O;
use orkestra_provider::{
    Declaration, FieldSchema as F, FieldType as T, KindSchema, ProviderError, ProviderSchema,
    Validator,
};
use serde_json::Value;

/// Block key in a Katalog.
pub const NAME: &str = "database";

/// The drivers an item may name.
pub const DRIVERS: &[&str] = &["postgres", "mongo"];

/// PostgreSQL's identifier limit: NAMEDATALEN (64) minus the terminating NUL. Longer names are
/// silently truncated by the server, which would make two declarations collide.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// TLS modes, with libpq's meaning: `disable` never, `prefer` tries TLS (without verifying the
/// certificate) and falls back to plain, `require` insists on TLS without verifying the
/// certificate, `verify-full` checks the chain against the system roots and the host name.
pub const SSL_MODES: &[&str] = &["disable", "prefer", "require", "verify-full"];

/// PostgreSQL privileges by the object they apply to (`on:`).
pub const DATABASE_PRIVILEGES: &[&str] = &["CONNECT", "CREATE", "TEMPORARY"];
/// Privileges on a schema.
pub const SCHEMA_PRIVILEGES: &[&str] = &["USAGE", "CREATE"];
/// Privileges on tables.
pub const TABLE_PRIVILEGES: &[&str] = &[
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
];

const DELETION_POLICIES: &[&str] = &["Delete", "Orphan"];
const MANAGEMENT_POLICIES: &[&str] = &["Manage", "Observe"];

/// Fields only the PostgreSQL driver understands, by kind.
const POSTGRES_ONLY: &[(&str, &str)] = &[
    ("database", "owner"),
    ("database", "encoding"),
    ("database", "extensions"),
    ("user", "login"),
    ("user", "connectionLimit"),
    ("user", "memberOf"),
    ("grant", "on"),
    ("grant", "schema"),
    ("grant", "tables"),
    ("grant", "privileges"),
    ("grant", "defaultPrivileges"),
];
/// Fields only the MongoDB driver understands, by kind.
const MONGO_ONLY: &[(&str, &str)] = &[
    ("user", "authDatabase"),
    ("user", "roles"),
    ("grant", "roles"),
];

fn secret_ref() -> Vec<F> {
    vec![
        F::new("name", T::String).required(),
        F::new("key", T::String),
    ]
}

fn common() -> Vec<F> {
    vec![
        F::new("driver", T::String)
            .required()
            .immutable()
            .validate(Validator::OneOf(DRIVERS)),
        F::new("connection", T::Object).required().children(vec![
            F::new("secretName", T::String),
            F::new("host", T::String),
            F::new("port", T::Integer).validate(Validator::Range(1, 65535)),
            F::new("username", T::String),
            F::new("passwordSecret", T::Object).children(secret_ref()),
            F::new("sslmode", T::String).validate(Validator::OneOf(SSL_MODES)),
            F::new("database", T::String),
        ]),
        F::new("deletionPolicy", T::String).validate(Validator::OneOf(DELETION_POLICIES)),
        F::new("managementPolicy", T::String).validate(Validator::OneOf(MANAGEMENT_POLICIES)),
        F::new("adopt", T::Boolean),
    ]
}

/// The schema of the `database` provider.
pub fn schema() -> ProviderSchema {
    let mut database = vec![
        F::new("name", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(database_name)),
        F::new("owner", T::String).validate(Validator::Rule(role_name)),
        F::new("encoding", T::String)
            .immutable()
            .validate(Validator::Rule(encoding)),
        F::new("extensions", T::List),
    ];
    database.extend(common());
    let mut user = vec![
        F::new("name", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(role_name)),
        F::new("passwordSecret", T::Object)
            .sensitive()
            .children(secret_ref()),
        F::new("login", T::Boolean),
        F::new("connectionLimit", T::Integer).validate(Validator::Range(-1, 1_000_000)),
        F::new("memberOf", T::List),
        F::new("authDatabase", T::String)
            .immutable()
            .validate(Validator::Rule(mongo_database_name)),
        F::new("roles", T::List),
    ];
    user.extend(common());
    let mut grant = vec![
        F::new("name", T::String)
            .required()
            .validate(Validator::Rule(grant_label)),
        F::new("role", T::String)
            .required()
            .immutable()
            .validate(Validator::Rule(role_name)),
        F::new("database", T::String).validate(Validator::Rule(database_name)),
        F::new("on", T::String).validate(Validator::OneOf(&["database", "schema", "tables"])),
        F::new("schema", T::String).validate(Validator::Rule(identifier)),
        F::new("tables", T::List),
        F::new("privileges", T::List),
        F::new("defaultPrivileges", T::Boolean),
        F::new("authDatabase", T::String).validate(Validator::Rule(mongo_database_name)),
        F::new("roles", T::List),
    ];
    grant.extend(common());
    let location = || {
        vec![
            O::new("host", T::String, "the server's host name"),
            O::new("port", T::Integer, "the server's port"),
        ]
    };
    ProviderSchema {
        name: NAME,
        kinds: vec![
            KindSchema {
                name: "database",
                name_field: "name",
                fields: database,
                outputs: [
                    vec![
                        O::new("name", T::String, "the database's name"),
                        O::new(
                            "owner",
                            T::String,
                            "the role owning the database (PostgreSQL)",
                        ),
                    ],
                    location(),
                ]
                .concat(),
            },
            KindSchema {
                name: "user",
                name_field: "name",
                fields: user,
                outputs: [
                    vec![
                        O::new("name", T::String, "the role's or user's name"),
                        O::new(
                            "passwordVersion",
                            T::String,
                            "an opaque keyed digest of the password last set; changes when it changes",
                        ),
                    ],
                    location(),
                ]
                .concat(),
            },
            KindSchema {
                name: "grant",
                name_field: "name",
                fields: grant,
                outputs: [
                    vec![
                        O::new("role", T::String, "the grantee"),
                        O::new(
                            "privileges",
                            T::String,
                            "the privileges or roles granted, comma-separated",
                        ),
                    ],
                    location(),
                ]
                .concat(),
            },
        ],
    }
}

fn bytes_and_controls(s: &str, what: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "{what} {s:?} must be 1 to {MAX_IDENTIFIER_BYTES} bytes long (it is {})",
            s.len()
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(format!("{what} {s:?} must not contain control characters"));
    }
    if s.trim() != s {
        return Err(format!(
            "{what} {s:?} must not begin or end with whitespace"
        ));
    }
    Ok(())
}

/// A PostgreSQL identifier (schema, table, extension): 1 to 63 bytes, no control characters.
/// Any other character is allowed: identifiers are always sent double-quoted.
pub fn identifier(s: &str) -> Result<(), String> {
    bytes_and_controls(s, "identifier")
}

/// A database name: a PostgreSQL identifier that MongoDB would also accept when it is one
/// (checked per driver by [`check_driver`]).
pub fn database_name(s: &str) -> Result<(), String> {
    bytes_and_controls(s, "database name")
}

/// A role (user) name: an identifier that is not reserved by PostgreSQL (`pg_` prefix, `public`,
/// `none`, the `current_user` family).
pub fn role_name(s: &str) -> Result<(), String> {
    bytes_and_controls(s, "role name")?;
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("pg_") {
        return Err(format!(
            "role name {s:?} must not start with \"pg_\" (reserved by PostgreSQL)"
        ));
    }
    if matches!(
        lower.as_str(),
        "public" | "none" | "current_user" | "session_user" | "current_role"
    ) {
        return Err(format!("role name {s:?} is reserved by PostgreSQL"));
    }
    Ok(())
}

/// MongoDB's database name rules (Unix): fewer than 64 bytes, none of `/\. "$` and no NUL.
pub fn mongo_database_name(s: &str) -> Result<(), String> {
    bytes_and_controls(s, "database name")?;
    if let Some(c) = s.chars().find(|c| "/\\. \"$".contains(*c)) {
        return Err(format!(
            "MongoDB database name {s:?} must not contain {c:?}"
        ));
    }
    Ok(())
}

/// A grant's label: what its status row is called. Not sent to the server.
pub fn grant_label(s: &str) -> Result<(), String> {
    bytes_and_controls(s, "grant name")
}

/// An encoding name as `pg_encoding_to_char` spells it once normalised: letters and digits.
fn encoding(s: &str) -> Result<(), String> {
    if !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(format!(
            "encoding {s:?} must be a PostgreSQL encoding name like UTF8"
        ))
    }
}

/// `utf-8`, `UTF8` and `utf_8` all name UTF8: PostgreSQL ignores case and non-alphanumerics.
pub fn normalize_encoding(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The declaration's driver (checked by the schema, so `postgres` or `mongo`).
pub fn driver(decl: &Declaration) -> &str {
    decl.str("driver").unwrap_or("postgres")
}

/// The checks that span fields or depend on the driver, run before any connection: a field the
/// driver does not understand, a name the driver refuses, a connection without a server, list
/// fields whose items are not of the right shape.
pub fn check_driver(decl: &Declaration) -> Result<(), ProviderError> {
    let driver = driver(decl);
    let foreign = if driver == "mongo" {
        POSTGRES_ONLY
    } else {
        MONGO_ONLY
    };
    for (kind, field) in foreign {
        if *kind == decl.kind && decl.fields.contains_key(*field) {
            return Err(ProviderError::invalid_field(
                *field,
                format!("is not a field of driver {driver}"),
            ));
        }
    }
    let conn = decl.fields.get("connection");
    let has = |k: &str| conn.and_then(|c| c.get(k)).is_some();
    if !has("secretName") && !has("host") {
        return Err(ProviderError::invalid_field(
            "connection",
            "needs secretName (a Secret with host, port, username, password, sslmode) or host",
        ));
    }
    if driver == "mongo" && decl.kind == "database" {
        mongo_database_name(&decl.name).map_err(|m| ProviderError::invalid_field("name", m))?;
    }
    if driver == "mongo" && decl.kind == "user" && decl.name.contains('\0') {
        return Err(ProviderError::invalid_field("name", "contains NUL"));
    }
    if decl.kind == "database" {
        for ext in strings(decl, "extensions")? {
            identifier(&ext).map_err(|m| ProviderError::invalid_field("extensions", m))?;
        }
    }
    if decl.kind == "user" {
        for role in strings(decl, "memberOf")? {
            role_name(&role).map_err(|m| ProviderError::invalid_field("memberOf", m))?;
        }
    }
    if decl.kind == "grant" && driver == "postgres" {
        let on = decl.str("on").unwrap_or("database");
        let allowed = match on {
            "schema" => SCHEMA_PRIVILEGES,
            "tables" => TABLE_PRIVILEGES,
            _ => DATABASE_PRIVILEGES,
        };
        let privileges = strings(decl, "privileges")?;
        if privileges.is_empty() {
            return Err(ProviderError::invalid_field(
                "privileges",
                "is required for driver postgres",
            ));
        }
        for p in privileges {
            let upper = p.to_ascii_uppercase();
            if upper != "ALL" && !allowed.contains(&upper.as_str()) {
                return Err(ProviderError::invalid_field(
                    "privileges",
                    format!(
                        "{p:?} is not a privilege on {on} (one of ALL, {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        if !decl.fields.contains_key("database") {
            return Err(ProviderError::invalid_field(
                "database",
                "is required for a postgres grant",
            ));
        }
        for t in strings(decl, "tables")? {
            identifier(&t).map_err(|m| ProviderError::invalid_field("tables", m))?;
        }
        if decl.fields.contains_key("tables") && on != "tables" {
            return Err(ProviderError::invalid_field(
                "tables",
                "only applies with on: tables",
            ));
        }
        if decl.bool_or("defaultPrivileges", false) && on != "tables" {
            return Err(ProviderError::invalid_field(
                "defaultPrivileges",
                "only applies with on: tables",
            ));
        }
    }
    if driver == "mongo" && matches!(decl.kind.as_str(), "user" | "grant") {
        mongo_roles(decl)?;
    }
    Ok(())
}

/// A list field of strings (an absent field is empty).
pub fn strings(decl: &Declaration, field: &str) -> Result<Vec<String>, ProviderError> {
    match decl.fields.get(field) {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(ProviderError::invalid_field(
                    field,
                    format!("items must be strings, found {other}"),
                )),
            })
            .collect(),
        Some(other) => Err(ProviderError::invalid_field(
            field,
            format!("must be a list, found {other}"),
        )),
    }
}

/// A MongoDB role: `{role, db}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MongoRole {
    /// The role's name (`readWrite`).
    pub role: String,
    /// The database it applies to.
    pub db: String,
}

/// The declared `roles:` of a mongo user or grant, each `{role, db}` (or `"role@db"`).
pub fn mongo_roles(decl: &Declaration) -> Result<Vec<MongoRole>, ProviderError> {
    let bad = |m: String| ProviderError::invalid_field("roles", m);
    let Some(v) = decl.fields.get("roles") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = v else {
        return Err(bad(format!("must be a list, found {v}")));
    };
    let mut out = Vec::new();
    for item in items {
        let (role, db) = match item {
            Value::Object(m) => {
                if let Some(k) = m.keys().find(|k| *k != "role" && *k != "db") {
                    return Err(bad(format!("unknown key {k:?} (role, db)")));
                }
                (
                    m.get("role").and_then(Value::as_str),
                    m.get("db").and_then(Value::as_str),
                )
            }
            Value::String(s) => match s.split_once('@') {
                Some((r, d)) => (Some(r), Some(d)),
                None => (Some(s.as_str()), None),
            },
            other => return Err(bad(format!("items must be {{role, db}}, found {other}"))),
        };
        let role = role
            .filter(|r| !r.is_empty())
            .ok_or_else(|| bad("an item has no role".into()))?;
        let db = db
            .filter(|d| !d.is_empty())
            .ok_or_else(|| bad(format!("role {role:?} has no db")))?;
        mongo_database_name(db).map_err(bad)?;
        if role.contains('\0') {
            return Err(bad("a role contains NUL".into()));
        }
        out.push(MongoRole {
            role: role.to_string(),
            db: db.to_string(),
        });
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use orkestra_provider::Owner;
    use serde_json::json;

    fn build(kind: &str, item: Value) -> Result<Declaration, String> {
        let s = schema();
        let d = Declaration::from_rendered(
            NAME,
            s.kind(kind).unwrap(),
            item.as_object().unwrap(),
            Owner::default(),
        )
        .map_err(|e| e.to_string())?;
        check_driver(&d).map_err(|e| e.to_string())?;
        Ok(d)
    }

    #[test]
    fn identifiers_have_a_63_byte_limit_and_no_controls() {
        assert!(identifier(&"a".repeat(63)).is_ok());
        assert!(identifier(&"a".repeat(64)).is_err());
        // 63 bytes is the limit, not 63 characters: é is two bytes.
        assert!(identifier(&"é".repeat(32)).is_err());
        assert!(identifier("a\u{0}b").is_err());
        assert!(identifier("a\nb").is_err());
        assert!(identifier(" a").is_err());
        assert!(identifier("").is_err());
        // Quotes and semicolons are fine: identifiers are always quoted.
        assert!(identifier("x\"; DROP ROLE postgres; --").is_ok());
    }

    #[test]
    fn role_names_reserved_by_postgres_are_refused() {
        for bad in ["pg_monitor", "PG_x", "public", "NONE", "current_user"] {
            assert!(role_name(bad).is_err(), "{bad}");
        }
        assert!(role_name("app_rw").is_ok());
    }

    #[test]
    fn mongo_names() {
        assert!(mongo_database_name("app").is_ok());
        for bad in ["a.b", "a/b", "a b", "a$b", "a\"b"] {
            assert!(mongo_database_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encodings_normalise() {
        assert_eq!(normalize_encoding("utf-8"), "UTF8");
        assert_eq!(normalize_encoding("UTF8"), "UTF8");
        assert!(encoding("UTF8; DROP").is_err());
    }

    #[test]
    fn driver_checks() {
        let conn = json!({"host": "db", "passwordSecret": {"name": "s"}});
        let e = build(
            "database",
            json!({"name": "app", "driver": "mongo", "owner": "x", "connection": conn}),
        )
        .unwrap_err();
        assert!(
            e.contains("field owner: is not a field of driver mongo"),
            "{e}"
        );
        let e = build(
            "database",
            json!({"name": "a.b", "driver": "mongo", "connection": conn}),
        )
        .unwrap_err();
        assert!(e.contains("must not contain '.'"), "{e}");
        let e = build(
            "database",
            json!({"name": "app", "driver": "postgres", "connection": {}}),
        )
        .unwrap_err();
        assert!(e.contains("field connection: needs secretName"), "{e}");
        let e = build(
            "database",
            json!({"name": "app", "driver": "mysql", "connection": conn}),
        )
        .unwrap_err();
        assert!(e.contains("\"mysql\" is not one of postgres, mongo"), "{e}");
        let e = build(
            "grant",
            json!({"name": "g", "role": "r", "driver": "postgres", "database": "d",
                   "on": "schema", "privileges": ["SELECT"], "connection": conn}),
        )
        .unwrap_err();
        assert!(e.contains("\"SELECT\" is not a privilege on schema"), "{e}");
        let e = build(
            "user",
            json!({"name": "u", "driver": "mongo", "roles": [{"role": "read"}], "connection": conn}),
        )
        .unwrap_err();
        assert!(e.contains("role \"read\" has no db"), "{e}");
        let d = build(
            "user",
            json!({"name": "u", "driver": "mongo", "roles": ["read@app", {"role": "readWrite", "db": "app"}], "connection": conn}),
        )
        .unwrap();
        assert_eq!(mongo_roles(&d).unwrap().len(), 2);
        let e = build(
            "database",
            json!({"name": "a".repeat(64), "driver": "postgres", "connection": conn}),
        )
        .unwrap_err();
        assert!(e.contains("must be 1 to 63 bytes long (it is 64)"), "{e}");
    }

    #[test]
    fn no_output_is_sensitive_and_no_password_output() {
        for k in schema().kinds {
            assert!(k.outputs.iter().all(|o| !o.sensitive));
            assert!(k.output("password").is_none());
        }
    }
}
