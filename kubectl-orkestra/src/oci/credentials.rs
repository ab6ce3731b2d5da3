//! Registry credentials as Helm and ORAS users expect them: `--username` with
//! `--password-stdin`, else the Docker config file (`--registry-config`, `$DOCKER_CONFIG`, or
//! `~/.docker/config.json`) with its `auths`, `credHelpers` and `credsStore`, else anonymous.
//! A password is never printed: [`Credentials`]'s `Debug` hides it, and errors name the
//! registry and the source, never the value.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};
use oci_client::secrets::RegistryAuth;

use crate::artifact::Limits;

/// The registry flags every OCI verb takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Registry user name (the password is read from stdin with --password-stdin).
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password from stdin (one line).
    #[arg(long)]
    pub password_stdin: bool,
    /// Docker config file with the registry's credentials (default: $DOCKER_CONFIG/config.json,
    /// then ~/.docker/config.json, as `docker login` and `oras login` write it).
    #[arg(long, value_name = "FILE")]
    pub registry_config: Option<PathBuf>,
    /// Talk HTTP instead of HTTPS (a registry on localhost or a test registry).
    #[arg(long)]
    pub plain_http: bool,
    /// Accept a registry certificate that does not verify (self-signed). Traffic is still
    /// encrypted, but anyone on the path can pretend to be the registry.
    #[arg(long)]
    pub insecure: bool,
    /// Refuse Katalog artifacts larger than this (bytes, or with Ki/Mi), checked before
    /// anything is downloaded or sent.
    #[arg(long, value_name = "SIZE", default_value = "4Mi", value_parser = parse_size)]
    pub max_size: u64,
}

impl RegistryArgs {
    /// The artifact limits these flags set.
    pub fn limits(&self) -> Limits {
        Limits {
            max_bytes: self.max_size,
            ..Limits::default()
        }
    }
}

/// Parse `--max-size`: bytes, or with a `Ki`/`Mi` suffix.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (num, mult) = match s {
        _ if s.ends_with("Ki") => (&s[..s.len() - 2], 1024),
        _ if s.ends_with("Mi") => (&s[..s.len() - 2], 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0 && *n <= 1 << 30)
        .ok_or_else(|| format!("{s:?} is not a size like 4194304, 512Ki or 4Mi (at most 1024Mi)"))
}

/// Credentials for one registry, and where they came from (for messages).
#[derive(Clone)]
pub struct Credentials {
    /// What oci-client sends.
    pub auth: RegistryAuth,
    /// `--username`, `~/.docker/config.json`, `credential helper docker-credential-X`, `none`.
    pub source: String,
    /// The user name, when there is one (safe to print).
    pub username: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("source", &self.source)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Why no credentials could be found although some were configured.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    /// stdin could not be read.
    #[error("--password-stdin: cannot read the password from stdin: {0}")]
    Stdin(std::io::Error),
    /// An empty password.
    #[error("--password-stdin: stdin held no password")]
    EmptyPassword,
    /// The config file is unreadable or not JSON.
    #[error("{path}: {detail}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// The credentials to use for `registry`, in the order of the module docs. `stdin` is read only
/// with `--password-stdin`.
pub fn resolve(
    args: &RegistryArgs,
    registry: &str,
    stdin: &mut dyn std::io::Read,
) -> Result<Credentials, CredentialError> {
    if args.password_stdin {
        let mut text = String::new();
        stdin
            .take(64 * 1024)
            .read_to_string(&mut text)
            .map_err(CredentialError::Stdin)?;
        let password = text.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            return Err(CredentialError::EmptyPassword);
        }
        let user = args.username.clone().unwrap_or_default();
        return Ok(Credentials {
            auth: RegistryAuth::Basic(user.clone(), password),
            source: "--username/--password-stdin".into(),
            username: Some(user),
        });
    }
    let path = match &args.registry_config {
        Some(p) => Some(p.clone()),
        None => default_config(),
    };
    match path {
        Some(p) if p.exists() || args.registry_config.is_some() => from_config(&p, registry),
        _ => Ok(anonymous()),
    }
}

fn anonymous() -> Credentials {
    Credentials {
        auth: RegistryAuth::Anonymous,
        source: "nowhere: no --username and none in the Docker config".into(),
        username: None,
    }
}

fn default_config() -> Option<PathBuf> {
    std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"))
}

/// Credentials for `registry` from a Docker config file.
pub fn from_config(path: &Path, registry: &str) -> Result<Credentials, CredentialError> {
    let config_err = |detail: String| CredentialError::Config {
        path: path.to_path_buf(),
        detail,
    };
    let text = std::fs::read(path).map_err(|e| config_err(format!("cannot read it: {e}")))?;
    let parsed: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| config_err(format!("is not a Docker config file (JSON): {e}")))?;
    // Which helper would answer, for the message (the crate does the lookup itself).
    let helper = parsed
        .pointer(&format!(
            "/credHelpers/{}",
            registry.replace('~', "~0").replace('/', "~1")
        ))
        .or_else(|| parsed.get("credsStore"))
        .and_then(|v| v.as_str())
        .map(|h| format!("credential helper docker-credential-{h}"));
    let source = helper.unwrap_or_else(|| path.display().to_string());
    match docker_credential::get_credential_from_reader(text.as_slice(), registry) {
        Ok(DockerCredential::UsernamePassword(user, password)) => Ok(Credentials {
            auth: RegistryAuth::Basic(user.clone(), password),
            source,
            username: Some(user),
        }),
        Ok(DockerCredential::IdentityToken(token)) => Ok(Credentials {
            auth: RegistryAuth::Bearer(token),
            source,
            username: None,
        }),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(anonymous()),
        // The helper's stdout may hold a secret: only its stderr's first line is shown.
        Err(CredentialRetrievalError::HelperFailure { helper, stderr, .. }) => {
            Err(config_err(format!(
                "{helper} failed for {registry}: {}",
                stderr.lines().next().unwrap_or("no message")
            )))
        }
        Err(e) => Err(config_err(format!("{source} for {registry}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn config(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn docker_config_auths_give_basic_credentials_and_debug_hides_the_password() {
        let auth = base64::engine::general_purpose::STANDARD.encode("me:s3cret-value");
        let f = config(&format!(
            r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}}}}}}"#
        ));
        let c = from_config(f.path(), "127.0.0.1:5000").unwrap();
        assert!(matches!(&c.auth, RegistryAuth::Basic(u, p) if u == "me" && p == "s3cret-value"));
        assert!(!format!("{c:?}").contains("s3cret"));
        let other = from_config(f.path(), "other:1").unwrap();
        assert!(matches!(other.auth, RegistryAuth::Anonymous));
    }

    #[test]
    fn a_failing_credential_helper_is_named_without_its_output() {
        let f = config(r#"{"credHelpers":{"r.example":"orkestra-test-missing-helper"}}"#);
        let e = from_config(f.path(), "r.example").unwrap_err().to_string();
        assert!(e.contains("r.example"), "{e}");
        let e = from_config(&f.path().with_extension("missing"), "r").unwrap_err();
        assert!(e.to_string().contains("cannot read it"), "{e}");
        let bad = config("{nope");
        assert!(from_config(bad.path(), "r")
            .unwrap_err()
            .to_string()
            .contains("not a Docker config file"));
    }

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("4Mi"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_size("512Ki"), Ok(512 * 1024));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("4G").is_err());
        assert!(parse_size("99999999999999999999Mi").is_err());
    }

    #[test]
    fn password_stdin_reads_one_line() {
        let args = RegistryArgs {
            username: Some("u".into()),
            password_stdin: true,
            max_size: 1,
            ..Default::default()
        };
        let c = resolve(&args, "r", &mut "pw\n".as_bytes()).unwrap();
        assert!(matches!(&c.auth, RegistryAuth::Basic(u, p) if u == "u" && p == "pw"));
        assert!(matches!(
            resolve(&args, "r", &mut "".as_bytes()),
            Err(CredentialError::EmptyPassword)
        ));
    }
}
