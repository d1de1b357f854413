//! The one error type of the registry client.

use std::path::PathBuf;

/// Everything that can go wrong talking to a registry, packaging or caching an artifact.
///
/// Messages never contain secrets: credentials are named by their [`CredentialSource`]
/// (crate::CredentialSource), never shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reference, tag or digest is malformed; nothing was sent or read.
    #[error("invalid reference `{reference}`: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry refused our credentials (or asked for some and we had none).
    #[error("{registry} refused {credentials} when {operation}")]
    Unauthorized {
        /// `host[:port]` of the registry.
        registry: String,
        /// Which credentials were sent, e.g. "the credentials from KILN_REGISTRY_USERNAME".
        credentials: String,
        /// What we were doing.
        operation: String,
    },
    /// The registry's TLS certificate is not trusted (or not valid for its name).
    #[error("the TLS certificate of {registry} is not trusted: {message}")]
    Certificate {
        /// `host[:port]`.
        registry: String,
        /// The TLS library's reason.
        message: String,
    },
    /// The reference does not exist in the registry.
    #[error("{reference} was not found in the registry")]
    NotFound {
        /// The reference.
        reference: String,
    },
    /// A transient failure persisted through every attempt.
    #[error("{operation} failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// What we were doing, e.g. "pushing blob sha256:…".
        operation: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A registry request failed in a way retrying cannot fix.
    #[error("{operation} failed: {message}")]
    Registry {
        /// What we were doing.
        operation: String,
        /// The registry's or the transport's message.
        message: String,
    },
    /// Content did not hash to the digest it was fetched by.
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        /// "manifest", "config blob" or "layer".
        what: String,
        /// The digest we asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// Content was not the size its descriptor declared.
    #[error("{what} {digest} is not the declared size: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// "config blob" or "layer".
        what: String,
        /// Its digest.
        digest: String,
        /// Declared size in bytes.
        expected: u64,
        /// Received size in bytes (or more, when the transfer was cut off at the limit).
        actual: u64,
    },
    /// A manifest, config blob or error answer larger than kiln reads
    /// ([`crate::MAX_MANIFEST_SIZE`], [`crate::MAX_CONFIG_SIZE`]). Reading stopped at the limit.
    #[error("{what} is larger than kiln's limit of {limit} bytes ({detail})")]
    TooLarge {
        /// What, e.g. "the manifest of r.io/a/b:1" or "config blob sha256:0123…".
        what: String,
        /// The limit in bytes.
        limit: u64,
        /// How we know: "its descriptor declares 67108864 bytes", "its Content-Length is …",
        /// or "the download was cut off there".
        detail: String,
    },
    /// A blob the registry does not have, whose descriptor points to other servers
    /// (`urls`, "foreign" or non-distributable layers), which kiln does not contact unless
    /// told to ([`crate::ClientOptions::foreign_urls`]).
    #[error(
        "{what} {digest} is not in the registry, and kiln does not fetch it from the foreign URL \
         its manifest names ({url})"
    )]
    ForeignUrl {
        /// "config blob" or "layer".
        what: String,
        /// Its digest.
        digest: String,
        /// The first URL the descriptor names.
        url: String,
    },
    /// The registry holds something other than a Wasm component artifact.
    #[error("{reference} is not a Wasm component artifact: {found}")]
    NotWasm {
        /// The reference.
        reference: String,
        /// What was found instead, e.g. "an image index" or "a config of media type …".
        found: String,
    },
    /// The component could not be packaged (not a component, unreadable WIT).
    #[error("cannot package the component: {0}")]
    Package(String),
    /// A signing or verification key cannot be used (not PEM, not P-256, a wrong
    /// passphrase). Never holds the key or the passphrase.
    #[error("{0}")]
    Key(String),
    /// The artifact has no signature at all.
    #[error(
        "{reference} is not signed: there is no signature for {digest} (kiln looked for the \
         tag `{tag}`)"
    )]
    Unsigned {
        /// The reference pulled.
        reference: String,
        /// The manifest digest it resolved to.
        digest: String,
        /// The signature tag looked for (`sha256-<hex>.sig`).
        tag: String,
    },
    /// Signatures exist, but none verifies with the keys given.
    #[error(
        "{reference} is not signed by the key given: none of its {signatures} signature(s) \
         verifies with it (signed by another key)"
    )]
    SignedByAnotherKey {
        /// The reference pulled.
        reference: String,
        /// How many signatures were checked.
        signatures: usize,
    },
    /// A signature by a trusted key covers another manifest: the tag was moved after
    /// signing, or a signature was copied to this artifact.
    #[error(
        "the signature of {reference} is over another digest: the key signed {signed}, but \
         {reference} is {digest} (was the tag moved after signing?)"
    )]
    SignatureOverAnotherDigest {
        /// The reference pulled.
        reference: String,
        /// The manifest digest pulled.
        digest: String,
        /// The digest the signature covers.
        signed: String,
    },
    /// A signature by a trusted key over this digest names another repository.
    #[error("the signature of {reference} was made for another repository: it names `{signed}`")]
    SignedForAnotherRepository {
        /// The reference pulled.
        reference: String,
        /// The signed `docker-reference`.
        signed: String,
    },
    /// The credential store or Docker configuration could not be read or written.
    #[error("{0}")]
    Credentials(String),
    /// The fallback cache directory is not private to the user ([`crate::Cache::private_dir_in`]).
    #[error("refusing the registry cache `{}`: {reason}", path.display())]
    UnsafeCache {
        /// The directory.
        path: PathBuf,
        /// Why, e.g. "its mode is 777, open to other users".
        reason: String,
    },
    /// A file operation in the cache or the credential store failed.
    #[error("{action} `{}`: {source}", path.display())]
    Io {
        /// What we tried, e.g. "cannot write".
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
