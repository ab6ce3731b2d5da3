//! Shared setup for the database provider's tests against the real PostgreSQL (and FerretDB) of
//! the test systems (tests/cluster/up.sh, via orkestra-testsupport).
#![allow(dead_code)] // each test binary uses a different part

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use orkestra_provider::{
    Declaration, KubeReader, Owner, ProviderContext, ProviderRuntime, RateLimit, RetryPolicy,
    RunReport, State, StatusRow,
};
use orkestra_provider_database::DatabaseProvider;
use orkestra_testsupport::{unique_name, TestEnv};
use serde_json::{json, Value};

/// Namespace every test's CR lives in (Secrets are read there; the fixed reader needs no cluster).
pub const NS: &str = "shop";
/// Name of the admin connection Secret.
pub const ADMIN: &str = "pg-admin";

/// The parts of `postgres://USER:PASSWORD@HOST:PORT/DB`.
#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl Server {
    pub fn parse(url: &str) -> Self {
        let rest = url
            .split_once("://")
            .map(|(_, r)| r)
            .expect("a URL with a scheme");
        let (auth, rest) = rest.rsplit_once('@').expect("credentials in the URL");
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let hostport = rest.split('/').next().unwrap_or(rest);
        let (host, port) = hostport.rsplit_once(':').expect("a port");
        Self {
            host: host.to_string(),
            port: port.parse().expect("a numeric port"),
            user: user.to_string(),
            password: password.to_string(),
        }
    }

    /// The admin Secret's data for this server.
    pub fn secret_data(&self) -> Vec<(&'static str, String)> {
        vec![
            ("host", self.host.clone()),
            ("port", self.port.to_string()),
            ("username", self.user.clone()),
            ("password", self.password.clone()),
            ("sslmode", "disable".to_string()),
        ]
    }
}

pub struct Harness {
    pub env: &'static TestEnv,
    pub server: Server,
    pub provider: Arc<DatabaseProvider>,
    pub runtime: ProviderRuntime,
}

pub async fn harness() -> Harness {
    let env = orkestra_testsupport::cluster().await;
    let provider = Arc::new(DatabaseProvider::new());
    let mut runtime = ProviderRuntime::new().with_retry(RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(1),
    });
    runtime
        .register(provider.clone(), RateLimit::default())
        .expect("one provider per name");
    Harness {
        env,
        server: Server::parse(&env.database_url),
        provider,
        runtime,
    }
}

impl Harness {
    /// A superuser connection to `database` for arranging and inspecting state.
    pub async fn pg(&self, database: &str) -> tokio_postgres::Client {
        connect(
            &self.server,
            &self.server.user,
            &self.server.password,
            database,
        )
        .await
        .expect("admin connection")
    }

    /// A reader holding the admin Secret plus `extra` Secrets.
    pub fn reader(&self, extra: Vec<Secret>) -> KubeReader {
        let admin = secret(
            ADMIN,
            &self
                .server
                .secret_data()
                .iter()
                .map(|(k, v)| (*k, v.as_str()))
                .collect::<Vec<_>>(),
        );
        let mut all = vec![admin];
        all.extend(extra);
        KubeReader::fixed(NS, all, vec![])
    }
}

/// Connect as `user`/`password`.
pub async fn connect(
    server: &Server,
    user: &str,
    password: &str,
    database: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&server.host)
        .port(server.port)
        .user(user)
        .password(password)
        .dbname(database);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A Secret in [`NS`].
pub fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    let mut s = Secret::default();
    s.metadata.namespace = Some(NS.into());
    s.metadata.name = Some(name.into());
    s.data = Some(
        data.iter()
            .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
            .collect::<BTreeMap<_, _>>(),
    );
    s
}

/// A CR owner with a fresh uid.
pub fn owner(name: &str) -> Owner {
    Owner {
        uid: unique_name("uid"),
        namespace: NS.into(),
        name: name.into(),
        katalog: "shop-katalog".into(),
    }
}

/// A PostgreSQL-safe unique name (no hyphens needed, but they are fine quoted).
pub fn unique(prefix: &str) -> String {
    unique_name(prefix).replace('-', "_")
}

/// The admin connection every declaration uses.
pub fn admin_connection() -> Value {
    json!({"secretName": ADMIN})
}

/// A postgres declaration of `kind` built the way the agent builds it.
pub fn decl(kind: &str, mut item: Value, owner: &Owner) -> Declaration {
    let m = item.as_object_mut().expect("an object");
    m.entry("driver").or_insert(json!("postgres"));
    m.entry("connection").or_insert(admin_connection());
    let schema = orkestra_provider_database::schema();
    let kind = schema.kind(kind).expect("kind");
    Declaration::from_rendered("database", kind, m, owner.clone()).expect("a valid declaration")
}

/// A context for a CR whose status holds `rows` (as the agent's would after the last cycle).
pub fn ctx(kube: &KubeReader, rows: &[StatusRow]) -> ProviderContext {
    ProviderContext::new(
        unique_name("req"),
        json!({"status": {"external": rows}}),
        kube.clone(),
    )
}

/// Assert every row's state, printing the report when one differs.
pub fn assert_states(report: &RunReport, state: State) {
    for r in &report.rows {
        assert_eq!(r.state, state, "row: {r:?}, errors: {:?}", report.errors);
    }
}

/// One-column query.
pub async fn one<T>(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Option<T>
where
    T: for<'a> tokio_postgres::types::FromSql<'a>,
{
    client
        .query_opt(sql, params)
        .await
        .expect("query")
        .map(|r| r.get(0))
}

/// The comment of role `name`, if the role exists.
pub async fn role_comment(pg: &tokio_postgres::Client, name: &str) -> Option<Option<String>> {
    pg.query_opt(
        "SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1",
        &[&name],
    )
    .await
    .expect("query")
    .map(|r| r.get(0))
}

/// The comment of database `name`, if it exists.
pub async fn database_comment(pg: &tokio_postgres::Client, name: &str) -> Option<Option<String>> {
    pg.query_opt(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
        &[&name],
    )
    .await
    .expect("query")
    .map(|r| r.get(0))
}

/// Drop what a test left behind (best effort, for failed runs).
pub async fn cleanup(pg: &tokio_postgres::Client, databases: &[&str], roles: &[&str]) {
    for d in databases {
        let _ = pg
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                d.replace('"', "\"\"")
            ))
            .await;
    }
    for r in roles {
        let _ = pg
            .batch_execute(&format!(
                "DROP ROLE IF EXISTS \"{}\"",
                r.replace('"', "\"\"")
            ))
            .await;
    }
}
