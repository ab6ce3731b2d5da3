//! The started systems as seen by a test: where they listen and how to reach them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::audit_log::AuditEvent;
use crate::error::Error;
use crate::moto_log::MotoRequest;
use crate::namespace::TestNamespace;

/// The moto server standing in for the AWS APIs.
#[derive(Debug, Clone)]
pub struct MotoEnv {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The region tests use (`us-east-1`).
    pub region: String,
    /// The access key id moto is given (`testing`).
    pub access_key_id: String,
    /// The secret key moto is given (`testing`; a test value, not a secret).
    pub secret_access_key: String,
    /// Where moto records every request it serves (`MOTO_RECORDING`).
    pub recording: PathBuf,
}

impl MotoEnv {
    pub(crate) fn from_vars(vars: &BTreeMap<String, String>, path: &Path) -> Result<Self, Error> {
        let get = |name: &str| require(vars, name, path);
        Ok(Self {
            endpoint: get("AWS_ENDPOINT_URL")?,
            region: get("AWS_REGION")?,
            access_key_id: get("AWS_ACCESS_KEY_ID")?,
            secret_access_key: get("AWS_SECRET_ACCESS_KEY")?,
            recording: PathBuf::from(get("MOTO_RECORDING")?),
        })
    }

    /// Every request moto has served since it started, oldest first (see [`MotoRequest`]).
    /// Tests share one moto: filter with [`MotoRequest::mentions`] by a name only the test uses.
    pub fn requests(&self) -> Result<Vec<MotoRequest>, Error> {
        crate::moto_log::read(&self.recording)
    }

    /// The state-changing requests moto served that mention `needle`, as operation names.
    pub fn mutating_requests(&self, needle: &str) -> Result<Vec<String>, Error> {
        Ok(self
            .requests()?
            .into_iter()
            .filter(|r| r.is_mutating() && r.mentions(needle))
            .map(|r| r.operation)
            .collect())
    }

    /// An SDK config that sends every AWS call to moto, with the static test credentials.
    /// Nothing from the environment or `~/.aws` leaks in: endpoint, region and credentials are
    /// all set here.
    pub async fn aws_config(&self) -> SdkConfig {
        let credentials = aws_sdk_s3::config::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "orkestra-testsupport",
        );
        aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials)
            .load()
            .await
    }

    /// An S3 client for moto, path-style (moto serves no per-bucket host names on loopback).
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.aws_config().await)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// An RDS client for moto.
    pub async fn rds_client(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.aws_config().await)
    }

    /// An SQS client for moto.
    pub async fn sqs_client(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.aws_config().await)
    }

    /// An IAM client for moto.
    pub async fn iam_client(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.aws_config().await)
    }

    /// A Route 53 client for moto.
    pub async fn route53_client(&self) -> aws_sdk_route53::Client {
        aws_sdk_route53::Client::new(&self.aws_config().await)
    }
}

/// The node that runs the cluster's Pods (kubelet + containerd), and the images loaded into it.
/// No registry can be reached from it: any other image ends in ErrImagePull.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEnv {
    /// The Node's name (`ORKESTRA_NODE`).
    pub name: String,
    /// containerd's socket, absolute (`CONTAINERD_ADDRESS`), for `ctr -a`.
    pub containerd_address: PathBuf,
    /// The agent image built from the release binary (`ORKESTRA_AGENT_IMAGE`).
    pub agent_image: String,
    /// A tiny HTTP server on port 8080 (`ORKESTRA_WEB_IMAGE`).
    pub web_image: String,
    /// busybox: `/bin/sh`, `sleep`, `echo` … (`ORKESTRA_SHELL_IMAGE`).
    pub shell_image: String,
    /// Where a Pod reaches moto, `http://GATEWAY:PORT` (`AWS_ENDPOINT_URL_IN_CLUSTER`).
    pub aws_endpoint_in_cluster: String,
}

impl NodeEnv {
    pub(crate) fn from_vars(vars: &BTreeMap<String, String>, path: &Path) -> Result<Self, Error> {
        let get = |name: &str| {
            vars.get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| Error::EnvFile {
                    path: path.to_path_buf(),
                    detail: format!(
                        "no {name}: this test needs the node (kubelet + containerd and the images \
                         loaded into it); start the systems with tests/cluster/up.sh without \
                         --only, or with --only including node"
                    ),
                })
        };
        let containerd_address = PathBuf::from(get("CONTAINERD_ADDRESS")?);
        if !containerd_address.is_absolute() {
            return Err(Error::EnvFile {
                path: path.to_path_buf(),
                detail: format!(
                    "CONTAINERD_ADDRESS={} is not an absolute path",
                    containerd_address.display()
                ),
            });
        }
        Ok(Self {
            name: get("ORKESTRA_NODE")?,
            containerd_address,
            agent_image: get("ORKESTRA_AGENT_IMAGE")?,
            web_image: get("ORKESTRA_WEB_IMAGE")?,
            shell_image: get("ORKESTRA_SHELL_IMAGE")?,
            aws_endpoint_in_cluster: get("AWS_ENDPOINT_URL_IN_CLUSTER")?,
        })
    }
}

/// The OCI registry (CNCF Distribution, htpasswd auth, plain HTTP on loopback) and the ORAS CLI
/// that is its independent client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEnv {
    /// `127.0.0.1:PORT`, plain HTTP (`REGISTRY_HOST`; `oras … --plain-http`).
    pub host: String,
    /// The htpasswd user (`REGISTRY_USERNAME`).
    pub username: String,
    /// Its password, random per start (`REGISTRY_PASSWORD`; a test value).
    pub password: String,
    /// The root of the registry's filesystem storage, absolute (`REGISTRY_STORAGE`): blobs are
    /// under `docker/registry/v2/blobs/sha256/XX/HEX/data` ([`RegistryEnv::blob_path`]).
    pub storage: PathBuf,
    /// The ORAS CLI, absolute (`ORAS`).
    pub oras: PathBuf,
}

impl RegistryEnv {
    pub(crate) fn from_vars(vars: &BTreeMap<String, String>, path: &Path) -> Result<Self, Error> {
        let get = |name: &str| require_component(vars, name, path, "the OCI registry", "registry");
        let absolute = |name: &str| {
            let value = PathBuf::from(get(name)?);
            if value.is_absolute() {
                Ok(value)
            } else {
                Err(Error::EnvFile {
                    path: path.to_path_buf(),
                    detail: format!("{name}={} is not an absolute path", value.display()),
                })
            }
        };
        Ok(Self {
            host: get("REGISTRY_HOST")?,
            username: get("REGISTRY_USERNAME")?,
            password: get("REGISTRY_PASSWORD")?,
            storage: absolute("REGISTRY_STORAGE")?,
            oras: absolute("ORAS")?,
        })
    }

    /// Where the registry keeps the blob `sha256:HEX` (to read or tamper with it).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        self.storage
            .join("docker/registry/v2/blobs")
            .join(algorithm)
            .join(hex.get(..2).unwrap_or(hex))
            .join(hex)
            .join("data")
    }

    /// An `oras` command (run it with `--plain-http` and the credentials).
    pub fn oras(&self) -> std::process::Command {
        std::process::Command::new(&self.oras)
    }
}

/// A full set of test systems: Kubernetes control plane, moto, PostgreSQL, the OCI registry and
/// FerretDB (and, by default, the node).
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// The directory `up.sh` ran in (logs in `DIR/logs/`).
    pub dir: PathBuf,
    /// Admin kubeconfig of the private API server (`system:masters`).
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:PORT` of the API server.
    pub api_server: String,
    /// The moto server.
    pub aws: MotoEnv,
    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`.
    pub database_url: String,
    /// The kubectl `up.sh` checked the cluster with (the one on PATH, or the pinned build).
    pub kubectl: PathBuf,
    /// Every `NAME=value` of `DIR/env`, to hand to a process under test (kubectl, the agent).
    pub vars: BTreeMap<String, String>,
    /// The node, or what the env file lacks for one ([`TestEnv::node`]).
    node: Result<NodeEnv, String>,
    /// The OCI registry, or what the env file lacks for it ([`TestEnv::registry`]).
    registry: Result<RegistryEnv, String>,
    /// FerretDB's URL, or what the env file lacks for it ([`TestEnv::mongodb_url`]).
    mongodb_url: Result<String, String>,
    /// The API server's audit log (`APISERVER_AUDIT_LOG`), if the set was started with one.
    audit_log: Option<PathBuf>,
}

impl TestEnv {
    pub(crate) fn from_dir(dir: &Path) -> Result<Self, Error> {
        let path = dir.join("env");
        let vars = read_env_file(&path)?;
        let kubeconfig = PathBuf::from(require(&vars, "KUBECONFIG", &path)?);
        let api_server = Kubeconfig::read_from(&kubeconfig)
            .ok()
            .and_then(|k| k.clusters.into_iter().next())
            .and_then(|c| c.cluster)
            .and_then(|c| c.server)
            .unwrap_or_default();
        Ok(Self {
            dir: dir.to_path_buf(),
            aws: MotoEnv::from_vars(&vars, &path)?,
            database_url: require(&vars, "DATABASE_URL", &path)?,
            kubectl: vars
                .get("KUBECTL")
                .map_or_else(|| PathBuf::from("kubectl"), PathBuf::from),
            kubeconfig,
            api_server,
            node: NodeEnv::from_vars(&vars, &path).map_err(detail_of),
            registry: RegistryEnv::from_vars(&vars, &path).map_err(detail_of),
            mongodb_url: mongodb_url_from_vars(&vars, &path).map_err(detail_of),
            audit_log: vars
                .get("APISERVER_AUDIT_LOG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            vars,
        })
    }

    /// The node that runs Pods, or an error naming the env file and the first missing variable
    /// (systems started with `up.sh --only` without the node).
    pub fn try_node(&self) -> Result<&NodeEnv, Error> {
        self.node.as_ref().map_err(|detail| Error::EnvFile {
            path: self.dir.join("env"),
            detail: detail.clone(),
        })
    }

    /// The node that runs Pods. A test that needs it fails (never skips) without it.
    ///
    /// # Panics
    /// When the env file has no node (see [`TestEnv::try_node`]); the message names the file
    /// and the missing variable.
    pub fn node(&self) -> &NodeEnv {
        self.try_node().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The OCI registry and the ORAS CLI, or an error naming the env file and the first missing
    /// variable (systems started with `up.sh --only` without the registry).
    pub fn try_registry(&self) -> Result<&RegistryEnv, Error> {
        self.registry.as_ref().map_err(|detail| Error::EnvFile {
            path: self.dir.join("env"),
            detail: detail.clone(),
        })
    }

    /// The OCI registry and the ORAS CLI. A test that needs them fails (never skips) without them.
    ///
    /// # Panics
    /// When the env file has no registry (see [`TestEnv::try_registry`]); the message names the
    /// file and the missing variable.
    pub fn registry(&self) -> &RegistryEnv {
        self.try_registry().unwrap_or_else(|e| panic!("{e}"))
    }

    /// FerretDB's `mongodb://USER:PASSWORD@127.0.0.1:PORT/` (SCRAM user in `admin`), or an error
    /// naming the env file and the missing variable (systems started with `up.sh --only`
    /// without ferretdb).
    pub fn try_mongodb_url(&self) -> Result<&str, Error> {
        self.mongodb_url
            .as_deref()
            .map_err(|detail| Error::EnvFile {
                path: self.dir.join("env"),
                detail: detail.clone(),
            })
    }

    /// FerretDB's URL (MongoDB wire protocol). A test that needs it fails (never skips) without it.
    ///
    /// # Panics
    /// When the env file has no `MONGODB_URL` (see [`TestEnv::try_mongodb_url`]); the message
    /// names the file and the variable.
    pub fn mongodb_url(&self) -> &str {
        self.try_mongodb_url().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The admin client configuration, for tests that need to derive another identity from it
    /// (same server and CA, other credentials).
    pub async fn kube_config(&self) -> Result<kube::Config, Error> {
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig).map_err(|e| Error::Kube {
            context: format!("reading kubeconfig {}", self.kubeconfig.display()),
            source: kube::Error::InferKubeconfig(e),
        })?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| Error::Kube {
                context: format!("loading kubeconfig {}", self.kubeconfig.display()),
                source: kube::Error::InferKubeconfig(e),
            })
    }

    /// A new admin client. A new one per call, because each `#[tokio::test]` has its own
    /// runtime and a client's connections belong to the runtime that made them.
    ///
    /// # Panics
    /// When the kubeconfig written by `up.sh` cannot be loaded (a broken test environment).
    pub async fn client(&self) -> kube::Client {
        let config = self
            .kube_config()
            .await
            .unwrap_or_else(|e| panic!("test environment {}: {e}", self.dir.display()));
        kube::Client::try_from(config)
            .unwrap_or_else(|e| panic!("client for {}: {e}", self.kubeconfig.display()))
    }

    /// A client that authenticates as service account `namespace/name`, with a short-lived
    /// token from the TokenRequest API (Kubernetes >= 1.24 makes no token secrets). For tests of
    /// what RBAC lets an identity do.
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<kube::Client, Error> {
        use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
        use k8s_openapi::api::core::v1::ServiceAccount;

        let sas: kube::Api<ServiceAccount> = kube::Api::namespaced(self.client().await, namespace);
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let answer = sas
            .create_token_request(name, &kube::api::PostParams::default(), &request)
            .await
            .map_err(|source| Error::Kube {
                context: format!("requesting a token for service account {namespace}/{name}"),
                source,
            })?;
        let token = answer
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Unexpected {
                detail: format!("TokenRequest for {namespace}/{name} answered without a token"),
            })?;
        let mut config = self.kube_config().await?;
        config.auth_info = kube::config::AuthInfo {
            token: Some(token.into()),
            ..kube::config::AuthInfo::default()
        };
        kube::Client::try_from(config).map_err(|source| Error::Kube {
            context: format!("building a client for service account {namespace}/{name}"),
            source,
        })
    }

    /// Every mutating request the API server finished since it started, oldest first (see
    /// [`AuditEvent`]), or an error naming the env file when the set has no audit log (started
    /// by an older `up.sh`: start it again).
    pub fn audit_events(&self) -> Result<Vec<AuditEvent>, Error> {
        let path = self.audit_log.as_ref().ok_or_else(|| Error::EnvFile {
            path: self.dir.join("env"),
            detail: "no APISERVER_AUDIT_LOG: this set of systems was started without the API \
                     server's audit log; start it again with tests/cluster/up.sh"
                .into(),
        })?;
        crate::audit_log::read(path)
    }

    /// A `kubectl` command aimed at this cluster (`KUBECONFIG` set), to run as a user would.
    pub fn kubectl(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.kubectl);
        cmd.env("KUBECONFIG", &self.kubeconfig);
        cmd
    }

    /// Creates a namespace named `PREFIX-xxxxx` (the API server picks the suffix).
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace, Error> {
        TestNamespace::create(self.client().await, prefix).await
    }

    /// See [`MotoEnv::aws_config`].
    pub async fn aws_config(&self) -> SdkConfig {
        self.aws.aws_config().await
    }

    /// See [`MotoEnv::s3_client`].
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        self.aws.s3_client().await
    }

    /// See [`MotoEnv::rds_client`].
    pub async fn rds_client(&self) -> aws_sdk_rds::Client {
        self.aws.rds_client().await
    }

    /// A PostgreSQL connection; its connection task runs on the caller's runtime.
    pub async fn postgres(&self) -> Result<tokio_postgres::Client, Error> {
        let (client, connection) =
            tokio_postgres::connect(&self.database_url, tokio_postgres::NoTls)
                .await
                .map_err(|source| Error::Postgres {
                    url: self.database_url.clone(),
                    source,
                })?;
        tokio::spawn(async move {
            // An error here surfaces as a failed query on the client side as well.
            if let Err(e) = connection.await {
                eprintln!("orkestra-testsupport: PostgreSQL connection ended: {e}");
            }
        });
        Ok(client)
    }
}

pub(crate) fn read_env_file(path: &Path) -> Result<BTreeMap<String, String>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::EnvFile {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    Ok(parse_env(&text))
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The detail of an env-file error, kept by [`TestEnv`] for its lazy accessors.
fn detail_of(e: Error) -> String {
    match e {
        Error::EnvFile { detail, .. } => detail,
        other => other.to_string(),
    }
}

fn mongodb_url_from_vars(vars: &BTreeMap<String, String>, path: &Path) -> Result<String, Error> {
    let url = require_component(vars, "MONGODB_URL", path, "FerretDB", "ferretdb")?;
    if !url.starts_with("mongodb://") {
        return Err(Error::EnvFile {
            path: path.to_path_buf(),
            detail: format!("MONGODB_URL={url} is not a mongodb:// URL"),
        });
    }
    Ok(url)
}

/// A non-empty variable of an optional component, or an error saying how to start it.
fn require_component(
    vars: &BTreeMap<String, String>,
    name: &str,
    path: &Path,
    what: &str,
    component: &str,
) -> Result<String, Error> {
    vars.get(name)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| Error::EnvFile {
            path: path.to_path_buf(),
            detail: format!(
                "no {name}: this test needs {what}; start the systems with tests/cluster/up.sh \
                 without --only, or with --only including {component}"
            ),
        })
}

fn require(vars: &BTreeMap<String, String>, name: &str, path: &Path) -> Result<String, Error> {
    vars.get(name).cloned().ok_or_else(|| Error::EnvFile {
        path: path.to_path_buf(),
        detail: format!("no {name} (was up.sh started with --only?)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_lines_parse_and_missing_names_are_named() {
        let vars =
            parse_env("# c\nKUBECONFIG=/d/kubeconfig\n\nDATABASE_URL=postgres://a:b@h:1/p?x=y\n");
        assert_eq!(vars["KUBECONFIG"], "/d/kubeconfig");
        assert_eq!(vars["DATABASE_URL"], "postgres://a:b@h:1/p?x=y");
        let err = require(&vars, "AWS_REGION", Path::new("/d/env")).unwrap_err();
        assert!(err.to_string().contains("AWS_REGION"), "{err}");
        assert!(err.to_string().contains("/d/env"), "{err}");
    }

    const NODE_LINES: &str = "ORKESTRA_NODE=node-a
CONTAINERD_ADDRESS=/tmp/x/containerd.sock
ORKESTRA_AGENT_IMAGE=ghcr.io/orkspace/orkestra-agent:0.1.0
ORKESTRA_WEB_IMAGE=ghcr.io/orkspace/orkestra-web:0.1.0
ORKESTRA_SHELL_IMAGE=ghcr.io/orkspace/orkestra-shell:0.1.0
AWS_ENDPOINT_URL_IN_CLUSTER=http://10.88.0.1:5000
";

    #[test]
    fn the_node_parses_from_its_lines() {
        let node = NodeEnv::from_vars(&parse_env(NODE_LINES), Path::new("/d/env")).unwrap();
        assert_eq!(
            node,
            NodeEnv {
                name: "node-a".into(),
                containerd_address: "/tmp/x/containerd.sock".into(),
                agent_image: "ghcr.io/orkspace/orkestra-agent:0.1.0".into(),
                web_image: "ghcr.io/orkspace/orkestra-web:0.1.0".into(),
                shell_image: "ghcr.io/orkspace/orkestra-shell:0.1.0".into(),
                aws_endpoint_in_cluster: "http://10.88.0.1:5000".into(),
            }
        );
    }

    #[test]
    fn a_missing_node_variable_is_named_with_the_file() {
        for line in NODE_LINES.lines() {
            let name = line.split_once('=').unwrap().0;
            let text = NODE_LINES.replace(&format!("{line}\n"), "");
            let err = NodeEnv::from_vars(&parse_env(&text), Path::new("/d/env")).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains("/d/env"), "{msg}");
            assert!(msg.contains("needs the node"), "{msg}");
        }
        let relative = NODE_LINES.replace("/tmp/x/containerd.sock", "containerd.sock");
        let err = NodeEnv::from_vars(&parse_env(&relative), Path::new("/d/env")).unwrap_err();
        assert!(err.to_string().contains("not an absolute path"), "{err}");
    }

    const REGISTRY_LINES: &str = "REGISTRY_HOST=127.0.0.1:5001
REGISTRY_USERNAME=orkestra
REGISTRY_PASSWORD=0123abcd
REGISTRY_STORAGE=/tmp/x/registry
ORAS=/cache/bin/oras-v1.3.6/oras
";

    #[test]
    fn the_registry_parses_from_its_lines() {
        let registry =
            RegistryEnv::from_vars(&parse_env(REGISTRY_LINES), Path::new("/d/env")).unwrap();
        assert_eq!(
            registry,
            RegistryEnv {
                host: "127.0.0.1:5001".into(),
                username: "orkestra".into(),
                password: "0123abcd".into(),
                storage: "/tmp/x/registry".into(),
                oras: "/cache/bin/oras-v1.3.6/oras".into(),
            }
        );
        assert_eq!(
            registry.blob_path("sha256:abcdef"),
            Path::new("/tmp/x/registry/docker/registry/v2/blobs/sha256/ab/abcdef/data")
        );
    }

    #[test]
    fn a_missing_registry_variable_is_named_with_the_file() {
        for line in REGISTRY_LINES.lines() {
            let name = line.split_once('=').unwrap().0;
            let text = REGISTRY_LINES.replace(&format!("{line}\n"), "");
            let err = RegistryEnv::from_vars(&parse_env(&text), Path::new("/d/env")).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains("/d/env"), "{msg}");
            assert!(msg.contains("--only including registry"), "{msg}");
        }
        let relative = REGISTRY_LINES.replace("/tmp/x/registry", "registry");
        let err = RegistryEnv::from_vars(&parse_env(&relative), Path::new("/d/env")).unwrap_err();
        assert!(
            err.to_string()
                .contains("REGISTRY_STORAGE=registry is not an absolute path"),
            "{err}"
        );
    }

    #[test]
    fn the_mongodb_url_parses_and_its_absence_is_named() {
        let vars = parse_env("MONGODB_URL=mongodb://orkestra:pw@127.0.0.1:27018/\n");
        assert_eq!(
            mongodb_url_from_vars(&vars, Path::new("/d/env")).unwrap(),
            "mongodb://orkestra:pw@127.0.0.1:27018/"
        );
        let err = mongodb_url_from_vars(&parse_env("X=1\n"), Path::new("/d/env")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("MONGODB_URL") && msg.contains("/d/env"),
            "{msg}"
        );
        assert!(msg.contains("--only including ferretdb"), "{msg}");
        let err = mongodb_url_from_vars(&parse_env("MONGODB_URL=http://x\n"), Path::new("/d/env"))
            .unwrap_err();
        assert!(err.to_string().contains("not a mongodb:// URL"), "{err}");
    }

    #[test]
    fn a_set_without_registry_or_ferretdb_still_loads_and_names_what_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("env"),
            "KUBECONFIG=/nonexistent/kubeconfig
AWS_ENDPOINT_URL=http://127.0.0.1:1
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
MOTO_RECORDING=/d/moto-recording.jsonl
DATABASE_URL=postgres://postgres:orkestra@127.0.0.1:2/postgres
",
        )
        .unwrap();
        let env = TestEnv::from_dir(dir.path()).unwrap();
        let env_file = dir.path().join("env").display().to_string();
        let err = env.try_registry().unwrap_err().to_string();
        assert!(
            err.contains("REGISTRY_HOST") && err.contains(&env_file),
            "{err}"
        );
        let err = env.try_mongodb_url().unwrap_err().to_string();
        assert!(
            err.contains("MONGODB_URL") && err.contains(&env_file),
            "{err}"
        );
        let panic = std::panic::catch_unwind(|| env.registry().host.clone()).unwrap_err();
        let msg = panic.downcast_ref::<String>().unwrap();
        assert!(msg.contains("REGISTRY_HOST"), "{msg}");
    }
}
