//! kiln's OCI registry client: publishes Wasm components to any OCI registry and pulls them
//! back, in the CNCF Wasm OCI artifact layout (the one wkg, wash and containerd's runwasi
//! read: <https://tag-runtime.cncf.io/wgs/wasm/deliverables/wasm-oci-artifact/>).
//!
//! An artifact is an OCI image manifest (`application/vnd.oci.image.manifest.v1+json`) with
//! a config blob of media type `application/vnd.wasm.config.v0+json` ([`oci_wasm::WasmConfig`])
//! and exactly one `application/wasm` layer holding the component.
//!
//! - [`Artifact::package`] turns component bytes into that artifact, reproducibly: the same
//!   component, annotations and `created` time give the same manifest digest.
//! - [`RegistryClient`] pushes and pulls artifacts (every request, the token exchange
//!   included, over oci-client's reqwest), retrying transient failures ([`RetryPolicy`]) and honouring
//!   `Retry-After` up to [`MAX_RETRY_AFTER`], verifying every manifest and blob against its
//!   digest and declared size, reading no answer past its bound ([`MAX_MANIFEST_SIZE`],
//!   [`MAX_CONFIG_SIZE`], [`MAX_ERROR_BODY`]) and keeping pulled content in a
//!   content-addressed [`Cache`] that hands back the bytes it verified.
//! - [`credentials`] resolves who we are to a registry: command-line flags, `KILN_REGISTRY_*`
//!   variables, kiln's own store ([`CredentialStore`]), then the Docker configuration.
//! - [`Reference`] parsing refuses malformed references, digests and tags before any
//!   network or file access.
//!
//! - [`signature`] signs pushed artifacts and verifies pulled ones as cosign and skopeo do
//!   (simple signing payloads, ECDSA P-256, the `sha256-<hex>.sig` tag):
//!   [`RegistryClient::sign`], [`RegistryClient::pull_verified`].
//!
//! The crate never prints; progress and retries are reported through [`Progress`].
#![deny(missing_docs)]

mod artifact;
mod bounds;
mod cache;
mod client;
pub mod credentials;
mod error;
mod progress;
mod reference;
pub mod signature;

pub use artifact::{Artifact, MAX_MANIFEST_SIZE, created_from_source_date_epoch};
pub use bounds::{MAX_CONFIG_SIZE, MAX_ERROR_BODY, MAX_RETRY_AFTER, parse_retry_after};
pub use cache::Cache;
pub use client::{
    Attached, ClientOptions, MAX_REFERRER_SIZE, Pulled, Pushed, Referrer, RegistryClient,
    RetryPolicy, Scheme, SignaturePushed,
};
pub use credentials::{Credential, CredentialSource, CredentialStore};
pub use error::Error;
pub use progress::{BlobKind, NoProgress, Progress};
pub use reference::{Reference, is_loopback};
pub use signature::{PublicKey, SigningKey, Verified};

/// Well-known annotation keys (OCI image spec, "Pre-Defined Annotation Keys":
/// <https://github.com/opencontainers/image-spec/blob/main/annotations.md>).
pub mod annotations {
    /// `org.opencontainers.image.title`: the package name.
    pub const TITLE: &str = "org.opencontainers.image.title";
    /// `org.opencontainers.image.version`: the package version.
    pub const VERSION: &str = "org.opencontainers.image.version";
    /// `org.opencontainers.image.description`.
    pub const DESCRIPTION: &str = "org.opencontainers.image.description";
    /// `org.opencontainers.image.licenses`: an SPDX expression.
    pub const LICENSES: &str = "org.opencontainers.image.licenses";
    /// `org.opencontainers.image.source`: the source repository URL.
    pub const SOURCE: &str = "org.opencontainers.image.source";
    /// `org.opencontainers.image.revision`: the source control revision.
    pub const REVISION: &str = "org.opencontainers.image.revision";
    /// `org.opencontainers.image.created`: RFC 3339 date and time.
    pub const CREATED: &str = "org.opencontainers.image.created";
}

/// Media types of the Wasm OCI artifact layout.
pub mod media_types {
    /// The manifest: an OCI image manifest.
    pub const MANIFEST: &str = oci_client::manifest::OCI_IMAGE_MEDIA_TYPE;
    /// The config blob.
    pub const WASM_CONFIG: &str = oci_wasm::WASM_MANIFEST_CONFIG_MEDIA_TYPE;
    /// The component layer.
    pub const WASM_LAYER: &str = oci_wasm::WASM_LAYER_MEDIA_TYPE;
}
