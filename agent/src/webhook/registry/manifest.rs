//! Registry documents → [`Content`]: Docker v2 and OCI manifests, Docker
//! manifest lists and OCI image indexes (oci-spec types), image configurations.

use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

use super::cache::Content;
use super::client::Document;
use super::command::ImageCommand;
use super::platform::Platform;

/// Parses a manifest or index; the error says what is wrong.
pub fn parse_manifest(doc: &Document) -> Result<Content, String> {
    let value: serde_json::Value =
        serde_json::from_slice(&doc.bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let media_type = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .or(doc.content_type.as_deref())
        .unwrap_or("");
    if value.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1)
        || media_type.starts_with("application/vnd.docker.distribution.manifest.v1+")
    {
        return Err("Docker schema 1 manifests are not supported (push the image again with a current client)".into());
    }
    if value.get("manifests").is_some() {
        let index: ImageIndex = serde_json::from_value(value)
            .map_err(|e| format!("the image index does not parse: {e}"))?;
        let entries = index
            .manifests()
            .iter()
            .filter_map(|d| {
                let p = d.platform().as_ref()?;
                Some((
                    Platform::new(
                        &p.os().to_string(),
                        &p.architecture().to_string(),
                        p.variant().as_deref(),
                    ),
                    d.digest().to_string(),
                ))
            })
            .collect();
        return Ok(Content::Index(entries));
    }
    let manifest: ImageManifest =
        serde_json::from_value(value).map_err(|e| format!("the manifest does not parse: {e}"))?;
    Ok(Content::Image {
        config: manifest.config().digest().to_string(),
    })
}

/// The `Entrypoint` and `Cmd` of an image configuration.
pub fn parse_config(doc: &Document) -> Result<ImageCommand, String> {
    let config: ImageConfiguration = serde_json::from_slice(&doc.bytes)
        .map_err(|e| format!("the image configuration does not parse: {e}"))?;
    let c = config.config().as_ref();
    Ok(ImageCommand {
        entrypoint: c.and_then(|c| c.entrypoint().clone()).unwrap_or_default(),
        cmd: c.and_then(|c| c.cmd().clone()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(v: serde_json::Value) -> Document {
        Document {
            bytes: serde_json::to_vec(&v).unwrap(),
            content_type: None,
            digest: String::new(),
        }
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_v2_manifest_and_list() {
        let m = doc(serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2, "digest": D},
            "layers": []}));
        assert_eq!(
            parse_manifest(&m).unwrap(),
            Content::Image { config: D.into() }
        );
        let l = doc(serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
            "manifests": [
              {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 1, "digest": D,
               "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}},
              {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "digest": D,
               "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}]}));
        assert_eq!(
            parse_manifest(&l).unwrap(),
            Content::Index(vec![(Platform::new("linux", "arm", Some("v7")), D.into())])
        );
        let v1 = doc(serde_json::json!({"schemaVersion": 1, "name": "x"}));
        assert!(parse_manifest(&v1).unwrap_err().contains("schema 1"));
        let oci = doc(serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": D},
            "layers": []}));
        assert_eq!(
            parse_manifest(&oci).unwrap(),
            Content::Image { config: D.into() }
        );
    }

    #[test]
    fn config_entrypoint_and_cmd() {
        let c = doc(serde_json::json!({"architecture": "amd64", "os": "linux",
            "config": {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx", "-g", "daemon off;"]},
            "rootfs": {"type": "layers", "diff_ids": []}}));
        let ic = parse_config(&c).unwrap();
        assert_eq!(ic.entrypoint, vec!["/docker-entrypoint.sh"]);
        assert_eq!(ic.cmd.len(), 3);
        let c = doc(serde_json::json!({"architecture": "amd64", "os": "linux",
            "config": {"Entrypoint": null, "Cmd": ["/bin/sh"]}, "rootfs": {"type": "layers", "diff_ids": []}}));
        assert!(parse_config(&c).unwrap().entrypoint.is_empty());
    }
}
