//! Push and pull over `oci_client`, with retries, verification and the cache.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::{Client, RegistryOperation};
use oci_wasm::WasmConfig;

use crate::artifact::sha256_digest;
use crate::{
    Artifact, BlobKind, Cache, Credential, Error, MAX_MANIFEST_SIZE, Progress, Reference,
    media_types,
};

/// How transient failures are retried: 5xx answers, 429 and dropped or refused
/// connections. Waits double from `initial_delay` up to `max_delay` between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt.
    pub initial_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, waiting 250 ms, 500 ms, then 1 s; a 429 waits at least 1 s.
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

/// The result of [`RegistryClient::pull`].
#[derive(Debug)]
pub struct Pulled {
    /// The manifest digest.
    pub digest: String,
    /// The component, in the cache (verified).
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

/// A client for one registry, with one credential.
pub struct RegistryClient {
    /// Made on first use: a pull served from the cache needs no connection at all.
    connection: tokio::sync::OnceCell<(Client, Scheme)>,
    registry: String,
    credential: Credential,
    options: ClientOptions,
}

/// A failed attempt: worth retrying or not.
enum Failure {
    Transient { message: String, at_least: Duration },
    Fatal(Error),
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
            options,
        }
    }

    /// The protocol in use, once a request has been made.
    pub fn scheme(&self) -> Option<Scheme> {
        self.connection.get().map(|(_, scheme)| *scheme)
    }

    /// The HTTP client, made on first use.
    async fn client(&self) -> Result<&Client, Error> {
        let (client, _) = self
            .connection
            .get_or_try_init(|| async {
                let plain = self.options.insecure
                    || (crate::is_loopback(&self.registry) && !speaks_tls(&self.registry).await);
                let scheme = if plain { Scheme::Http } else { Scheme::Https };
                Ok::<_, Error>((build_client(scheme, &self.options)?, scheme))
            })
            .await?;
        Ok(client)
    }

    /// Where the credential came from.
    pub fn credential(&self) -> &Credential {
        &self.credential
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
        let client = self.client().await?;
        let result = self
            .retry("checking the login", &crate::NoProgress, || async {
                client
                    .fetch_manifest_digest(probe.oci(), self.credential.auth())
                    .await
                    .map_err(|e| self.classify("checking the login", e))
            })
            .await;
        match result {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
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
        let client = self.client().await?;
        let mut uploaded = 0;
        for (kind, digest, data) in [
            (BlobKind::Layer, &artifact.layer_digest, &artifact.layer),
            (BlobKind::Config, &artifact.config_digest, &artifact.config),
        ] {
            progress.blob_started(kind, digest, data.len() as u64);
            let operation = format!("checking for blob {}", short(digest));
            let exists = self
                .retry(&operation, progress, || async {
                    client
                        .blob_exists(reference.oci(), digest)
                        .await
                        .map_err(|e| self.classify(&operation, e))
                })
                .await?;
            if exists {
                progress.blob_finished(digest, false);
                continue;
            }
            let operation = format!("pushing blob {}", short(digest));
            self.retry(&operation, progress, || async {
                let chunks = chunks(data.clone(), progress, digest);
                client
                    .push_blob_stream(reference.oci(), chunks, digest)
                    .await
                    .map_err(|e| self.classify(&operation, e))
            })
            .await?;
            uploaded += data.len() as u64;
            progress.blob_finished(digest, true);
        }
        let operation = format!("pushing the manifest to {reference}");
        let content_type = http::HeaderValue::from_static(media_types::MANIFEST);
        self.retry(&operation, progress, || async {
            client
                .push_manifest_raw(
                    reference.oci(),
                    artifact.manifest.clone(),
                    content_type.clone(),
                )
                .await
                .map_err(|e| self.classify(&operation, e))
        })
        .await?;
        uploaded += artifact.manifest.len() as u64;
        Ok(Pushed {
            reference: format!("{reference}@{}", artifact.manifest_digest),
            digest: artifact.manifest_digest.clone(),
            uploaded,
        })
    }

    /// Pulls the component at `reference` through the cache. A reference pinned to a digest
    /// whose content is cached makes no request at all; a tag is always resolved by the
    /// registry, then only what the cache lacks is downloaded.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::NotWasm`], [`Error::ManifestTooLarge`],
    /// [`Error::DigestMismatch`], [`Error::SizeMismatch`], [`Error::Unauthorized`],
    /// [`Error::RetriesExhausted`]. Nothing unverified is cached.
    pub async fn pull(
        &self,
        reference: &Reference,
        progress: &dyn Progress,
    ) -> Result<Pulled, Error> {
        let cache = &self.options.cache;
        let mut downloaded = 0;
        let cached = reference.digest().and_then(|d| {
            cache
                .read(d, None)
                .map(|bytes| (Bytes::from(bytes), d.to_string()))
        });
        let (manifest_bytes, digest, from_cache) = match cached {
            Some((bytes, digest)) => (bytes, digest, true),
            None => {
                self.authenticate(reference, RegistryOperation::Pull, progress)
                    .await?;
                let client = self.client().await?;
                let operation = format!("pulling the manifest of {reference}");
                let accepted = [
                    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
                    oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
                    oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
                    oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
                ];
                let (bytes, _) = self
                    .retry(&operation, progress, || async {
                        client
                            .pull_manifest_raw(reference.oci(), self.credential.auth(), &accepted)
                            .await
                            .map_err(|e| self.classify_pull(&operation, reference, e))
                    })
                    .await?;
                if bytes.len() as u64 > MAX_MANIFEST_SIZE {
                    return Err(Error::ManifestTooLarge {
                        reference: reference.to_string(),
                        size: bytes.len() as u64,
                        limit: MAX_MANIFEST_SIZE,
                    });
                }
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
                downloaded += bytes.len() as u64;
                (bytes, digest, false)
            }
        };
        let manifest = parse_wasm_manifest(reference, &manifest_bytes)?;
        let [layer] = manifest.layers.as_slice() else {
            unreachable!("parse_wasm_manifest checks for one layer")
        };
        let pinned = reference.with_digest(&digest);
        // A manifest from the cache means no authentication yet: the first blob the cache
        // lacks does it, so a fully cached pull never touches the network.
        let mut auth_pending = from_cache;
        let (config_path, n) = self
            .fetch_blob(
                &pinned,
                BlobKind::Config,
                &manifest.config,
                progress,
                &mut auth_pending,
            )
            .await?;
        downloaded += n;
        let config_bytes = fs_err::read(&config_path).map_err(|e| Error::Io {
            action: "cannot read",
            path: config_path.clone(),
            source: e,
        })?;
        let config = WasmConfig::try_from(config_bytes.as_slice()).map_err(|e| Error::NotWasm {
            reference: reference.to_string(),
            found: format!("a config blob that is not a Wasm config ({e})"),
        })?;
        let (component, n) = self
            .fetch_blob(&pinned, BlobKind::Layer, layer, progress, &mut auth_pending)
            .await?;
        downloaded += n;
        if !from_cache {
            cache.put("manifest", &digest, &manifest_bytes)?;
        }
        Ok(Pulled {
            digest,
            component,
            size: layer.size as u64,
            layer_digest: layer.digest.clone(),
            annotations: manifest.annotations.clone().unwrap_or_default(),
            config,
            downloaded,
        })
    }

    /// Fetches one blob into the cache unless it is there; returns its path and the bytes
    /// downloaded. Authenticates first when `auth_pending` (and clears it).
    async fn fetch_blob(
        &self,
        reference: &Reference,
        kind: BlobKind,
        descriptor: &OciDescriptor,
        progress: &dyn Progress,
        auth_pending: &mut bool,
    ) -> Result<(PathBuf, u64), Error> {
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
        progress.blob_started(kind, digest, size);
        if let Some(path) = cache.get(digest, Some(size)) {
            progress.blob_finished(digest, false);
            return Ok((path, 0));
        }
        if std::mem::take(auth_pending) {
            self.authenticate(reference, RegistryOperation::Pull, progress)
                .await?;
        }
        let client = self.client().await?;
        let operation = format!("pulling {what} {}", short(digest));
        let path = self
            .retry(&operation, progress, || async {
                let mut stream = client
                    .pull_blob_stream(reference.oci(), descriptor)
                    .await
                    .map_err(|e| self.classify(&operation, e))?;
                let mut writer = cache.writer(what, digest, size).map_err(Failure::Fatal)?;
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| stream_failure(what, digest, e))?;
                    writer.write(&chunk).map_err(Failure::Fatal)?;
                    progress.blob_advanced(digest, chunk.len() as u64);
                }
                writer.commit().map_err(Failure::Fatal)
            })
            .await?;
        progress.blob_finished(digest, true);
        Ok((path, size))
    }

    /// Authenticates for `operation` (a bearer-token exchange when the registry asks for one).
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
        let client = self.client().await?;
        self.retry(what, progress, || async {
            client
                .auth(reference.oci(), self.credential.auth(), operation)
                .await
                .map(|_| ())
                .map_err(|e| self.classify(what, e))
        })
        .await
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
                Err(Failure::Transient { message, at_least }) => {
                    if n >= attempts {
                        return Err(Error::RetriesExhausted {
                            operation: operation.to_string(),
                            attempts: n,
                            last: message,
                        });
                    }
                    let wait = delay.max(at_least).min(policy.max_delay);
                    progress.retrying(operation, n, wait, &message);
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(policy.max_delay);
                    n += 1;
                }
            }
        }
    }

    fn classify_pull(
        &self,
        operation: &str,
        reference: &Reference,
        error: OciDistributionError,
    ) -> Failure {
        match &error {
            OciDistributionError::ImageManifestNotFoundError(_) => {
                Failure::Fatal(Error::NotFound {
                    reference: reference.to_string(),
                })
            }
            _ => match self.classify(operation, error) {
                Failure::Fatal(Error::NotFound { .. }) => Failure::Fatal(Error::NotFound {
                    reference: reference.to_string(),
                }),
                other => other,
            },
        }
    }

    /// Sorts an `oci_client` error into retry-worthy or not, and into kiln's vocabulary.
    fn classify(&self, operation: &str, error: OciDistributionError) -> Failure {
        let unauthorized = || {
            Failure::Fatal(Error::Unauthorized {
                registry: self.registry.clone(),
                credentials: self.credential.source.to_string(),
                operation: operation.to_string(),
            })
        };
        let fatal = |message: String| {
            Failure::Fatal(Error::Registry {
                operation: operation.to_string(),
                message,
            })
        };
        match error {
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
            OciDistributionError::ServerError {
                code: 401 | 403, ..
            } => unauthorized(),
            OciDistributionError::ServerError { code: 404, url, .. } => {
                Failure::Fatal(Error::NotFound { reference: url })
            }
            OciDistributionError::ServerError { code, message, .. }
                if code == 429 || code >= 500 =>
            {
                Failure::Transient {
                    message: format!("HTTP {code}{}", brief(&message)),
                    at_least: if code == 429 {
                        Duration::from_secs(1)
                    } else {
                        Duration::ZERO
                    },
                }
            }
            OciDistributionError::ServerError { code, message, .. } => {
                fatal(format!("HTTP {code}{}", brief(&message)))
            }
            OciDistributionError::RegistryError { envelope, url } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let text = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{:?}: {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Toomanyrequests))
                {
                    Failure::Transient {
                        message: format!("HTTP 429 ({text})"),
                        at_least: Duration::from_secs(1),
                    }
                } else if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    unauthorized()
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::BlobUnknown
                            | OciErrorCode::NotFound
                    )
                }) {
                    Failure::Fatal(Error::NotFound { reference: url })
                } else {
                    fatal(text)
                }
            }
            OciDistributionError::RequestError(e) => {
                if e.status()
                    .is_some_and(|s| s.as_u16() == 401 || s.as_u16() == 403)
                {
                    return unauthorized();
                }
                let transient = e.is_connect()
                    || e.is_timeout()
                    || e.is_request()
                    || e.is_body()
                    || e.is_decode()
                    || e.status()
                        .is_some_and(|s| s.is_server_error() || s.as_u16() == 429);
                let message = error_chain(&e);
                if message.contains("certificate") {
                    return Failure::Fatal(Error::Certificate {
                        registry: self.registry.clone(),
                        message,
                    });
                }
                if transient {
                    Failure::Transient {
                        message,
                        at_least: Duration::ZERO,
                    }
                } else {
                    fatal(message)
                }
            }
            OciDistributionError::IoError(e) => Failure::Transient {
                message: e.to_string(),
                at_least: Duration::ZERO,
            },
            other => fatal(other.to_string()),
        }
    }
}

/// A stream error while downloading a blob: a digest mismatch found by oci-client's own
/// verification is final; anything else (a dropped connection) is worth another attempt.
fn stream_failure(what: &str, digest: &str, error: std::io::Error) -> Failure {
    if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) =
        error.get_ref().and_then(|e| e.downcast_ref())
    {
        return Failure::Fatal(Error::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual: actual.clone(),
        });
    }
    Failure::Transient {
        message: format!(
            "the download of {what} {} broke off: {}",
            short(digest),
            error_chain(&error)
        ),
        at_least: Duration::ZERO,
    }
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

fn build_client(scheme: Scheme, options: &ClientOptions) -> Result<Client, Error> {
    let root_certificates = options
        .root_certificates
        .iter()
        .map(|pem| oci_client::client::Certificate {
            encoding: oci_client::client::CertificateEncoding::Pem,
            data: pem.clone(),
        })
        .collect();
    let config = ClientConfig {
        protocol: match scheme {
            Scheme::Https => ClientProtocol::Https,
            Scheme::Http => ClientProtocol::Http,
        },
        extra_root_certificates: root_certificates,
        user_agent: USER_AGENT,
        connect_timeout: Some(Duration::from_secs(10)),
        read_timeout: Some(Duration::from_secs(60)),
        ..ClientConfig::default()
    };
    Client::try_from(config).map_err(|e| Error::Registry {
        operation: "setting up the HTTP client".into(),
        message: e.to_string(),
    })
}

/// The blob as a stream of 4 MiB chunks (oci-client's largest `PATCH`, so one request per
/// chunk), reporting each as it is taken for sending.
fn chunks<'a>(
    data: Bytes,
    progress: &'a dyn Progress,
    digest: &'a str,
) -> impl futures_util::Stream<Item = oci_client::errors::Result<Bytes>> + 'a {
    const CHUNK: usize = 4 * 1024 * 1024;
    let pieces: Vec<Bytes> = (0..data.len())
        .step_by(CHUNK)
        .map(|start| data.slice(start..(start + CHUNK).min(data.len())))
        .collect();
    futures_util::stream::iter(pieces).map(move |piece| {
        progress.blob_advanced(digest, piece.len() as u64);
        Ok(piece)
    })
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
        let cut: String = line.chars().take(200).collect();
        format!(": {cut}")
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

    #[tokio::test]
    async fn chunks_cover_the_blob_and_report_progress() {
        struct Count(std::sync::atomic::AtomicU64);
        impl Progress for Count {
            fn blob_advanced(&self, _: &str, bytes: u64) {
                self.0
                    .fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let data = Bytes::from(vec![7u8; 9 * 1024 * 1024 + 5]);
        let count = Count(0.into());
        let pieces: Vec<Bytes> = chunks(data.clone(), &count, "sha256:x")
            .map(|p| p.unwrap())
            .collect()
            .await;
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces.concat(), data.to_vec());
        assert_eq!(count.0.into_inner(), data.len() as u64);
    }
}
