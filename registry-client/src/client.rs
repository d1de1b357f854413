//! Push and pull, with retries, verification and the cache.
//!
//! Every request is kiln's own, over reqwest (the HTTP client oci-client uses), the token
//! exchange included, so that kiln sees `Retry-After`, caps every body while it streams, and
//! never follows a layer's foreign `urls` unasked (see [`crate::http`]). oci-client provides
//! the types (references, manifests, credentials).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::RegistryOperation;
use oci_client::errors::{OciEnvelope, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_wasm::WasmConfig;

use crate::artifact::sha256_digest;
use crate::bounds::{Capped, MAX_CONFIG_SIZE, parse_retry_after, read_capped, read_error_body};
use crate::signature::{self, PublicKey, SigningKey, Verified};
use crate::{
    Artifact, BlobKind, Cache, Credential, Error, MAX_MANIFEST_SIZE, Progress, Reference,
    media_types,
};

/// How transient failures are retried: 5xx answers, 429 and dropped or refused
/// connections. Waits double from `initial_delay` up to `max_delay` between attempts; a
/// registry's `Retry-After` is waited in full up to [`crate::MAX_RETRY_AFTER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt.
    pub initial_delay: Duration,
    /// The longest wait between two attempts, unless the registry's `Retry-After` asks for
    /// more.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, waiting 250 ms, 500 ms, then 1 s; a 429 waits at least 1 s, and a
    /// `Retry-After` as long as it says (60 s at most).
    fn default() -> Self {
        Self {
            attempts: 4,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
        }
    }
}

/// The protocol spoken to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// TLS.
    Https,
    /// Plain HTTP: only for loopback registries that do not speak TLS, or with `insecure`.
    Http,
}

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Allow plain HTTP to any registry (`--insecure`). Without it, plain HTTP is used only
    /// for a loopback registry ([`crate::is_loopback`]) that does not answer TLS.
    pub insecure: bool,
    /// Extra trusted root certificates, PEM-encoded (for registries with a private CA).
    pub root_certificates: Vec<Vec<u8>>,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Where pulled content is kept.
    pub cache: Cache,
    /// Fetch a blob the registry lacks from the `urls` of its descriptor ("foreign" layers),
    /// without credentials, over HTTPS (or plain HTTP when the registry itself is). Off by
    /// default: a manifest then makes kiln contact only its registry.
    pub foreign_urls: bool,
}

/// The result of [`RegistryClient::push`].
#[derive(Debug, Clone)]
pub struct Pushed {
    /// The reference pushed to, pinned to the manifest digest (`repo:tag@sha256:…`).
    pub reference: String,
    /// The manifest digest.
    pub digest: String,
    /// Bytes uploaded (0 when the registry already had every blob).
    pub uploaded: u64,
}

/// The result of [`RegistryClient::sign`].
#[derive(Debug, Clone)]
pub struct SignaturePushed {
    /// The signature manifest's reference: `registry/repository:sha256-<hex>.sig`.
    pub reference: String,
    /// The digest of the signature manifest as it is now.
    pub digest: String,
    /// Whether the registry held this very signature already (then nothing was written).
    pub already_there: bool,
    /// How many signatures the signature manifest holds now, this one included.
    pub signatures: usize,
}

/// The result of [`RegistryClient::attach`].
#[derive(Debug, Clone)]
pub struct Attached {
    /// The referrer manifest's digest (it is pushed by digest).
    pub digest: String,
    /// The referrers tag fallback it is listed at: `registry/repository:sha256-<hex>`.
    pub index: String,
}

/// An OCI referrer found by [`RegistryClient::fetch_referrer`].
#[derive(Debug, Clone)]
pub struct Referrer {
    /// The referrer manifest's digest.
    pub digest: String,
    /// Its artifact's content (its one layer), digest- and size-verified.
    pub content: Vec<u8>,
}

/// The OCI empty descriptor's content (image-spec 1.1, "Guidance for an empty descriptor").
const EMPTY_JSON: &[u8] = b"{}";
/// Its media type.
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The largest referrer content [`RegistryClient::fetch_referrer`] reads, in bytes.
pub const MAX_REFERRER_SIZE: u64 = 16 * 1024 * 1024;

/// The referrers tag fallback for `digest` (`sha256:<hex>` → `sha256-<hex>`), OCI
/// distribution-spec 1.1, "Referrers Tag Schema".
fn referrers_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The result of [`RegistryClient::pull`].
#[derive(Debug)]
pub struct Pulled {
    /// The manifest digest.
    pub digest: String,
    /// The component's bytes, exactly those whose size and digest were verified.
    pub bytes: Bytes,
    /// Where the cache keeps the component. Reading it again trusts the cache directory
    /// (private to the user); [`Self::bytes`] needs no trust.
    pub component: PathBuf,
    /// The component's size in bytes.
    pub size: u64,
    /// Its digest (the layer digest).
    pub layer_digest: String,
    /// The manifest's annotations.
    pub annotations: BTreeMap<String, String>,
    /// The Wasm config: `created`, `os`, the component's imports and exports.
    pub config: WasmConfig,
    /// Bytes downloaded, manifest included (0 when everything came from the cache).
    pub downloaded: u64,
}

/// What kiln sends as `Authorization`, learnt from the token exchange.
#[derive(Clone, Default)]
enum Authorization {
    #[default]
    None,
    Basic(String, String),
    Bearer(String),
}

/// The connection, made on first use.
struct Connection {
    /// kiln's own requests.
    http: reqwest::Client,
    scheme: Scheme,
}

/// A client for one registry, with one credential.
pub struct RegistryClient {
    /// Made on first use: a pull served from the cache needs no connection at all.
    connection: tokio::sync::OnceCell<Connection>,
    registry: String,
    credential: Credential,
    /// Set by [`Self::authenticate`].
    authorization: std::sync::Mutex<Authorization>,
    options: ClientOptions,
}

/// A failed attempt: worth retrying or not.
enum Failure {
    Transient {
        message: String,
        at_least: Duration,
        retry_after: Option<Duration>,
    },
    Fatal(Error),
}

impl Failure {
    fn transient(message: String) -> Self {
        Failure::Transient {
            message,
            at_least: Duration::ZERO,
            retry_after: None,
        }
    }
}

const USER_AGENT: &str = concat!("kiln/", env!("CARGO_PKG_VERSION"));

impl RegistryClient {
    /// A client for `registry` (`host[:port]`). Nothing is sent until a request needs the
    /// network; then, for a loopback registry without `insecure`, one TCP probe learns whether
    /// it speaks TLS.
    pub fn new(registry: &str, credential: Credential, options: ClientOptions) -> Self {
        Self {
            connection: tokio::sync::OnceCell::new(),
            registry: registry.to_string(),
            credential,
            authorization: std::sync::Mutex::new(Authorization::None),
            options,
        }
    }

    /// The protocol in use, once a request has been made.
    pub fn scheme(&self) -> Option<Scheme> {
        self.connection.get().map(|c| c.scheme)
    }

    /// The connection, made on first use.
    async fn connection(&self) -> Result<&Connection, Error> {
        self.connection
            .get_or_try_init(|| async {
                let plain = self.options.insecure
                    || (crate::is_loopback(&self.registry) && !speaks_tls(&self.registry).await);
                let scheme = if plain { Scheme::Http } else { Scheme::Https };
                // A loopback registry over plain HTTP needs no system trust store, whose
                // loading (every file in /etc/ssl/certs) is about 20 ms of a push.
                let trust = if plain && crate::is_loopback(&self.registry) {
                    Trust::GivenOnly
                } else {
                    Trust::System
                };
                Ok::<_, Error>(Connection {
                    http: build_http(&self.options, trust)?,
                    scheme,
                })
            })
            .await
    }

    /// Where the credential came from.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// `scheme://host/v2/<repository>/<kind>/<name>`.
    fn url(
        &self,
        connection: &Connection,
        reference: &Reference,
        kind: &str,
        name: &str,
    ) -> String {
        let scheme = match connection.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        format!(
            "{scheme}://{}/v2/{}/{kind}/{name}",
            reference.oci().resolve_registry(),
            reference.repository()
        )
    }

    /// `request` with the credential [`Self::authenticate`] settled on.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let authorization = self
            .authorization
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        match authorization {
            Authorization::None => request,
            Authorization::Basic(user, password) => request.basic_auth(user, Some(password)),
            Authorization::Bearer(token) => request.bearer_auth(token),
        }
    }

    /// Sends `request`; an answer other than one of `ok` becomes a [`Failure`], its error
    /// body read only up to [`crate::MAX_ERROR_BODY`] and its `Retry-After` kept.
    /// `subject` names what a 404 is about.
    async fn send(
        &self,
        operation: &str,
        subject: &str,
        request: reqwest::RequestBuilder,
        ok: &[u16],
    ) -> Result<reqwest::Response, Failure> {
        let response = request
            .send()
            .await
            .map_err(|e| self.classify_transport(operation, &e))?;
        let status = response.status().as_u16();
        if ok.contains(&status) {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = read_error_body(std::pin::pin!(response.bytes_stream())).await;
        Err(self.classify_status(operation, subject, status, &body, retry_after))
    }

    /// Checks that the registry accepts the credential: authenticates, then asks for a
    /// manifest that does not exist. A 401 or 403 means refused; anything else accepted.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`], or the transport's error after retries.
    pub async fn check_login(&self) -> Result<(), Error> {
        let probe: Reference = format!("{}/kiln-login-check:latest", self.registry).parse()?;
        self.authenticate(&probe, RegistryOperation::Pull, &crate::NoProgress)
            .await?;
        let connection = self.connection().await?;
        let operation = "checking the login";
        let url = self.url(connection, &probe, "manifests", "latest");
        let result = self
            .retry(operation, &crate::NoProgress, || async {
                let request = self.authorized(connection.http.head(&url)).header(
                    reqwest::header::ACCEPT,
                    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
                );
                self.send(operation, &probe.to_string(), request, &[200])
                    .await
                    .map(drop)
            })
            .await;
        match result {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Pushes `artifact` to `reference`: the layer, then the config, then the manifest (a
    /// blob the registry already has is not uploaded again). Each step is retried on its own.
    ///
    /// # Errors
    ///
    /// [`Error::Unauthorized`], [`Error::RetriesExhausted`], [`Error::Registry`].
    pub async fn push(
        &self,
        reference: &Reference,
        artifact: &Artifact,
        progress: &dyn Progress,
    ) -> Result<Pushed, Error> {
        if reference.digest().is_some() {
            return Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: "a push goes to a tag, not a digest".into(),
            });
        }
        self.authenticate(reference, RegistryOperation::Push, progress)
            .await?;
        let connection = self.connection().await?;
        let mut uploaded = 0u64;
        for (kind, digest, data) in [
            (BlobKind::Layer, &artifact.layer_digest, &artifact.layer),
            (BlobKind::Config, &artifact.config_digest, &artifact.config),
        ] {
            progress.blob_started(kind, digest, data.len() as u64);
            let sent = self
                .ensure_blob(connection, reference, digest, data, progress)
                .await?;
            if sent {
                uploaded = uploaded.saturating_add(data.len() as u64);
            }
            progress.blob_finished(digest, sent);
        }
        let tag = reference.tag().unwrap_or("latest");
        self.put_manifest(connection, reference, tag, &artifact.manifest, progress)
            .await?;
        uploaded = uploaded.saturating_add(artifact.manifest.len() as u64);
        Ok(Pushed {
            reference: format!("{reference}@{}", artifact.manifest_digest),
            digest: artifact.manifest_digest.clone(),
            uploaded,
        })
    }

    /// Uploads the blob `digest` unless the registry has it; whether it was sent.
    async fn ensure_blob(
        &self,
        connection: &Connection,
        reference: &Reference,
        digest: &str,
        data: &Bytes,
        progress: &dyn Progress,
    ) -> Result<bool, Error> {
        let subject = reference.to_string();
        let operation = format!("checking for blob {}", short(digest));
        let url = self.url(connection, reference, "blobs", digest);
        let exists = self
            .retry(&operation, progress, || async {
                let request = self.authorized(connection.http.head(&url));
                let response = self
                    .send(&operation, &subject, request, &[200, 404])
                    .await?;
                Ok(response.status().as_u16() == 200)
            })
            .await?;
        if exists {
            return Ok(false);
        }
        let operation = format!("pushing blob {}", short(digest));
        self.retry(&operation, progress, || {
            self.upload_blob(connection, reference, &operation, digest, data, progress)
        })
        .await?;
        Ok(true)
    }

    /// Puts an OCI image manifest at `tag`.
    async fn put_manifest(
        &self,
        connection: &Connection,
        reference: &Reference,
        tag: &str,
        manifest: &Bytes,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        self.put_document(
            connection,
            reference,
            tag,
            manifest,
            media_types::MANIFEST,
            progress,
        )
        .await
    }

    /// Puts a manifest or index of `media_type` at `tag` (or digest).
    async fn put_document(
        &self,
        connection: &Connection,
        reference: &Reference,
        tag: &str,
        manifest: &Bytes,
        media_type: &str,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        let subject = reference.to_string();
        let operation = format!("pushing the manifest to {reference}");
        let url = self.url(connection, reference, "manifests", tag);
        self.retry(&operation, progress, || async {
            let request = self
                .authorized(connection.http.put(&url))
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(manifest.clone());
            self.send(&operation, &subject, request, &[201])
                .await
                .map(drop)
        })
        .await
    }

    /// Signs the manifest `manifest_digest`, pushed to `reference`, with `key`, and stores
    /// the signature as cosign does: a simple signing payload naming the digest and
    /// `registry/repository:tag`, in a layer of the OCI manifest at the tag
    /// `sha256-<hex>.sig`. Signatures already there (by other keys, or by skopeo or cosign)
    /// are kept; the same signature is not added twice.
    ///
    /// # Errors
    ///
    /// [`Error::NotWasm`] when the signature tag holds something other than a signature
    /// manifest (it is not overwritten), and the errors of a push.
    pub async fn sign(
        &self,
        reference: &Reference,
        manifest_digest: &str,
        key: &SigningKey,
        progress: &dyn Progress,
    ) -> Result<SignaturePushed, Error> {
        let tag = signature::signature_tag(manifest_digest)?;
        let signatures_at = reference.with_tag(&tag)?;
        let identity = match reference.tag() {
            Some(t) => format!("{}/{}:{t}", reference.registry(), reference.repository()),
            None => format!("{}/{}", reference.registry(), reference.repository()),
        };
        let payload = Bytes::from(signature::Payload::new(manifest_digest, &identity).to_bytes());
        let signed = key.sign(&payload);
        self.authenticate(reference, RegistryOperation::Push, progress)
            .await?;
        let connection = self.connection().await?;
        let mut layers = match self.fetch_manifest(&signatures_at, progress).await {
            Ok(bytes) => parse_signature_manifest(&signatures_at, &bytes)?.layers,
            Err(Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let payload_digest = sha256_digest(&payload);
        let annotations = BTreeMap::from([(signature::SIGNATURE_ANNOTATION.to_string(), signed)]);
        let already_there = layers.iter().any(|l| {
            l.media_type == signature::SIMPLE_SIGNING_MEDIA_TYPE
                && l.digest == payload_digest
                && l.annotations.as_ref() == Some(&annotations)
        });
        if !already_there {
            self.ensure_blob(
                connection,
                &signatures_at,
                &payload_digest,
                &payload,
                progress,
            )
            .await?;
            layers.push(OciDescriptor {
                media_type: signature::SIMPLE_SIGNING_MEDIA_TYPE.to_string(),
                digest: payload_digest,
                size: payload.len() as i64,
                annotations: Some(annotations),
                ..OciDescriptor::default()
            });
            // The config containers/image writes: an empty image config whose diff IDs are the
            // layers (cosign's has the same shape).
            let config = Bytes::from(
                serde_json::to_vec(&serde_json::json!({
                    "architecture": "",
                    "os": "",
                    "config": {},
                    "rootfs": {
                        "type": "layers",
                        "diff_ids": layers.iter().map(|l| l.digest.as_str()).collect::<Vec<_>>(),
                    },
                }))
                .unwrap_or_default(),
            );
            let config_digest = sha256_digest(&config);
            self.ensure_blob(
                connection,
                &signatures_at,
                &config_digest,
                &config,
                progress,
            )
            .await?;
            let manifest = OciImageManifest {
                media_type: Some(media_types::MANIFEST.to_string()),
                config: OciDescriptor {
                    media_type: oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE.to_string(),
                    digest: config_digest,
                    size: config.len() as i64,
                    ..OciDescriptor::default()
                },
                layers: layers.clone(),
                ..OciImageManifest::default()
            };
            let manifest = Bytes::from(serde_json::to_vec(&manifest).map_err(|e| {
                Error::Package(format!("cannot serialize the signature manifest: {e}"))
            })?);
            self.put_manifest(connection, &signatures_at, &tag, &manifest, progress)
                .await?;
        }
        let manifest = self.fetch_manifest(&signatures_at, progress).await?;
        Ok(SignaturePushed {
            reference: signatures_at.to_string(),
            digest: sha256_digest(&manifest),
            already_there,
            signatures: layers.len(),
        })
    }

    /// Attaches `content` (of `artifact_type`, e.g. `application/vnd.cyclonedx+json`) to the
    /// manifest `subject_digest` (`subject_size` bytes) in `reference`'s repository as an OCI
    /// referrer (image-spec 1.1): a manifest whose `subject` is the component's manifest,
    /// `artifactType` the content's type, config the empty descriptor and one layer, pushed by
    /// digest; and listed in the referrers tag fallback `sha256-<hex>` (an image index), which
    /// registries without the referrers API (Debian's docker-registry) need and the others
    /// ignore. Referrers already listed there are kept; the same one is not listed twice.
    ///
    /// # Errors
    ///
    /// [`Error::NotWasm`] when the fallback tag holds something other than an image index,
    /// and the errors of a push.
    pub async fn attach(
        &self,
        reference: &Reference,
        subject_digest: &str,
        subject_size: u64,
        artifact_type: &str,
        content: Bytes,
        progress: &dyn Progress,
    ) -> Result<Attached, Error> {
        self.authenticate(reference, RegistryOperation::Push, progress)
            .await?;
        let connection = self.connection().await?;
        let content_digest = sha256_digest(&content);
        self.ensure_blob(connection, reference, &content_digest, &content, progress)
            .await?;
        let empty = Bytes::from_static(EMPTY_JSON);
        let empty_digest = sha256_digest(&empty);
        self.ensure_blob(connection, reference, &empty_digest, &empty, progress)
            .await?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::MANIFEST,
            "artifactType": artifact_type,
            "config": { "mediaType": EMPTY_MEDIA_TYPE, "digest": empty_digest, "size": EMPTY_JSON.len() },
            "layers": [{ "mediaType": artifact_type, "digest": content_digest, "size": content.len() }],
            "subject": { "mediaType": media_types::MANIFEST, "digest": subject_digest, "size": subject_size },
        });
        let manifest = Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default());
        let manifest_digest = sha256_digest(&manifest);
        self.put_document(
            connection,
            reference,
            &manifest_digest,
            &manifest,
            media_types::MANIFEST,
            progress,
        )
        .await?;

        let tag = referrers_tag(subject_digest);
        let index_at = reference.with_tag(&tag)?;
        let mut index = match self.fetch_manifest(&index_at, progress).await {
            Ok(bytes) => {
                let value: serde_json::Value =
                    serde_json::from_slice(&bytes).map_err(|_| Error::NotWasm {
                        reference: index_at.to_string(),
                        found: "a referrers tag that is not JSON".into(),
                    })?;
                if value["mediaType"] != oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE
                    || !value["manifests"].is_array()
                {
                    return Err(Error::NotWasm {
                        reference: index_at.to_string(),
                        found: "a referrers tag that is not an image index".into(),
                    });
                }
                value
            }
            Err(Error::NotFound { .. }) => serde_json::json!({
                "schemaVersion": 2,
                "mediaType": oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
                "manifests": [],
            }),
            Err(e) => return Err(e),
        };
        let listed = index["manifests"]
            .as_array()
            .is_some_and(|m| m.iter().any(|d| d["digest"] == manifest_digest.as_str()));
        if !listed && let Some(manifests) = index["manifests"].as_array_mut() {
            manifests.push(serde_json::json!({
                "mediaType": media_types::MANIFEST,
                "digest": manifest_digest,
                "size": manifest.len(),
                "artifactType": artifact_type,
            }));
            let bytes = Bytes::from(serde_json::to_vec(&index).unwrap_or_default());
            self.put_document(
                connection,
                &index_at,
                &tag,
                &bytes,
                oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
                progress,
            )
            .await?;
        }
        Ok(Attached {
            digest: manifest_digest,
            index: index_at.to_string(),
        })
    }

    /// The newest referrer of `artifact_type` attached to the manifest `subject_digest` in
    /// `reference`'s repository, found through the referrers tag fallback, or `None`. The
    /// referrer manifest and its content are verified against their digests and sizes, and
    /// its `subject` must be `subject_digest`.
    ///
    /// # Errors
    ///
    /// Digest, size and bound violations, and the errors of a pull.
    pub async fn fetch_referrer(
        &self,
        reference: &Reference,
        subject_digest: &str,
        artifact_type: &str,
        progress: &dyn Progress,
    ) -> Result<Option<Referrer>, Error> {
        self.authenticate(reference, RegistryOperation::Pull, progress)
            .await?;
        let connection = self.connection().await?;
        let index_at = reference.with_tag(&referrers_tag(subject_digest))?;
        let index: serde_json::Value = match self.fetch_manifest(&index_at, progress).await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(digest) = index["manifests"].as_array().and_then(|m| {
            m.iter()
                .rev()
                .find(|d| d["artifactType"] == artifact_type)
                .and_then(|d| d["digest"].as_str())
                .map(str::to_string)
        }) else {
            return Ok(None);
        };
        crate::reference::check_digest(&digest).map_err(|reason| Error::NotWasm {
            reference: index_at.to_string(),
            found: format!("a referrer digest kiln refuses: {reason}"),
        })?;
        let manifest_at = reference.with_digest(&digest);
        let bytes = self.fetch_manifest(&manifest_at, progress).await?;
        let actual = sha256_digest(&bytes);
        if actual != digest {
            return Err(Error::DigestMismatch {
                what: "referrer manifest".into(),
                expected: digest,
                actual,
            });
        }
        let manifest: OciImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| Error::NotWasm {
                reference: manifest_at.to_string(),
                found: format!("a referrer manifest that does not parse: {e}"),
            })?;
        let subject: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if subject["subject"]["digest"] != subject_digest {
            return Err(Error::NotWasm {
                reference: manifest_at.to_string(),
                found: "a referrer whose subject is another manifest".into(),
            });
        }
        let [layer] = manifest.layers.as_slice() else {
            return Err(Error::NotWasm {
                reference: manifest_at.to_string(),
                found: format!("a referrer with {} layers", manifest.layers.len()),
            });
        };
        let content = self
            .fetch_small_blob(
                connection,
                reference,
                layer,
                "referrer content",
                MAX_REFERRER_SIZE,
                progress,
            )
            .await?;
        Ok(Some(Referrer { digest, content }))
    }

    /// [`Self::pull`], accepting the artifact only when it carries a signature by one of
    /// `keys` over the manifest digest pulled, made for the repository pulled from (any tag:
    /// cosign signs the repository alone). The signature is checked before any blob is
    /// downloaded; the one that verified is kept in the cache, so pulling the same digest
    /// with the same key again checks it there (verifying it again) without a request.
    ///
    /// # Errors
    ///
    /// [`Error::Unsigned`], [`Error::SignedByAnotherKey`], [`Error::SignatureOverAnotherDigest`],
    /// [`Error::SignedForAnotherRepository`], and those of [`Self::pull`].
    pub async fn pull_verified(
        &self,
        reference: &Reference,
        keys: &[PublicKey],
        progress: &dyn Progress,
    ) -> Result<(Pulled, Verified), Error> {
        if keys.is_empty() {
            return Err(Error::Key("no key to verify with".into()));
        }
        let (pulled, verified) = self.pull_checked(reference, keys, progress).await?;
        let verified = verified.ok_or_else(|| Error::Key("no key to verify with".into()))?;
        Ok((pulled, verified))
    }

    /// The signature checks of [`Self::pull_verified`], for the manifest `digest`.
    async fn verify_signatures(
        &self,
        reference: &Reference,
        digest: &str,
        keys: &[PublicKey],
        progress: &dyn Progress,
        auth_pending: &mut bool,
    ) -> Result<Verified, Error> {
        let cache = &self.options.cache;
        let (registry, repository) = (reference.registry(), reference.repository());
        let shown = reference.to_string();
        for key in keys {
            if let Some(stored) = cache.verified(digest, &key.fingerprint())
                && let Ok(mut verified) =
                    signature::judge(&stored, keys, digest, registry, repository)
            {
                verified.from_cache = true;
                return Ok(verified);
            }
        }
        let tag = signature::signature_tag(digest)?;
        let signatures_at = reference.with_tag(&tag)?;
        if std::mem::take(auth_pending) {
            self.authenticate(reference, RegistryOperation::Pull, progress)
                .await?;
        }
        let unsigned = || Error::Unsigned {
            reference: shown.clone(),
            digest: digest.to_string(),
            tag: tag.clone(),
        };
        let bytes = match self.fetch_manifest(&signatures_at, progress).await {
            Ok(bytes) => bytes,
            Err(Error::NotFound { .. }) => return Err(unsigned()),
            Err(e) => return Err(e),
        };
        let manifest = parse_signature_manifest(&signatures_at, &bytes)?;
        let candidates: Vec<(&OciDescriptor, &String)> = manifest
            .layers
            .iter()
            .filter(|l| l.media_type == signature::SIMPLE_SIGNING_MEDIA_TYPE)
            .filter_map(|l| {
                let signature = l
                    .annotations
                    .as_ref()?
                    .get(signature::SIGNATURE_ANNOTATION)?;
                Some((l, signature))
            })
            .take(signature::MAX_SIGNATURES)
            .collect();
        if candidates.is_empty() {
            return Err(unsigned());
        }
        let connection = self.connection().await?;
        let mut best: Option<signature::Rejection> = None;
        for (layer, signed) in &candidates {
            let payload = self
                .fetch_payload(connection, &signatures_at, layer, progress)
                .await?;
            let stored = signature::StoredSignature {
                payload,
                signature: (*signed).clone(),
            };
            match signature::judge(&stored, keys, digest, registry, repository) {
                Ok(verified) => {
                    cache.put_verified(digest, &verified.key, &stored)?;
                    return Ok(verified);
                }
                Err(rejection) => {
                    let rank = |r: &signature::Rejection| match r {
                        signature::Rejection::Digest { .. } => 0,
                        signature::Rejection::Repository { .. } => 1,
                        signature::Rejection::Key => 2,
                    };
                    if best.as_ref().is_none_or(|b| rank(&rejection) < rank(b)) {
                        best = Some(rejection);
                    }
                }
            }
        }
        Err(match best {
            Some(signature::Rejection::Digest { signed }) => Error::SignatureOverAnotherDigest {
                reference: shown,
                digest: digest.to_string(),
                signed: crate::bounds::printable(&signed),
            },
            Some(signature::Rejection::Repository { signed }) => {
                Error::SignedForAnotherRepository {
                    reference: shown,
                    signed: crate::bounds::printable(&signed),
                }
            }
            Some(signature::Rejection::Key) | None => Error::SignedByAnotherKey {
                reference: shown,
                signatures: candidates.len(),
            },
        })
    }

    /// A signature payload blob: at most [`signature::MAX_PAYLOAD_SIZE`] bytes, checked
    /// against its descriptor's size and digest.
    async fn fetch_payload(
        &self,
        connection: &Connection,
        reference: &Reference,
        descriptor: &OciDescriptor,
        progress: &dyn Progress,
    ) -> Result<Vec<u8>, Error> {
        self.fetch_small_blob(
            connection,
            reference,
            descriptor,
            "signature payload",
            signature::MAX_PAYLOAD_SIZE,
            progress,
        )
        .await
    }

    /// A blob of at most `limit` bytes read whole, checked against its descriptor's size and
    /// digest; `what` names it in errors.
    async fn fetch_small_blob(
        &self,
        connection: &Connection,
        reference: &Reference,
        descriptor: &OciDescriptor,
        what: &str,
        limit: u64,
        progress: &dyn Progress,
    ) -> Result<Vec<u8>, Error> {
        let digest = &descriptor.digest;
        crate::reference::check_digest(digest).map_err(|reason| Error::NotWasm {
            reference: reference.to_string(),
            found: format!("a {what} kiln refuses: {reason}"),
        })?;
        if descriptor.size < 0 || descriptor.size as u64 > limit {
            return Err(Error::TooLarge {
                what: format!("the {what} {}", short(digest)),
                limit,
                detail: format!("its descriptor declares {} bytes", descriptor.size),
            });
        }
        let operation = format!("pulling the {what} {}", short(digest));
        let subject = format!("{what} {digest} of {reference}");
        let url = self.url(connection, reference, "blobs", digest);
        let body = self
            .retry(&operation, progress, || async {
                let request = self.authorized(connection.http.get(&url));
                let response = self.send(&operation, &subject, request, &[200]).await?;
                match read_capped(std::pin::pin!(response.bytes_stream()), limit).await {
                    Ok(Capped::Body(bytes)) => Ok(bytes),
                    Ok(Capped::TooLarge) => Err(Failure::Fatal(Error::TooLarge {
                        what: format!("the {what} {}", short(digest)),
                        limit,
                        detail: "the download was cut off there".into(),
                    })),
                    Err(e) => Err(Failure::transient(format!(
                        "the download of the {what} broke off: {}",
                        error_chain(&e)
                    ))),
                }
            })
            .await?;
        if body.len() as i64 != descriptor.size {
            return Err(Error::SizeMismatch {
                what: what.into(),
                digest: digest.clone(),
                expected: descriptor.size as u64,
                actual: body.len() as u64,
            });
        }
        let actual = sha256_digest(&body);
        if &actual != digest {
            return Err(Error::DigestMismatch {
                what: what.into(),
                expected: digest.clone(),
                actual,
            });
        }
        Ok(body)
    }

    /// One monolithic upload (the OCI distribution spec's `POST` then `PUT`), the body
    /// streamed in 4 MiB pieces that are reported as they are taken for sending.
    async fn upload_blob(
        &self,
        connection: &Connection,
        reference: &Reference,
        operation: &str,
        digest: &str,
        data: &Bytes,
        progress: &dyn Progress,
    ) -> Result<(), Failure> {
        let subject = reference.to_string();
        let start = self.url(connection, reference, "blobs", "uploads/");
        let request = self
            .authorized(connection.http.post(&start))
            .header(reqwest::header::CONTENT_LENGTH, 0);
        let response = self.send(operation, &subject, request, &[202]).await?;
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| {
                Failure::Fatal(Error::Registry {
                    operation: operation.to_string(),
                    message: "the registry started an upload but sent no Location".into(),
                })
            })?;
        let location = response.url().join(location).map_err(|e| {
            Failure::Fatal(Error::Registry {
                operation: operation.to_string(),
                message: format!("the registry sent an upload Location kiln cannot use ({e})"),
            })
        })?;
        let same_host = location.host_str() == response.url().host_str()
            && location.port_or_known_default() == response.url().port_or_known_default();
        let mut put_url = location;
        put_url.query_pairs_mut().append_pair("digest", digest);
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let body = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|piece| (piece, receiver))
        });
        let mut request = connection
            .http
            .put(put_url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, data.len())
            .body(reqwest::Body::wrap_stream(body));
        // Credentials go to the registry only, never to an upload host it redirects to.
        if same_host {
            request = self.authorized(request);
        }
        let feed = async move {
            for piece in pieces(data) {
                let len = piece.len() as u64;
                if sender.send(Ok(piece)).await.is_err() {
                    break;
                }
                progress.blob_advanced(digest, len);
            }
        };
        let (_, sent) = tokio::join!(feed, self.send(operation, &subject, request, &[201]));
        sent.map(drop)
    }

    /// Pulls the component at `reference` through the cache. A reference pinned to a digest
    /// whose content is cached makes no request at all; a tag is always resolved by the
    /// registry, then only what the cache lacks is downloaded.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::NotWasm`], [`Error::TooLarge`], [`Error::ForeignUrl`],
    /// [`Error::DigestMismatch`], [`Error::SizeMismatch`], [`Error::Unauthorized`],
    /// [`Error::RetriesExhausted`]. Nothing unverified is cached.
    pub async fn pull(
        &self,
        reference: &Reference,
        progress: &dyn Progress,
    ) -> Result<Pulled, Error> {
        self.pull_checked(reference, &[], progress)
            .await
            .map(|(pulled, _)| pulled)
    }

    /// [`Self::pull`], with the signature checks of [`Self::pull_verified`] when `keys` are
    /// given.
    async fn pull_checked(
        &self,
        reference: &Reference,
        keys: &[PublicKey],
        progress: &dyn Progress,
    ) -> Result<(Pulled, Option<Verified>), Error> {
        let cache = &self.options.cache;
        let mut downloaded = 0u64;
        let cached = reference.digest().and_then(|d| {
            cache
                .get(d, None)
                .map(|bytes| (Bytes::from(bytes), d.to_string()))
        });
        let (manifest_bytes, digest, from_cache) = match cached {
            Some((bytes, digest)) => (bytes, digest, true),
            None => {
                self.authenticate(reference, RegistryOperation::Pull, progress)
                    .await?;
                let bytes = self.fetch_manifest(reference, progress).await?;
                let digest = sha256_digest(&bytes);
                if let Some(expected) = reference.digest()
                    && expected != digest
                {
                    return Err(Error::DigestMismatch {
                        what: "manifest".into(),
                        expected: expected.to_string(),
                        actual: digest,
                    });
                }
                downloaded = downloaded.saturating_add(bytes.len() as u64);
                (bytes, digest, false)
            }
        };
        let manifest = parse_wasm_manifest(reference, &manifest_bytes)?;
        let Some(layer) = manifest.layers.first() else {
            return Err(Error::NotWasm {
                reference: reference.to_string(),
                found: "a manifest without a layer".into(),
            });
        };
        let pinned = reference.with_digest(&digest);
        // A manifest from the cache means no authentication yet: the first blob the cache
        // lacks does it, so a fully cached pull never touches the network.
        let mut auth_pending = from_cache;
        let verified = if keys.is_empty() {
            None
        } else {
            Some(
                self.verify_signatures(reference, &digest, keys, progress, &mut auth_pending)
                    .await?,
            )
        };
        let (config_bytes, n) = self
            .fetch_blob(
                &pinned,
                BlobKind::Config,
                &manifest.config,
                progress,
                &mut auth_pending,
            )
            .await?;
        downloaded = downloaded.saturating_add(n);
        let config = WasmConfig::try_from(config_bytes.as_slice()).map_err(|e| Error::NotWasm {
            reference: reference.to_string(),
            found: format!("a config blob that is not a Wasm config ({e})"),
        })?;
        let (component, n) = self
            .fetch_blob(&pinned, BlobKind::Layer, layer, progress, &mut auth_pending)
            .await?;
        downloaded = downloaded.saturating_add(n);
        if !from_cache {
            cache.put("manifest", &digest, &manifest_bytes)?;
        }
        let path = cache.path_of(&layer.digest).ok_or_else(|| Error::NotWasm {
            reference: reference.to_string(),
            found: "a layer digest kiln refuses".into(),
        })?;
        let pulled = Pulled {
            digest,
            size: component.len() as u64,
            bytes: Bytes::from(component),
            component: path,
            layer_digest: layer.digest.clone(),
            annotations: manifest.annotations.clone().unwrap_or_default(),
            config,
            downloaded,
        };
        Ok((pulled, verified))
    }

    /// Fetches the manifest of `reference`, reading at most [`MAX_MANIFEST_SIZE`] bytes.
    async fn fetch_manifest(
        &self,
        reference: &Reference,
        progress: &dyn Progress,
    ) -> Result<Bytes, Error> {
        let connection = self.connection().await?;
        let operation = format!("pulling the manifest of {reference}");
        let subject = reference.to_string();
        let name = reference
            .digest()
            .or(reference.tag())
            .unwrap_or("latest")
            .to_string();
        let url = self.url(connection, reference, "manifests", &name);
        let accepted = [
            oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
            oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
            oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
            oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
        ]
        .join(", ");
        let too_large = |detail: String| {
            Failure::Fatal(Error::TooLarge {
                what: format!("the manifest of {reference}"),
                limit: MAX_MANIFEST_SIZE,
                detail,
            })
        };
        self.retry(&operation, progress, || async {
            let request = self
                .authorized(connection.http.get(&url))
                .header(reqwest::header::ACCEPT, &accepted);
            let response = self.send(&operation, &subject, request, &[200]).await?;
            if let Some(length) = response.content_length()
                && length > MAX_MANIFEST_SIZE
            {
                return Err(too_large(format!("its Content-Length is {length} bytes")));
            }
            match read_capped(std::pin::pin!(response.bytes_stream()), MAX_MANIFEST_SIZE).await {
                Ok(Capped::Body(bytes)) => Ok(Bytes::from(bytes)),
                Ok(Capped::TooLarge) => Err(too_large("the download was cut off there".into())),
                Err(e) => Err(Failure::transient(format!(
                    "the download of the manifest broke off: {}",
                    error_chain(&e)
                ))),
            }
        })
        .await
    }

    /// Fetches one blob into the cache unless it is there; returns its verified bytes and
    /// the bytes downloaded. Authenticates first when `auth_pending` (and clears it).
    async fn fetch_blob(
        &self,
        reference: &Reference,
        kind: BlobKind,
        descriptor: &OciDescriptor,
        progress: &dyn Progress,
        auth_pending: &mut bool,
    ) -> Result<(Vec<u8>, u64), Error> {
        let cache = &self.options.cache;
        let digest = &descriptor.digest;
        let what = match kind {
            BlobKind::Config => "config blob",
            BlobKind::Layer => "layer",
        };
        let size = u64::try_from(descriptor.size).map_err(|_| Error::NotWasm {
            reference: reference.to_string(),
            found: format!("a {what} with a negative size"),
        })?;
        if kind == BlobKind::Config && size > MAX_CONFIG_SIZE {
            return Err(Error::TooLarge {
                what: format!("the config blob {} of {reference}", short(digest)),
                limit: MAX_CONFIG_SIZE,
                detail: format!("its descriptor declares {size} bytes"),
            });
        }
        progress.blob_started(kind, digest, size);
        if let Some(bytes) = cache.get(digest, Some(size)) {
            progress.blob_finished(digest, false);
            return Ok((bytes, 0));
        }
        if std::mem::take(auth_pending) {
            self.authenticate(reference, RegistryOperation::Pull, progress)
                .await?;
        }
        let connection = self.connection().await?;
        let operation = format!("pulling {what} {}", short(digest));
        let url = self.url(connection, reference, "blobs", digest);
        let subject = format!("{what} {digest} of {reference}");
        let bytes = self
            .retry(&operation, progress, || async {
                let request = self.authorized(connection.http.get(&url));
                let response = match self.send(&operation, &subject, request, &[200]).await {
                    Err(Failure::Fatal(Error::NotFound { .. }))
                        if descriptor.urls.as_ref().is_some_and(|u| !u.is_empty()) =>
                    {
                        self.fetch_foreign(connection, &operation, what, descriptor)
                            .await?
                    }
                    other => other?,
                };
                if let Some(length) = response.content_length()
                    && length > size
                {
                    return Err(Failure::Fatal(Error::SizeMismatch {
                        what: what.to_string(),
                        digest: digest.clone(),
                        expected: size,
                        actual: length,
                    }));
                }
                let mut writer = cache.writer(what, digest, size).map_err(Failure::Fatal)?;
                let mut stream = std::pin::pin!(response.bytes_stream());
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| {
                        Failure::transient(format!(
                            "the download of {what} {} broke off: {}",
                            short(digest),
                            error_chain(&e)
                        ))
                    })?;
                    writer.write(&chunk).map_err(Failure::Fatal)?;
                    progress.blob_advanced(digest, chunk.len() as u64);
                }
                writer.commit().map_err(Failure::Fatal)
            })
            .await?;
        progress.blob_finished(digest, true);
        Ok((bytes, size))
    }

    /// A blob the registry lacks, from its descriptor's `urls`, when
    /// [`ClientOptions::foreign_urls`] allows it: without credentials, HTTPS only (plain HTTP
    /// too when the registry is reached over it). The caller verifies size and digest.
    async fn fetch_foreign(
        &self,
        connection: &Connection,
        operation: &str,
        what: &str,
        descriptor: &OciDescriptor,
    ) -> Result<reqwest::Response, Failure> {
        let urls = descriptor.urls.as_deref().unwrap_or_default();
        if !self.options.foreign_urls {
            return Err(Failure::Fatal(Error::ForeignUrl {
                what: what.to_string(),
                digest: descriptor.digest.clone(),
                url: crate::bounds::printable(urls.first().map_or("", String::as_str)),
            }));
        }
        let mut last = None;
        for text in urls {
            let Ok(url) = reqwest::Url::parse(text) else {
                continue;
            };
            let allowed = url.scheme() == "https"
                || (url.scheme() == "http" && connection.scheme == Scheme::Http);
            if !allowed {
                continue;
            }
            let subject = format!(
                "{what} {} at {}",
                descriptor.digest,
                crate::bounds::printable(text)
            );
            // No `authorized`: credentials are for the registry alone (CVE-2020-15157).
            match self
                .send(operation, &subject, connection.http.get(url), &[200])
                .await
            {
                Ok(response) => return Ok(response),
                Err(failure) => last = Some(failure),
            }
        }
        Err(last.unwrap_or_else(|| {
            Failure::Fatal(Error::Registry {
                operation: operation.to_string(),
                message: format!(
                    "the registry does not have {what} {}, and none of its foreign URLs is \
                     https{}",
                    descriptor.digest,
                    if connection.scheme == Scheme::Http {
                        " or http"
                    } else {
                        ""
                    }
                ),
            })
        }))
    }

    /// Authenticates for `operation` (a bearer-token exchange when the registry asks for one)
    /// and settles what later requests send as `Authorization`.
    async fn authenticate(
        &self,
        reference: &Reference,
        operation: RegistryOperation,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        let what = match operation {
            RegistryOperation::Pull => "authenticating to pull",
            RegistryOperation::Push => "authenticating to push",
        };
        let connection = self.connection().await?;
        let token = self
            .retry(what, progress, || {
                self.exchange_token(connection, reference, operation, what)
            })
            .await?;
        let authorization = match (token, self.credential.auth()) {
            (Some(token), _) => Authorization::Bearer(token),
            (None, RegistryAuth::Basic(user, password)) => {
                Authorization::Basic(user.clone(), password.clone())
            }
            (None, RegistryAuth::Bearer(token)) => Authorization::Bearer(token.clone()),
            (None, RegistryAuth::Anonymous) => Authorization::None,
        };
        *self
            .authorization
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = authorization;
        Ok(())
    }

    /// The registry's token exchange (the Docker/OCI bearer-token flow, as oci-client does it,
    /// but with kiln's bounds): `GET /v2/` unauthenticated; a `WWW-Authenticate: Bearer
    /// realm=…,service=…` challenge sends kiln to the token service with the scope
    /// `repository:<name>:pull` (or `pull,push`) and the basic credential, if any; its answer
    /// is read up to [`MAX_TOKEN_BODY`] and its `token` (or `access_token`) used. No
    /// challenge, or another scheme: no token (the caller then sends basic credentials or
    /// nothing). A static bearer credential is the token. 429 and 5xx are retried with their
    /// `Retry-After`, as every other request.
    async fn exchange_token(
        &self,
        connection: &Connection,
        reference: &Reference,
        operation: RegistryOperation,
        what: &str,
    ) -> Result<Option<String>, Failure> {
        if let RegistryAuth::Bearer(token) = self.credential.auth() {
            return Ok(Some(token.clone()));
        }
        let scheme = match connection.scheme {
            Scheme::Https => "https",
            Scheme::Http => "http",
        };
        let registry = reference.oci().resolve_registry().to_string();
        let probe = connection
            .http
            .get(format!("{scheme}://{registry}/v2/"))
            .send()
            .await
            .map_err(|e| self.classify_transport(what, &e))?;
        let challenge = probe
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(bearer_challenge);
        drop(probe);
        let Some((realm, service)) = challenge else {
            return Ok(None);
        };
        let scope = match operation {
            RegistryOperation::Pull => format!("repository:{}:pull", reference.repository()),
            RegistryOperation::Push => format!("repository:{}:pull,push", reference.repository()),
        };
        let mut query = vec![("scope", scope)];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let mut request = connection.http.get(&realm).query(&query);
        if let RegistryAuth::Basic(user, password) = self.credential.auth() {
            request = request.basic_auth(user, Some(password));
        }
        let answer = self
            .send(what, "the token service", request, &[200])
            .await?;
        let body = match read_capped(std::pin::pin!(answer.bytes_stream()), MAX_TOKEN_BODY)
            .await
            .map_err(|e| self.classify_transport(what, &e))?
        {
            Capped::Body(body) => body,
            Capped::TooLarge => {
                return Err(Failure::Fatal(Error::TooLarge {
                    what: format!("the token service's answer for {registry}"),
                    limit: MAX_TOKEN_BODY,
                    detail: "the download was cut off there".into(),
                }));
            }
        };
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: TokenAnswer = serde_json::from_slice(&body).map_err(|e| {
            Failure::Fatal(Error::Registry {
                operation: what.to_string(),
                message: format!("the token service's answer is not a token: {e}"),
            })
        })?;
        match parsed.token.or(parsed.access_token) {
            Some(token) => Ok(Some(token)),
            None => Err(Failure::Fatal(Error::Registry {
                operation: what.to_string(),
                message: "the token service's answer holds no `token`".into(),
            })),
        }
    }

    /// Runs `attempt` until it succeeds, fails fatally, or the policy's attempts run out.
    async fn retry<T, F, Fut>(
        &self,
        operation: &str,
        progress: &dyn Progress,
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let policy = self.options.retry;
        let attempts = policy.attempts.max(1);
        let mut delay = policy.initial_delay;
        let mut n = 1;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Transient {
                    message,
                    at_least,
                    retry_after,
                }) => {
                    let (wait, capped) =
                        crate::bounds::next_wait(delay, at_least, policy.max_delay, retry_after);
                    let message = match capped {
                        Some(note) => format!("{message} ({note})"),
                        None => message,
                    };
                    if n >= attempts {
                        return Err(Error::RetriesExhausted {
                            operation: operation.to_string(),
                            attempts: n,
                            last: message,
                        });
                    }
                    progress.retrying(operation, n, wait, &message);
                    tokio::time::sleep(wait).await;
                    delay = delay.saturating_mul(2).min(policy.max_delay);
                    n += 1;
                }
            }
        }
    }

    /// Sorts an answer kiln did not want into retry-worthy or not, in kiln's vocabulary.
    fn classify_status(
        &self,
        operation: &str,
        subject: &str,
        code: u16,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Failure {
        let envelope = serde_json::from_slice::<OciEnvelope>(body)
            .ok()
            .filter(|e| !e.errors.is_empty());
        let text = match &envelope {
            Some(envelope) => format!(
                ": {}",
                crate::bounds::printable(
                    &envelope
                        .errors
                        .iter()
                        .map(|e| format!("{:?}: {}", e.code, e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            ),
            None => brief(&String::from_utf8_lossy(body)),
        };
        let has = |wanted: fn(&OciErrorCode) -> bool| {
            envelope
                .as_ref()
                .is_some_and(|e| e.errors.iter().any(|e| wanted(&e.code)))
        };
        let unauthorized = || {
            Failure::Fatal(Error::Unauthorized {
                registry: self.registry.clone(),
                credentials: self.credential.source.to_string(),
                operation: operation.to_string(),
            })
        };
        let too_many = code == 429 || has(|c| matches!(c, OciErrorCode::Toomanyrequests));
        if too_many || code >= 500 {
            return Failure::Transient {
                message: format!("HTTP {code}{text}"),
                at_least: if too_many {
                    Duration::from_secs(1)
                } else {
                    Duration::ZERO
                },
                retry_after,
            };
        }
        if code == 401
            || code == 403
            || has(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
        {
            return unauthorized();
        }
        if code == 404
            || has(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            })
        {
            return Failure::Fatal(Error::NotFound {
                reference: subject.to_string(),
            });
        }
        Failure::Fatal(Error::Registry {
            operation: operation.to_string(),
            message: format!("HTTP {code}{text}"),
        })
    }

    /// Sorts a transport error (no answer, or a body that broke off).
    fn classify_transport(&self, operation: &str, e: &reqwest::Error) -> Failure {
        let message = error_chain(e);
        if message.contains("certificate") {
            return Failure::Fatal(Error::Certificate {
                registry: self.registry.clone(),
                message,
            });
        }
        if e.is_connect() || e.is_timeout() || e.is_request() || e.is_body() || e.is_decode() {
            Failure::transient(message)
        } else {
            Failure::Fatal(Error::Registry {
                operation: operation.to_string(),
                message,
            })
        }
    }
}

/// The reqwest client for all of kiln's registry requests, the token exchange included: the
/// extra TLS roots, timeouts (10 s to connect, 60 s per read) and kiln's user agent.
/// Which certificates a client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// The platform's store plus [`ClientOptions::root_certificates`].
    System,
    /// Only [`ClientOptions::root_certificates`]: for a plain-HTTP loopback registry. Should
    /// one redirect to an HTTPS host, that host's certificate fails verification (an error,
    /// never an unverified connection).
    GivenOnly,
}

fn build_http(options: &ClientOptions, trust: Trust) -> Result<reqwest::Client, Error> {
    let setup = |e: reqwest::Error| Error::Registry {
        operation: "setting up the HTTP client".into(),
        message: error_chain(&e),
    };
    let roots = options
        .root_certificates
        .iter()
        .map(|pem| reqwest::Certificate::from_pem(pem))
        .collect::<Result<Vec<_>, _>>()
        .map_err(setup)?;
    let builder = match trust {
        Trust::System => reqwest::Client::builder().tls_certs_merge(roots),
        Trust::GivenOnly => reqwest::Client::builder().tls_certs_only(roots),
    };
    builder
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(setup)
}

/// Checks that a manifest is a Wasm component artifact and returns it.
fn parse_wasm_manifest(reference: &Reference, bytes: &[u8]) -> Result<OciImageManifest, Error> {
    let not_wasm = |found: String| Error::NotWasm {
        reference: reference.to_string(),
        found,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| not_wasm(format!("a manifest that is not JSON ({e})")))?;
    let media_type = value
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    if value.get("manifests").is_some()
        || media_type == oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE
        || media_type == oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE
    {
        return Err(not_wasm(
            "an image index (a multi-platform container image), not a single manifest".into(),
        ));
    }
    let manifest: OciImageManifest = serde_json::from_value(value)
        .map_err(|e| not_wasm(format!("a manifest kiln cannot read ({e})")))?;
    if manifest.config.media_type != media_types::WASM_CONFIG {
        let kind = if manifest.config.media_type.contains("container.image")
            || manifest.config.media_type == oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE
        {
            " (a container image)"
        } else {
            ""
        };
        return Err(not_wasm(format!(
            "its config is `{}`{kind}, not `{}`",
            manifest.config.media_type,
            media_types::WASM_CONFIG
        )));
    }
    // Digests name files in the cache: anything but `sha256:<64 hex>` is refused here.
    for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
        crate::reference::check_digest(&descriptor.digest)
            .map_err(|reason| not_wasm(format!("a descriptor kiln refuses: {reason}")))?;
    }
    match manifest.layers.as_slice() {
        [layer] if layer.media_type == media_types::WASM_LAYER => Ok(manifest),
        layers => Err(not_wasm(format!(
            "it has {} layer(s) of type {}, where a Wasm artifact has one `{}` layer",
            layers.len(),
            layers
                .iter()
                .map(|l| format!("`{}`", l.media_type))
                .collect::<Vec<_>>()
                .join(", "),
            media_types::WASM_LAYER
        ))),
    }
}

/// Reads the manifest at a signature tag: an OCI image manifest whose digests kiln accepts.
fn parse_signature_manifest(
    reference: &Reference,
    bytes: &[u8],
) -> Result<OciImageManifest, Error> {
    let manifest: OciImageManifest = serde_json::from_slice(bytes).map_err(|e| Error::NotWasm {
        reference: reference.to_string(),
        found: format!("a signature tag that holds no image manifest ({e})"),
    })?;
    Ok(manifest)
}

/// Whether a loopback registry speaks TLS: sends a plain-HTTP `GET /v2/` and reads the status
/// line. A registry answers 200 or 401 (403, 404 from some); a TLS server answers 400 ("client
/// sent an HTTP request to an HTTPS server"), a TLS alert, or nothing. Anything unclear keeps
/// HTTPS, so a real error surfaces with the right protocol.
async fn speaks_tls(registry: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(registry).await.ok()?;
        let request = format!("GET /v2/ HTTP/1.1\r\nHost: {registry}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = Vec::new();
        let mut buf = [0u8; 256];
        while !head.contains(&b'\n') && head.len() < 1024 {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let line = String::from_utf8_lossy(&head);
        let status = line.strip_prefix("HTTP/1.")?.get(2..5)?.to_string();
        Some(matches!(status.as_str(), "200" | "401" | "403" | "404"))
    };
    match tokio::time::timeout(Duration::from_secs(5), probe).await {
        Ok(Some(plain)) => !plain,
        _ => true,
    }
}

/// The blob in 4 MiB pieces, the unit of upload progress.
fn pieces(data: &Bytes) -> Vec<Bytes> {
    const PIECE: usize = 4 * 1024 * 1024;
    (0..data.len())
        .step_by(PIECE)
        .map(|start| data.slice(start..start.saturating_add(PIECE).min(data.len())))
        .collect()
}

/// `sha256:0123456789ab` for messages.
fn short(digest: &str) -> &str {
    &digest[..digest.len().min(19)]
}

/// `: <first line of the body>` when the body says something, else nothing.
fn brief(message: &str) -> String {
    let line = message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if line.is_empty() {
        String::new()
    } else {
        format!(": {}", crate::bounds::printable(line))
    }
}

/// An error and its sources, `: `-joined (reqwest hides the cause in `source()`).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// The most of a token service's answer kiln reads: 64 KiB (a JWT is a few KiB).
const MAX_TOKEN_BODY: u64 = 64 * 1024;

/// The realm and service of a `Bearer` challenge in a `WWW-Authenticate` value (RFC 6750 §3,
/// parsed with `http-auth`), if it has one with a realm.
fn bearer_challenge(value: &str) -> Option<(String, Option<String>)> {
    http_auth::ChallengeParser::new(value)
        .filter_map(Result::ok)
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|c| {
            let param = |name: &str| {
                c.params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_unescaped())
            };
            Some((param("realm")?, param("service")))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(config_type: &str, digest: &str) -> Vec<u8> {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media_types::MANIFEST,
            "config": {"mediaType": config_type, "digest": format!("sha256:{}", "a".repeat(64)), "size": 2},
            "layers": [{"mediaType": media_types::WASM_LAYER, "digest": digest, "size": 1}],
        })
        .to_string()
        .into_bytes()
    }

    fn refused(bytes: &[u8]) -> String {
        let reference: Reference = "r.io/a/b:1".parse().unwrap();
        match parse_wasm_manifest(&reference, bytes) {
            Err(Error::NotWasm { found, .. }) => found,
            other => panic!("expected NotWasm, got {other:?}"),
        }
    }

    #[test]
    fn manifests_kiln_refuses() {
        let good = format!("sha256:{}", "b".repeat(64));
        let reference: Reference = "r.io/a/b:1".parse().unwrap();
        parse_wasm_manifest(&reference, &manifest(media_types::WASM_CONFIG, &good)).unwrap();
        // A digest that would name a path outside the cache.
        let found = refused(&manifest(
            media_types::WASM_CONFIG,
            "sha256:../../../etc/passwd",
        ));
        assert!(found.contains("a descriptor kiln refuses"), "{found}");
        // A container image.
        let found = refused(&manifest("application/vnd.oci.image.config.v1+json", &good));
        assert!(found.contains("(a container image)"), "{found}");
        // An image index.
        let index = serde_json::json!({"schemaVersion": 2, "manifests": []}).to_string();
        assert!(refused(index.as_bytes()).contains("an image index"));
        assert!(refused(b"<html>").contains("not JSON"));
    }

    #[test]
    fn pieces_cover_the_blob() {
        let data = Bytes::from(vec![7u8; 9 * 1024 * 1024 + 5]);
        let parts = pieces(&data);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), data.to_vec());
        assert!(pieces(&Bytes::new()).is_empty());
    }

    #[test]
    fn bearer_challenges_are_read_with_their_realm_and_service() {
        assert_eq!(
            super::bearer_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#
            ),
            Some((
                "https://auth.example/token".into(),
                Some("registry.example".into())
            ))
        );
        assert_eq!(
            super::bearer_challenge(r#"Basic realm="x", Bearer realm="https://t/token""#),
            Some(("https://t/token".into(), None))
        );
        assert_eq!(super::bearer_challenge(r#"Basic realm="registry""#), None);
        assert_eq!(super::bearer_challenge("Bearer service=\"no-realm\""), None);
        assert_eq!(super::bearer_challenge("\u{1b}[2J garbage"), None);
    }
}
