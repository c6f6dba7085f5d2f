//! Image names as pods spell them → where to ask for them, expanded the way the
//! container runtimes do (`nginx:1.27` → `docker.io/library/nginx:1.27`).

use std::fmt;
use std::net::IpAddr;

use oci_spec::distribution::Reference;

/// Docker Hub's name in image references.
const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The name as the pod wrote it (for messages).
    pub original: String,
    /// The registry as named in references (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository (`library/nginx`).
    pub repository: String,
    /// The tag, when no digest pins the image.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), which wins over the tag.
    pub digest: Option<String>,
}

/// The image name cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{image}` is not a valid image reference: {reason}")]
pub struct BadReference {
    /// The name.
    pub image: String,
    /// The parser's reason.
    pub reason: String,
}

impl ImageRef {
    /// Parses and expands a container's `image`.
    pub fn parse(image: &str) -> Result<ImageRef, BadReference> {
        let r: Reference = image
            .parse()
            .map_err(|e: oci_spec::distribution::ParseError| BadReference {
                image: image.to_string(),
                reason: e.to_string(),
            })?;
        let digest = r.digest().map(str::to_string);
        Ok(ImageRef {
            original: image.to_string(),
            registry: r.registry().to_string(),
            repository: r.repository().to_string(),
            tag: if digest.is_some() {
                None
            } else {
                Some(r.tag().unwrap_or("latest").to_string())
            },
            digest,
        })
    }

    /// The host (and port) that serves the registry API.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// The digest, else the tag: what goes after `/manifests/`.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `registry/repository`, the cache's namespace for this image.
    pub fn repo_key(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

impl fmt::Display for ImageRef {
    /// The original name: what the user wrote, not the expansion.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

/// Whether `host` (optionally `:port`, IPv6 in brackets) is a loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_expand_to_docker_hub_library() {
        let r = ImageRef::parse("nginx:1.27").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/nginx", Some("1.27"))
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = ImageRef::parse("bitnami/redis").unwrap();
        assert_eq!(r.repository, "bitnami/redis");
        assert_eq!(r.reference(), "latest");
        assert_eq!(r.to_string(), "bitnami/redis");
    }

    #[test]
    fn registries_ports_and_digests() {
        let d = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
        let r = ImageRef::parse(&format!("127.0.0.1:5000/team/app:v1@{d}")).unwrap();
        assert_eq!(r.api_host(), "127.0.0.1:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.reference(), d);
        assert_eq!(r.tag, None);
        assert!(ImageRef::parse("no spaces:in names").is_err());
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1:5000",
            "localhost:80",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["10.0.0.1:5000", "registry.local:5000", "[::2]:1", "ghcr.io"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
