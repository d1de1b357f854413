//! Packaging a component as a Wasm OCI artifact, byte for byte reproducibly.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_wasm::{ToConfig, WasmConfig};

use crate::{Error, annotations, media_types};

/// The largest manifest kiln accepts: 4 MiB, the limit the OCI distribution spec tells
/// registries and clients to support at least, and the one containerd enforces.
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// A component packaged as an artifact: the exact bytes of its three parts and their digests.
///
/// Nothing here depends on the clock: `created` is an input, so packaging the same component
/// with the same annotations and `created` gives the same manifest digest.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The image manifest, serialized (`application/vnd.oci.image.manifest.v1+json`).
    pub manifest: Bytes,
    /// `sha256:…` of [`Self::manifest`]: the digest a registry stores it under.
    pub manifest_digest: String,
    /// The config blob (`application/vnd.wasm.config.v0+json`).
    pub config: Bytes,
    /// `sha256:…` of [`Self::config`].
    pub config_digest: String,
    /// The component: the single `application/wasm` layer.
    pub layer: Bytes,
    /// `sha256:…` of [`Self::layer`].
    pub layer_digest: String,
    /// The manifest's annotations, `created` included.
    pub annotations: BTreeMap<String, String>,
}

impl Artifact {
    /// Packages `component` with `annotations` (the manifest's; see [`crate::annotations`]).
    /// `created` becomes the config's `created` field and the
    /// `org.opencontainers.image.created` annotation unless `annotations` sets it.
    /// The config lists the component's imports and exports, read with wit-component by
    /// oci-wasm.
    ///
    /// # Errors
    ///
    /// [`Error::Package`] when `component` is not a valid Wasm component.
    pub fn package(
        component: Vec<u8>,
        mut annotations: BTreeMap<String, String>,
        created: DateTime<Utc>,
    ) -> Result<Self, Error> {
        if !wasmparser::Parser::is_component(&component) {
            let what = if wasmparser::Parser::is_core_wasm(&component) {
                "it is a core module, not a component"
            } else {
                "it is not WebAssembly"
            };
            return Err(Error::Package(what.into()));
        }
        // Never push what no runtime would load: a component whose preamble is right and
        // whose body is not is refused here, before any network.
        wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
            .validate_all(&component)
            .map_err(|e| {
                // wasmparser writes some messages over several lines; kiln prints one.
                let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
                Error::Package(format!(
                    "it is not a valid component (at byte offset {:#x}: {message})",
                    e.offset()
                ))
            })?;
        let (mut config, layer): (WasmConfig, ImageLayer) =
            WasmConfig::from_raw_component(component, None)
                .map_err(|e| Error::Package(format!("{e:#}")))?;
        config.created = created;
        annotations
            .entry(annotations::CREATED.to_string())
            .or_insert_with(|| rfc3339(created));
        // oci-wasm hashed the layer for `layerDigests`; reuse it rather than hash 20 MiB again.
        let layer_digest = config
            .layer_digests
            .first()
            .cloned()
            .unwrap_or_else(|| sha256_digest(&layer.data));
        let config: Config = config
            .to_config()
            .map_err(|e| Error::Package(format!("{e:#}")))?;
        let config_digest = sha256_digest(&config.data);
        let manifest = OciImageManifest {
            media_type: Some(media_types::MANIFEST.to_string()),
            config: OciDescriptor {
                media_type: config.media_type.clone(),
                digest: config_digest.clone(),
                size: config.data.len() as i64,
                ..OciDescriptor::default()
            },
            layers: vec![OciDescriptor {
                media_type: layer.media_type.clone(),
                digest: layer_digest.clone(),
                size: layer.data.len() as i64,
                ..OciDescriptor::default()
            }],
            annotations: Some(annotations.clone()),
            ..OciImageManifest::default()
        };
        let manifest = serde_json::to_vec(&manifest)
            .map_err(|e| Error::Package(format!("cannot serialize the manifest: {e}")))?;
        Ok(Self {
            manifest_digest: sha256_digest(&manifest),
            manifest: manifest.into(),
            config_digest,
            config: config.data,
            layer_digest,
            layer: layer.data,
            annotations,
        })
    }
}

/// `created` for a reproducible artifact: `SOURCE_DATE_EPOCH` (seconds since the Unix epoch,
/// <https://reproducible-builds.org/specs/source-date-epoch/>) when given, else the Unix epoch
/// itself, as ko and Jib do. Never the clock.
///
/// # Errors
///
/// A message when `source_date_epoch` is not a whole number of seconds in range.
pub fn created_from_source_date_epoch(
    source_date_epoch: Option<&str>,
) -> Result<DateTime<Utc>, String> {
    let Some(value) = source_date_epoch.filter(|v| !v.is_empty()) else {
        return Ok(DateTime::UNIX_EPOCH);
    };
    let seconds: i64 = value.trim().parse().map_err(|_| {
        format!("SOURCE_DATE_EPOCH=`{value}` is not a number of seconds since 1970-01-01")
    })?;
    DateTime::from_timestamp(seconds, 0)
        .ok_or_else(|| format!("SOURCE_DATE_EPOCH=`{value}` is out of range"))
}

pub(crate) fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The smallest component: `(component)`.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[test]
    fn same_input_same_digest() {
        let created = created_from_source_date_epoch(Some("1700000000")).unwrap();
        let mut notes = BTreeMap::new();
        notes.insert(annotations::TITLE.to_string(), "hello".to_string());
        let a = Artifact::package(EMPTY_COMPONENT.to_vec(), notes.clone(), created).unwrap();
        let b = Artifact::package(EMPTY_COMPONENT.to_vec(), notes.clone(), created).unwrap();
        assert_eq!(a.manifest, b.manifest);
        assert_eq!(a.manifest_digest, b.manifest_digest);
        assert_eq!(a.annotations[annotations::CREATED], "2023-11-14T22:13:20Z");
        let config: serde_json::Value = serde_json::from_slice(&a.config).unwrap();
        assert_eq!(config["created"], "2023-11-14T22:13:20Z");
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["os"], "wasip2");
        assert_eq!(config["layerDigests"][0], a.layer_digest.as_str());
        let manifest: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(manifest["config"]["mediaType"], media_types::WASM_CONFIG);
        assert_eq!(manifest["layers"][0]["mediaType"], media_types::WASM_LAYER);
        assert_eq!(manifest["annotations"][annotations::TITLE], "hello");
        assert_eq!(manifest["schemaVersion"], 2);
        assert_eq!(manifest["mediaType"], media_types::MANIFEST);
        assert_eq!(
            manifest["layers"][0]["digest"],
            sha256_digest(EMPTY_COMPONENT)
        );
        assert_eq!(manifest["layers"][0]["size"], EMPTY_COMPONENT.len());
        assert_eq!(manifest["config"]["digest"], sha256_digest(&a.config));

        let later = created_from_source_date_epoch(Some("1700000001")).unwrap();
        let c = Artifact::package(EMPTY_COMPONENT.to_vec(), notes, later).unwrap();
        assert_ne!(a.manifest_digest, c.manifest_digest);
    }

    #[test]
    fn created_defaults_to_the_epoch() {
        assert_eq!(
            rfc3339(created_from_source_date_epoch(None).unwrap()),
            "1970-01-01T00:00:00Z"
        );
        assert!(created_from_source_date_epoch(Some("soon")).is_err());
    }

    #[test]
    fn refuses_a_core_module() {
        let err = Artifact::package(
            b"\0asm\x01\0\0\0".to_vec(),
            BTreeMap::new(),
            DateTime::UNIX_EPOCH,
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("cannot package the component"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_component_that_does_not_validate() {
        // The component preamble, then a section claiming more bytes than there are.
        let mut bytes = EMPTY_COMPONENT.to_vec();
        bytes.extend_from_slice(&[0x01, 0xff, 0x01]);
        let err = Artifact::package(bytes, BTreeMap::new(), DateTime::UNIX_EPOCH).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "cannot package the component: it is not a valid component (at byte offset"
            ),
            "{err}"
        );
    }
}
