//! Where the admin connection of a declaration goes, and opening it.
//!
//! `connection:` names a Secret (`secretName`, with keys `host`, `port`, `username`, `password`,
//! `sslmode`, `database`), or gives the values directly (`host`, `port`, `username`,
//! `passwordSecret: {name, key}`, `sslmode`, `database`), typically composed from another node
//! (`host: "{{ .resources.db.outputs.endpoint }}"`, the password from a generated Secret). Values
//! given directly win over the Secret's. Every Secret is read through the context's read-only
//! [`KubeReader`], in the CR's namespace.
//!
//! A missing Secret or key is an error that is retried with backoff: the Secret may be made by
//! another node of the same CR, or by a person, a moment later.
//!
//! PostgreSQL connections are kept per (server, user, database, password digest) and reused
//! while open, so a resync of many declarations against one server opens one connection.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use orkestra_provider::{Cause, Declaration, KubeReader, ProviderError, SecretValue};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::error::DatabaseError;
use crate::schema::driver;

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Key of the password in `passwordSecret` when `key` is not given.
pub const DEFAULT_PASSWORD_KEY: &str = "password";

/// The TLS mode of a connection (see [`crate::schema::SSL_MODES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, certificate not verified; else plain.
    Prefer,
    /// TLS, certificate not verified.
    Require,
    /// TLS, certificate chain and host name verified against the system's roots.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Result<Self, ProviderError> {
        match s {
            "disable" => Ok(Self::Disable),
            "prefer" => Ok(Self::Prefer),
            "require" => Ok(Self::Require),
            "verify-full" => Ok(Self::VerifyFull),
            other => Err(ProviderError::invalid_field(
                "connection.sslmode",
                format!("{other:?} is not one of disable, prefer, require, verify-full"),
            )),
        }
    }
}

/// Where and as whom to connect. `Debug` never shows the password.
#[derive(Clone)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The admin user.
    pub username: String,
    /// The admin password.
    pub password: SecretValue,
    /// TLS.
    pub sslmode: SslMode,
    /// The database to connect to (PostgreSQL: `postgres` by default; MongoDB: the
    /// authentication database, `admin` by default).
    pub database: Option<String>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("sslmode", &self.sslmode)
            .field("database", &self.database)
            .finish()
    }
}

impl Endpoint {
    /// `host:port`.
    pub fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A Secret's data, or a retryable error naming it when it does not exist.
async fn secret(
    kube: &KubeReader,
    name: &str,
) -> Result<orkestra_provider::SecretData, ProviderError> {
    let namespace = kube.namespace();
    kube.get_secret(name).await?.ok_or_else(|| {
        ProviderError::new(Cause::Reference {
            object: "Secret",
            name: format!("{namespace}/{name}"),
            message: "not found".into(),
            retryable: true,
        })
    })
}

/// One key of a Secret; a missing Secret or key is a retryable error naming both.
pub async fn secret_key(
    kube: &KubeReader,
    name: &str,
    key: &str,
) -> Result<SecretValue, ProviderError> {
    let namespace = kube.namespace();
    secret(kube, name).await?.remove(key).ok_or_else(|| {
        ProviderError::new(Cause::Reference {
            object: "Secret",
            name: format!("{namespace}/{name}"),
            message: format!("has no key {key:?}"),
            retryable: true,
        })
    })
}

/// The password a `{name, key}` reference (`passwordSecret`) points at.
pub async fn referenced_password(
    kube: &KubeReader,
    reference: &Value,
) -> Result<SecretValue, ProviderError> {
    let name = reference
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key = reference
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_PASSWORD_KEY);
    secret_key(kube, name, key).await
}

/// Resolve `decl`'s `connection:` into an [`Endpoint`], reading its Secrets.
pub async fn endpoint(decl: &Declaration, kube: &KubeReader) -> Result<Endpoint, ProviderError> {
    let conn = decl
        .fields
        .get("connection")
        .cloned()
        .unwrap_or(Value::Null);
    // Values from the Secret of `secretName`, by key, and its password.
    let mut stored: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut stored_password = None;
    let secret_name = conn
        .get("secretName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !secret_name.is_empty() {
        let mut data = secret(kube, &secret_name).await?;
        for (key, aliases) in [
            ("host", &["host"][..]),
            ("port", &["port"]),
            ("username", &["username", "user"]),
            ("sslmode", &["sslmode"]),
            ("database", &["database", "dbname"]),
        ] {
            let Some(v) = aliases.iter().find_map(|a| data.get(*a)) else {
                continue;
            };
            let text = v.expose_str().ok_or_else(|| {
                ProviderError::new(Cause::Reference {
                    object: "Secret",
                    name: format!("{}/{secret_name}", kube.namespace()),
                    message: format!("key {key:?} is not UTF-8"),
                    retryable: false,
                })
            })?;
            stored.insert(key, text.trim().to_string());
        }
        stored_password = data.remove("password");
    }
    let given = |k: &str| conn.get(k).and_then(Value::as_str).map(str::to_string);
    let mut take = |k: &str| stored.remove(k);
    let host = given("host")
        .or_else(|| take("host"))
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            ProviderError::invalid_field(
                "connection.host",
                format!("is not set (nor key host in Secret {secret_name:?})"),
            )
        })?;
    let default_port = if driver(decl) == "mongo" { 27017 } else { 5432 };
    let port = match conn.get("port").and_then(Value::as_i64) {
        Some(p) => p,
        None => match take("port") {
            Some(p) => p.parse::<i64>().map_err(|_| {
                ProviderError::invalid_field(
                    "connection.port",
                    format!("key port of Secret {secret_name:?} is not a number"),
                )
            })?,
            None => default_port,
        },
    };
    let port = u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| ProviderError::invalid_field("connection.port", "must be 1 to 65535"))?;
    let username = given("username")
        .or_else(|| take("username"))
        .ok_or_else(|| {
            ProviderError::invalid_field(
                "connection.username",
                format!("is not set (nor key username in Secret {secret_name:?})"),
            )
        })?;
    let sslmode = match given("sslmode").or_else(|| take("sslmode")) {
        Some(m) => SslMode::parse(&m)?,
        None if driver(decl) == "mongo" => SslMode::Disable,
        None => SslMode::Prefer,
    };
    let database = given("database").or_else(|| take("database"));
    let password = match conn.get("passwordSecret") {
        Some(reference) => referenced_password(kube, reference).await?,
        None => stored_password.ok_or_else(|| {
            ProviderError::invalid_field(
                "connection",
                "has no password: set passwordSecret, or key password in the Secret of secretName",
            )
        })?,
    };
    Ok(Endpoint {
        host,
        port,
        username,
        password,
        sslmode,
        database,
    })
}

fn cache_key(ep: &Endpoint, database: &str) -> String {
    let digest: String = Sha256::digest(ep.password.expose())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}\0{}\0{}\0{database}\0{:?}\0{digest}",
        ep.host, ep.port, ep.username, ep.sslmode
    )
}

/// Open PostgreSQL connections, reused while they stay open.
#[derive(Default)]
pub struct PgPool {
    clients: Mutex<HashMap<String, Arc<tokio_postgres::Client>>>,
}

impl fmt::Debug for PgPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PgPool")
    }
}

impl PgPool {
    /// A connection to `database` (the endpoint's own database, else `postgres`, when `None`).
    pub async fn get(
        &self,
        ep: &Endpoint,
        database: Option<&str>,
    ) -> Result<Arc<tokio_postgres::Client>, ProviderError> {
        let db = database
            .or(ep.database.as_deref())
            .unwrap_or("postgres")
            .to_string();
        let key = cache_key(ep, &db);
        let mut clients = self.clients.lock().await;
        if let Some(c) = clients.get(&key) {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        clients.retain(|_, c| !c.is_closed());
        let client = Arc::new(connect_postgres(ep, &db).await?);
        clients.insert(key, client.clone());
        Ok(client)
    }

    /// Close every connection to `database` on the endpoint's server (before dropping it).
    pub async fn forget_database(&self, ep: &Endpoint, database: &str) {
        let key = cache_key(ep, database);
        self.clients.lock().await.remove(&key);
    }
}

/// Connect to PostgreSQL at `ep`, database `db`.
pub async fn connect_postgres(
    ep: &Endpoint,
    db: &str,
) -> Result<tokio_postgres::Client, ProviderError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&ep.host)
        .port(ep.port)
        .user(&ep.username)
        .password(ep.password.expose())
        .dbname(db)
        .application_name("orkestra-provider-database")
        .connect_timeout(CONNECT_TIMEOUT);
    let target = ep.target();
    let operation = format!("connect to {target} as {:?}", ep.username);
    let spawn = |connection: tokio::task::JoinHandle<()>| drop(connection);
    match ep.sslmode {
        SslMode::Disable => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            let fut = config.connect(tokio_postgres::NoTls);
            let (client, connection) = timed(&target, fut)
                .await?
                .map_err(|e| DatabaseError::postgres(operation, e))?;
            spawn(tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "PostgreSQL connection ended");
                }
            }));
            Ok(client)
        }
        mode => {
            config.ssl_mode(if mode == SslMode::Prefer {
                tokio_postgres::config::SslMode::Prefer
            } else {
                tokio_postgres::config::SslMode::Require
            });
            let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(
                mode == SslMode::VerifyFull,
                &target,
            )?);
            let fut = config.connect(tls);
            let (client, connection) = timed(&target, fut)
                .await?
                .map_err(|e| DatabaseError::postgres(operation, e))?;
            spawn(tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "PostgreSQL connection ended");
                }
            }));
            Ok(client)
        }
    }
}

async fn timed<T>(
    target: &str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, ProviderError> {
    tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), fut)
        .await
        .map_err(|_| {
            DatabaseError::Timeout {
                target: target.to_string(),
                seconds: CONNECT_TIMEOUT.as_secs(),
            }
            .into()
        })
}

/// A rustls client configuration: verifying against the system's roots, or (libpq's `prefer`
/// and `require`) encrypting without verifying the certificate.
pub fn tls_config(verify: bool, target: &str) -> Result<rustls::ClientConfig, ProviderError> {
    let tls_err = |m: String| -> ProviderError {
        DatabaseError::Tls {
            target: target.to_string(),
            message: m,
        }
        .into()
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?;
    if verify {
        let mut roots = rustls::RootCertStore::empty();
        let found = rustls_native_certs::load_native_certs();
        for cert in found.certs {
            // A certificate the store cannot parse is skipped, as browsers do.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(tls_err(
                "sslmode verify-full: no trusted root certificates found on this system".into(),
            ));
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    } else {
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth())
    }
}

/// libpq's `sslmode=require`: encrypt, but accept any certificate (signatures are still checked
/// so the handshake is sound).
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use k8s_openapi::ByteString;
    use orkestra_provider::Owner;
    use serde_json::json;

    fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.namespace = Some("ns".into());
        s.metadata.name = Some(name.into());
        s.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        );
        s
    }

    fn decl(conn: Value) -> Declaration {
        let s = crate::schema();
        Declaration::from_rendered(
            "database",
            s.kind("database").unwrap(),
            json!({"name": "app", "driver": "postgres", "connection": conn})
                .as_object()
                .unwrap(),
            Owner {
                namespace: "ns".into(),
                ..Owner::default()
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn secret_values_and_overrides() {
        let kube = KubeReader::fixed(
            "ns",
            vec![
                secret(
                    "admin",
                    &[
                        ("host", "db.internal"),
                        ("port", "6432"),
                        ("username", "root"),
                        ("password", "s3cret"),
                        ("sslmode", "require"),
                    ],
                ),
                secret("pw", &[("pass", "other")]),
            ],
            vec![],
        );
        let ep = endpoint(&decl(json!({"secretName": "admin"})), &kube)
            .await
            .unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.port, ep.username.as_str(), ep.sslmode),
            ("db.internal", 6432, "root", SslMode::Require)
        );
        assert_eq!(ep.password.expose_str(), Some("s3cret"));
        let shown = format!("{ep:?}");
        assert!(!shown.contains("s3cret"), "{shown}");

        let ep = endpoint(
            &decl(
                json!({"secretName": "admin", "host": "composed.example", "port": 5433,
                         "passwordSecret": {"name": "pw", "key": "pass"}}),
            ),
            &kube,
        )
        .await
        .unwrap();
        assert_eq!((ep.host.as_str(), ep.port), ("composed.example", 5433));
        assert_eq!(ep.password.expose_str(), Some("other"));
    }

    #[tokio::test]
    async fn missing_secrets_are_retryable_errors_naming_them() {
        let kube = KubeReader::fixed("ns", vec![], vec![]);
        let e = endpoint(&decl(json!({"secretName": "nope"})), &kube)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "Secret ns/nope: not found");
        assert!(e.retryable());
        let e = endpoint(
            &decl(json!({"host": "h", "username": "u", "passwordSecret": {"name": "pw"}})),
            &KubeReader::fixed("ns", vec![secret("pw", &[("x", "y")])], vec![]),
        )
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "Secret ns/pw: has no key \"password\"");
        let e = endpoint(
            &decl(json!({"host": "h", "passwordSecret": {"name": "pw"}})),
            &kube,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("connection.username"), "{e}");
    }

    #[test]
    fn tls_configs_build() {
        assert!(tls_config(false, "h:1").is_ok());
    }
}
