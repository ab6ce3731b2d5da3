//! Pushing a packed artifact and fetching one back, with oci-client. A fetch checks the
//! manifest against [`Limits`] before downloading anything, reads every blob with a bound, and
//! verifies each against its digest; it returns the bundle in memory, so a failure writes
//! nothing anywhere.

use futures::{StreamExt as _, TryStreamExt as _};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use super::credentials::{self, Credentials, RegistryArgs};
use super::{OciRef, RegistryError};
use crate::artifact::manifest::{sha256, Packed};
use crate::artifact::unpack::{self, DigestMismatch};
use crate::artifact::{ArtifactError, Bundle, Config, Limits, MANIFEST_MEDIA_TYPE};

/// Blobs moved at the same time (oras moves 3; a Katalog has a handful of small files).
const CONCURRENCY: usize = 4;

/// A client for one reference, with the credentials resolved for its registry.
pub struct Session {
    client: Client,
    reference: OciRef,
    creds: Credentials,
}

/// What a fetch returns: the verified files and the digest the reference resolved to.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The files.
    pub bundle: Bundle,
    /// The config blob.
    pub config: Config,
    /// `sha256:…` of the manifest.
    pub digest: String,
    /// The manifest's annotations.
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl Session {
    /// A client for `reference` with the credentials of [`credentials::resolve`] (reading stdin
    /// only with `--password-stdin`).
    pub fn open(reference: &OciRef, args: &RegistryArgs) -> Result<Self, RegistryError> {
        let creds = credentials::resolve(args, &reference.registry, &mut std::io::stdin())
            .map_err(|source| RegistryError::Credentials {
                registry: reference.registry.clone(),
                source,
            })?;
        Ok(Self::with_credentials(reference, args, creds))
    }

    /// A client for `reference` with the given credentials.
    pub fn with_credentials(reference: &OciRef, args: &RegistryArgs, creds: Credentials) -> Self {
        let config = ClientConfig {
            protocol: if args.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: args.insecure,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: concat!("kubectl-orkestra/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        Self {
            client: Client::new(config),
            reference: reference.clone(),
            creds,
        }
    }

    /// Push `packed` to the reference's tag: the blobs the registry lacks, then the manifest.
    pub async fn push(&self, packed: &Packed) -> Result<(), RegistryError> {
        let r = self.reference.to_client();
        self.client
            .auth(&r, &self.creds.auth, RegistryOperation::Push)
            .await
            .map_err(|e| self.error(e))?;
        // The blobs the registry lacks, a few at a time (as oras does); the manifest last, so a
        // tag never names a blob that is not there.
        futures::stream::iter(std::iter::once(&packed.config).chain(&packed.layers))
            .map(|blob| {
                let r = &r;
                async move {
                    let digest = &blob.descriptor.digest;
                    let exists = self
                        .client
                        .blob_exists(r, digest)
                        .await
                        .map_err(|e| self.error(e))?;
                    if !exists {
                        self.client
                            .push_blob(r, blob.data.clone(), digest)
                            .await
                            .map_err(|e| self.error(e))?;
                    }
                    Ok::<_, RegistryError>(())
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<()>()
            .await?;
        let content_type = MANIFEST_MEDIA_TYPE
            .parse()
            .map_err(|_| self.transport("the manifest media type is not a header value"))?;
        self.client
            .push_manifest_raw(&r, packed.manifest.clone(), content_type)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Fetch and verify the artifact (see the module docs).
    pub async fn fetch(&self, limits: &Limits) -> Result<Fetched, RegistryError> {
        let r = self.reference.to_client();
        let (manifest, _) = self
            .client
            .pull_manifest_raw(&r, &self.creds.auth, &[MANIFEST_MEDIA_TYPE])
            .await
            .map_err(|e| self.error(e))?;
        // The digest is what the bytes hash to, whatever a header says; a pinned reference
        // must match it.
        let digest = sha256(&manifest);
        if let Some(pinned) = &self.reference.digest {
            if pinned != &digest {
                return Err(RegistryError::Digest {
                    reference: self.reference.to_string(),
                    source: DigestMismatch {
                        what: "the manifest".into(),
                        expected: pinned.clone(),
                        actual: digest,
                    },
                });
            }
        }
        let checked = unpack::check(&manifest, limits).map_err(|e| self.artifact(e))?;
        let config_bytes = self.blob(&checked.config, "the config blob").await?;
        let mut config = unpack::config(&checked, &config_bytes).map_err(|e| self.artifact(e))?;
        // A few at a time, in the manifest's order; nothing is kept unless all verify.
        let blobs: Vec<Vec<u8>> = futures::stream::iter(&checked.layers)
            .map(|wanted| self.blob(&wanted.descriptor, &wanted.path))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let bundle = unpack::bundle(&checked, blobs);
        if config.name.is_empty() {
            config.name = unpack::katalog_name(&bundle).unwrap_or_default();
        }
        Ok(Fetched {
            bundle,
            config,
            digest,
            annotations: checked.annotations,
        })
    }

    /// One blob, read up to its declared size (a registry sending more is cut off) and
    /// verified against its digest.
    async fn blob(&self, d: &OciDescriptor, what: &str) -> Result<Vec<u8>, RegistryError> {
        let r = self.reference.to_client();
        let limit = d.size.max(0) as usize;
        let mut stream = self
            .client
            .pull_blob_stream(&r, d)
            .await
            .map_err(|e| self.error(e))?;
        let mut data = Vec::with_capacity(limit.min(1 << 20));
        let mismatch = |actual: String| RegistryError::Digest {
            reference: self.reference.to_string(),
            source: DigestMismatch {
                what: what.to_string(),
                expected: d.digest.clone(),
                actual,
            },
        };
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    if data.len() + bytes.len() > limit {
                        return Err(mismatch(format!(
                            "more than the {limit} bytes its descriptor declares"
                        )));
                    }
                    data.extend_from_slice(&bytes);
                }
                // oci-client's own verification ends the stream with an error on a mismatch.
                Err(_) if data.len() == limit => return Err(mismatch(sha256(&data))),
                Err(e) => {
                    return Err(self.transport(&format!("reading {what} failed: {e}")));
                }
            }
        }
        unpack::verify(what, d, &data).map_err(|source| RegistryError::Digest {
            reference: self.reference.to_string(),
            source,
        })?;
        Ok(data)
    }

    fn artifact(&self, source: ArtifactError) -> RegistryError {
        RegistryError::Artifact {
            reference: self.reference.to_string(),
            source,
        }
    }

    fn transport(&self, detail: &str) -> RegistryError {
        RegistryError::Transport {
            reference: self.reference.to_string(),
            detail: detail.to_string(),
        }
    }

    /// One clear error per failure, naming the reference; never the credentials.
    fn error(&self, e: OciDistributionError) -> RegistryError {
        let reference = self.reference.to_string();
        let registry = self.reference.registry.clone();
        let unauthorized = || RegistryError::Unauthorized {
            registry: registry.clone(),
            reference: reference.clone(),
            who: match (&self.creds.auth, &self.creds.username) {
                (RegistryAuth::Anonymous, _) => "anonymous access".into(),
                (_, Some(u)) => format!("user {u:?}"),
                (_, None) => "the token".into(),
            },
            source_: self.creds.source.clone(),
        };
        let not_found = |detail: String| RegistryError::NotFound {
            reference: reference.clone(),
            repository: format!("{}/{}", self.reference.registry, self.reference.repository),
            detail,
        };
        match e {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
            OciDistributionError::ImageManifestNotFoundError(m) => not_found(m),
            OciDistributionError::RegistryError { envelope, .. } => {
                let first = envelope.errors.first();
                let message = first.map(|e| e.message.clone()).unwrap_or_default();
                match first.map(|e| &e.code) {
                    Some(OciErrorCode::Unauthorized) => unauthorized(),
                    Some(OciErrorCode::Denied) => RegistryError::Denied {
                        registry,
                        reference,
                        detail: message,
                    },
                    Some(
                        OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown,
                    ) => not_found(message),
                    _ => self.transport(&format!("the registry answered: {message}")),
                }
            }
            OciDistributionError::ServerError {
                code: 404, message, ..
            } => not_found(message),
            OciDistributionError::ServerError { code: 401, .. } => unauthorized(),
            OciDistributionError::ServerError { code, message, .. } => self.transport(&format!(
                "the registry answered HTTP {code}: {}",
                message.lines().next().unwrap_or("")
            )),
            OciDistributionError::DigestError(d) => self.transport(&format!("{d}")),
            OciDistributionError::RequestError(r) if r.status().is_some_and(|s| s == 401) => {
                unauthorized()
            }
            OciDistributionError::RequestError(r) if r.status().is_some_and(|s| s == 403) => {
                RegistryError::Denied {
                    registry,
                    reference,
                    detail: "403 forbidden".into(),
                }
            }
            OciDistributionError::RequestError(r) if r.status().is_some_and(|s| s == 404) => {
                not_found("404 not found".into())
            }
            OciDistributionError::RequestError(r) => {
                let mut detail = format!("cannot reach {registry}: {r}");
                let mut source = std::error::Error::source(&r);
                while let Some(s) = source {
                    detail.push_str(&format!(": {s}"));
                    source = s.source();
                }
                if r.is_connect() || r.is_timeout() {
                    detail.push_str("; is the registry running and reachable?");
                }
                if detail.contains("certificate")
                    || detail.contains("InvalidContentType")
                    || detail.contains("tls")
                {
                    detail.push_str(" (a registry without TLS needs --plain-http; one with a self-signed certificate --insecure)");
                }
                self.transport(&detail)
            }
            other => self.transport(&other.to_string()),
        }
    }
}
