//! `oci://HOST[:PORT]/REPOSITORY[:TAG][@DIGEST]`: what `push`, `pull` and `apply -f` accept.
//!
//! The registry host is always spelled out (no Docker Hub default, as Helm's `oci://` does), a
//! missing tag means `latest`, and a digest pins the exact artifact.

use std::fmt;

/// A parsed `oci://` reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRef {
    /// `host[:port]`.
    pub registry: String,
    /// `path/to/repo`.
    pub repository: String,
    /// The tag, when given.
    pub tag: Option<String>,
    /// `sha256:<hex>`, when given.
    pub digest: Option<String>,
}

/// Whether `s` is meant as an OCI reference.
pub fn is_oci(s: &str) -> bool {
    s.starts_with("oci://")
}

impl OciRef {
    /// Parse `oci://…`; the message says what is wrong and shows the expected form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let form = "expected oci://HOST/REPOSITORY[:TAG][@sha256:DIGEST]";
        let rest = s
            .strip_prefix("oci://")
            .ok_or_else(|| format!("{s:?} is not an OCI reference ({form})"))?;
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| format!("{s:?} names no repository ({form})"))?;
        if registry.is_empty()
            || !registry
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        {
            return Err(format!(
                "{s:?}: {registry:?} is not a registry host ({form})"
            ));
        }
        let (path, digest) = match path.split_once('@') {
            Some((p, d)) => {
                let hex = d.strip_prefix("sha256:").unwrap_or("");
                if hex.len() != 64 || !hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')) {
                    return Err(format!(
                        "{s:?}: {d:?} is not a digest (sha256: and 64 lowercase hex digits)"
                    ));
                }
                (p, Some(d.to_string()))
            }
            None => (path, None),
        };
        // A tag follows the last ':' after the last '/'.
        let last_slash = path.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match path[last_slash..].rfind(':') {
            Some(i) => (
                &path[..last_slash + i],
                Some(path[last_slash + i + 1..].to_string()),
            ),
            None => (path, None),
        };
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|part| {
                !part.is_empty()
                    && part.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                    })
                    && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            });
        if !repo_ok {
            return Err(format!(
                "{s:?}: {repository:?} is not a repository name (lowercase letters, digits, '.', '_', '-', with / between parts)"
            ));
        }
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(format!(
                    "{s:?}: {t:?} is not a tag (letters, digits, '.', '_', '-', at most 128)"
                ));
            }
        }
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag,
            digest,
        })
    }

    /// The same artifact pinned to `digest` (the tag kept for display).
    pub fn pinned(&self, digest: &str) -> Self {
        Self {
            digest: Some(digest.to_string()),
            ..self.clone()
        }
    }

    /// The reference oci-client takes (tag `latest` when none is given).
    pub fn to_client(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.clone(),
            ),
            (t, None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
}

impl fmt::Display for OciRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "oci://{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn references_parse_and_print_back() {
        for s in [
            "oci://127.0.0.1:5000/katalogs/website:1.0.0",
            "oci://registry.example.com/platform/application-stack",
            &format!("oci://localhost:5000/a/b@{D}"),
            &format!("oci://localhost:5000/a/b:1.2@{D}"),
        ] {
            assert_eq!(OciRef::parse(s).unwrap().to_string(), s);
        }
        let r = OciRef::parse("oci://127.0.0.1:5000/katalogs/website:1.0.0").unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "katalogs/website");
        assert_eq!(r.tag.as_deref(), Some("1.0.0"));
        assert_eq!(
            r.to_client().whole(),
            "127.0.0.1:5000/katalogs/website:1.0.0"
        );
        let latest = OciRef::parse("oci://h:1/r").unwrap();
        assert_eq!(latest.to_client().tag(), Some("latest"));
        assert_eq!(latest.pinned(D).to_client().digest(), Some(D));
    }

    #[test]
    fn bad_references_say_what_is_wrong() {
        for (s, word) in [
            ("katalogs/website", "not an OCI reference"),
            ("oci://website", "names no repository"),
            ("oci://h/Upper", "not a repository name"),
            ("oci://h/r:bad/tag", "not a repository name"),
            ("oci://h/r:-x", "not a tag"),
            ("oci://h/r@sha256:abc", "not a digest"),
            ("oci://h/r@md5:x", "not a digest"),
            ("oci:///r", "not a registry host"),
        ] {
            let e = OciRef::parse(s).unwrap_err();
            assert!(e.contains(word), "{s}: {e}");
        }
    }
}
