//! Signatures of artifacts, stored and checked as cosign and containers/image (skopeo,
//! podman) store and check them, so that each tool verifies what the others sign.
//!
//! - **What is signed**: a *simple signing* payload (`application/vnd.dev.cosign.simplesigning.v1+json`)
//!   naming the manifest digest and the reference it was pushed to:
//!   `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":"sha256:…"},
//!   "type":"cosign container image signature"},"optional":{…}}`.
//! - **How**: ECDSA P-256 over SHA-256 of the payload bytes, ASN.1 DER, base64 (cosign's
//!   default key type). RFC 6979 nonces, so signing the same payload with the same key gives
//!   the same signature.
//! - **Where**: an OCI image manifest at the tag `sha256-<hex>.sig` in the artifact's
//!   repository (cosign's tag convention, which works on registries without the referrers
//!   API), one layer per signature: the payload blob, with the base64 signature in the
//!   `dev.cosignproject.cosign/signature` annotation. Signing again appends a layer, as
//!   skopeo does.
//! - **Keys**: private keys as PKCS#8 (`PRIVATE KEY`, what `openssl genpkey` writes) or SEC1
//!   (`EC PRIVATE KEY`) PEM, or cosign's encrypted format (`ENCRYPTED COSIGN PRIVATE KEY` or
//!   `ENCRYPTED SIGSTORE PRIVATE KEY`: a JSON envelope of scrypt parameters, a NaCl secretbox
//!   nonce and the sealed PKCS#8 key, from go-securesystemslib's `encrypted` package); public
//!   keys as SubjectPublicKeyInfo PEM (`PUBLIC KEY`).
//!
//! Secrets never appear in `Debug` output or errors; decrypted key bytes are zeroized.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::pkcs8::der::pem as pem_rfc7468;
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePrivateKey as _};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use serde::{Deserialize, Serialize};
/// Passphrases and decrypted keys are wiped from memory when dropped.
pub use zeroize::Zeroizing;

use crate::Error;

/// The media type of a simple signing payload (a signature layer).
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The PEM label of cosign's encrypted private keys, the one every cosign and skopeo reads
/// (kiln writes it).
pub const COSIGN_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
/// The PEM label newer cosign releases write for the same format (kiln reads it).
pub const SIGSTORE_PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The `critical.type` of a simple signing payload.
const SIGNATURE_TYPE: &str = "cosign container image signature";
/// The largest payload kiln reads: 64 KiB (a payload is a few hundred bytes).
pub const MAX_PAYLOAD_SIZE: u64 = 64 * 1024;
/// The most signature layers kiln checks in one signature manifest.
pub const MAX_SIGNATURES: usize = 64;

/// scrypt's cost in cosign's format: N = 2^15, r = 8, p = 1, the parameters every
/// go-securesystemslib release accepts (skopeo 1.9's accepts no other).
const SCRYPT_LOG_N: u8 = 15;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// The highest N kiln accepts when reading a key (2^17: 128 MiB of memory at r = 8), so a
/// tampered key file cannot make kiln allocate without bound.
const SCRYPT_MAX_LOG_N: u8 = 17;

/// The tag under which the signatures of `manifest_digest` live: `sha256-<hex>.sig`.
///
/// # Errors
///
/// [`Error::InvalidReference`] when `manifest_digest` is not `sha256:<64 hex>`.
pub fn signature_tag(manifest_digest: &str) -> Result<String, Error> {
    crate::reference::check_digest(manifest_digest).map_err(|reason| Error::InvalidReference {
        reference: manifest_digest.to_string(),
        reason,
    })?;
    Ok(format!("{}.sig", manifest_digest.replacen(':', "-", 1)))
}

/// An ECDSA P-256 private key. Its `Debug` shows only the public key's fingerprint.
pub struct SigningKey {
    key: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public_key().fingerprint())
    }
}

/// What a private key file is, before any passphrase is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// cosign's encrypted format: a passphrase is needed.
    Cosign,
    /// PKCS#8 `PRIVATE KEY` (unencrypted).
    Pkcs8,
    /// SEC1 `EC PRIVATE KEY` (unencrypted).
    Sec1,
}

impl SigningKey {
    /// A new random key (from the operating system's generator).
    pub fn generate() -> Self {
        Self {
            key: p256::ecdsa::SigningKey::random(&mut rand_core::OsRng),
        }
    }

    /// The format of the private key in `pem`, so the caller knows whether to ask for a
    /// passphrase.
    ///
    /// # Errors
    ///
    /// [`Error::Key`] when `pem` holds no private key kiln reads, saying what it holds.
    pub fn format_of(pem: &[u8]) -> Result<KeyFormat, Error> {
        let blocks = pem_blocks(pem)?;
        for (label, _) in &blocks {
            match label.as_str() {
                COSIGN_PRIVATE_KEY_LABEL | SIGSTORE_PRIVATE_KEY_LABEL => {
                    return Ok(KeyFormat::Cosign);
                }
                "PRIVATE KEY" => return Ok(KeyFormat::Pkcs8),
                "EC PRIVATE KEY" => return Ok(KeyFormat::Sec1),
                _ => {}
            }
        }
        Err(Error::Key(not_a_private_key(&blocks)))
    }

    /// Reads a private key from PEM: cosign's encrypted format (decrypted with the
    /// passphrase `passphrase` returns, called only for that format), PKCS#8 or SEC1.
    ///
    /// # Errors
    ///
    /// [`Error::Key`]: not PEM, not a private key, not P-256, a wrong passphrase, or the
    /// passphrase callback's own error.
    pub fn from_pem(
        pem: &[u8],
        passphrase: impl FnOnce() -> Result<Zeroizing<String>, Error>,
    ) -> Result<Self, Error> {
        let format = Self::format_of(pem)?;
        let blocks = pem_blocks(pem)?;
        let body = |labels: &[&str]| {
            blocks
                .iter()
                .find(|(label, _)| labels.contains(&label.as_str()))
                .map(|(_, der)| der)
                .ok_or_else(|| Error::Key("no private key in the file".into()))
        };
        let secret = match format {
            KeyFormat::Cosign => {
                let envelope = body(&[COSIGN_PRIVATE_KEY_LABEL, SIGSTORE_PRIVATE_KEY_LABEL])?;
                let passphrase = passphrase()?;
                let der = decrypt(envelope, passphrase.as_bytes())?;
                p256::SecretKey::from_pkcs8_der(&der).map_err(|e| not_p256(&e.to_string()))?
            }
            KeyFormat::Pkcs8 => p256::SecretKey::from_pkcs8_der(body(&["PRIVATE KEY"])?)
                .map_err(|e| not_p256(&e.to_string()))?,
            KeyFormat::Sec1 => p256::SecretKey::from_sec1_der(body(&["EC PRIVATE KEY"])?)
                .map_err(|e| not_p256(&e.to_string()))?,
        };
        Ok(Self {
            key: p256::ecdsa::SigningKey::from(secret),
        })
    }

    /// The key in cosign's encrypted format, sealed with `passphrase` (an empty one is
    /// allowed, as cosign allows it): PEM labelled [`COSIGN_PRIVATE_KEY_LABEL`].
    ///
    /// # Errors
    ///
    /// [`Error::Key`] if encoding fails (it does not with a valid key).
    pub fn to_cosign_pem(&self, passphrase: &[u8]) -> Result<Zeroizing<String>, Error> {
        let der = self
            .key
            .to_pkcs8_der()
            .map_err(|e| Error::Key(format!("cannot encode the key: {e}")))?;
        let envelope = encrypt(der.as_bytes(), passphrase)?;
        pem_rfc7468::encode_string(COSIGN_PRIVATE_KEY_LABEL, LineEnding::LF, &envelope)
            .map(Zeroizing::new)
            .map_err(|e| Error::Key(format!("cannot encode the key: {e}")))
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: *self.key.verifying_key(),
        }
    }

    /// Signs `payload`: ECDSA P-256 with SHA-256, ASN.1 DER, base64.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature: p256::ecdsa::Signature = self.key.sign(payload);
        BASE64.encode(signature.to_der().as_bytes())
    }
}

/// An ECDSA P-256 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: p256::ecdsa::VerifyingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PublicKey {
    /// Reads a `PUBLIC KEY` (SubjectPublicKeyInfo) PEM, what `cosign generate-key-pair`,
    /// `kiln generate-key-pair` and `openssl pkey -pubout` write.
    ///
    /// # Errors
    ///
    /// [`Error::Key`]: not PEM, a private key, or not P-256.
    pub fn from_pem(pem: &[u8]) -> Result<Self, Error> {
        let blocks = pem_blocks(pem)?;
        let Some((_, der)) = blocks.iter().find(|(label, _)| label == "PUBLIC KEY") else {
            let private = blocks
                .iter()
                .any(|(label, _)| label.contains("PRIVATE KEY"));
            return Err(Error::Key(if private {
                "this is a private key; verifying takes the public key (the `.pub` file)".into()
            } else {
                format!(
                    "no `PUBLIC KEY` in the file (found {})",
                    labels(&blocks).unwrap_or_else(|| "no PEM block".into())
                )
            }));
        };
        let key =
            p256::PublicKey::from_public_key_der(der).map_err(|e| not_p256(&e.to_string()))?;
        Ok(Self { key: key.into() })
    }

    /// The key as `PUBLIC KEY` PEM.
    pub fn to_pem(&self) -> String {
        p256::PublicKey::from(self.key)
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// `sha256:<hex>` of the key's SubjectPublicKeyInfo DER: how kiln names a key.
    pub fn fingerprint(&self) -> String {
        let der = p256::PublicKey::from(self.key)
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        crate::artifact::sha256_digest(&der)
    }

    /// Whether `signature` (base64 of ASN.1 DER) is this key's signature of `payload`.
    pub fn verify(&self, payload: &[u8], signature: &str) -> bool {
        let Ok(der) = BASE64.decode(signature.trim()) else {
            return false;
        };
        let Ok(signature) = p256::ecdsa::Signature::from_der(&der) else {
            return false;
        };
        self.key.verify(payload, &signature).is_ok()
    }
}

/// A simple signing payload: what a signature says about an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// `critical.image.docker-manifest-digest`: the manifest signed.
    pub manifest_digest: String,
    /// `critical.identity.docker-reference`: where it was signed for (cosign writes the
    /// repository, skopeo and kiln the repository and tag).
    pub docker_reference: String,
    /// `optional.creator`, when present.
    pub creator: Option<String>,
}

impl Payload {
    /// The payload kiln signs for `manifest_digest` pushed to `docker_reference`.
    pub fn new(manifest_digest: &str, docker_reference: &str) -> Self {
        Self {
            manifest_digest: manifest_digest.to_string(),
            docker_reference: docker_reference.to_string(),
            creator: Some(concat!("kiln ", env!("CARGO_PKG_VERSION")).to_string()),
        }
    }

    /// The payload's bytes: compact JSON with keys in order, no timestamp, so the same
    /// artifact signed by the same key gives the same signature layer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut optional = serde_json::Map::new();
        if let Some(creator) = &self.creator {
            optional.insert("creator".into(), creator.clone().into());
        }
        serde_json::to_vec(&serde_json::json!({
            "critical": {
                "identity": {"docker-reference": self.docker_reference},
                "image": {"docker-manifest-digest": self.manifest_digest},
                "type": SIGNATURE_TYPE,
            },
            "optional": optional,
        }))
        .unwrap_or_default()
    }

    /// Reads a payload as containers/image does: `critical` must hold exactly `type`,
    /// `image` and `identity`, `type` must be cosign's, `image` exactly
    /// `docker-manifest-digest`, `identity` exactly `docker-reference`; `optional` may be
    /// `null` (cosign) or an object.
    ///
    /// # Errors
    ///
    /// What is wrong, as a sentence.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("the payload is not JSON ({e})"))?;
        let object = |v: &serde_json::Value, what: &str, fields: &[&str]| {
            let map = v
                .as_object()
                .ok_or_else(|| format!("`{what}` is not an object"))?
                .clone();
            let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
            keys.sort_unstable();
            let mut wanted = fields.to_vec();
            wanted.sort_unstable();
            if keys != wanted {
                return Err(format!(
                    "`{what}` has the fields {keys:?}, where a signature payload has {wanted:?}"
                ));
            }
            Ok(map)
        };
        let top = object(&value, "payload", &["critical", "optional"])?;
        let critical = object(&top["critical"], "critical", &["identity", "image", "type"])?;
        if critical["type"] != SIGNATURE_TYPE {
            return Err(format!(
                "the payload's type is {}, not `{SIGNATURE_TYPE}`",
                critical["type"]
            ));
        }
        let image = object(
            &critical["image"],
            "critical.image",
            &["docker-manifest-digest"],
        )?;
        let identity = object(
            &critical["identity"],
            "critical.identity",
            &["docker-reference"],
        )?;
        let text = |v: &serde_json::Value, what: &str| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("`{what}` is not a string"))
        };
        let manifest_digest = text(&image["docker-manifest-digest"], "docker-manifest-digest")?;
        let docker_reference = text(&identity["docker-reference"], "docker-reference")?;
        let creator = match &top["optional"] {
            serde_json::Value::Null => None,
            serde_json::Value::Object(optional) => optional
                .get("creator")
                .and_then(|c| c.as_str())
                .map(str::to_string),
            _ => return Err("`optional` is neither null nor an object".into()),
        };
        Ok(Self {
            manifest_digest,
            docker_reference,
            creator,
        })
    }
}

/// One signature as stored: a payload and its base64 signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSignature {
    /// The payload's bytes, base64 (as in kiln's cache record).
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// The base64 ASN.1 DER signature (the annotation's value).
    pub signature: String,
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::BASE64.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::BASE64.decode(text).map_err(serde::de::Error::custom)
    }
}

/// What a verification established.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The manifest digest the signature covers (the one pulled).
    pub manifest_digest: String,
    /// The fingerprint of the key that verified it ([`PublicKey::fingerprint`]).
    pub key: String,
    /// Which of the keys given verified it (its index).
    pub key_index: usize,
    /// The signed `docker-reference`.
    pub docker_reference: String,
    /// Who made the signature, when the payload says (`optional.creator`).
    pub creator: Option<String>,
    /// Whether the check used the signature kept in kiln's cache (verified again, with no
    /// request), rather than one fetched from the registry.
    pub from_cache: bool,
}

/// Why the signatures found do not make an artifact acceptable, from the best to the worst
/// candidate; checked by [`judge`].
pub(crate) enum Rejection {
    /// A signature by one of the keys, but over another manifest.
    Digest { signed: String },
    /// A signature by one of the keys over this digest, for another repository.
    Repository { signed: String },
    /// No signature verifies with the keys.
    Key,
}

/// Checks one stored signature against `keys`, the manifest `digest` and the repository
/// `registry/repository` it was pulled from.
pub(crate) fn judge(
    signature: &StoredSignature,
    keys: &[PublicKey],
    digest: &str,
    registry: &str,
    repository: &str,
) -> Result<Verified, Rejection> {
    let Some(key_index) = keys
        .iter()
        .position(|k| k.verify(&signature.payload, &signature.signature))
    else {
        return Err(Rejection::Key);
    };
    // Signed by a trusted key, so the payload is now worth reading.
    let Ok(payload) = Payload::parse(&signature.payload) else {
        return Err(Rejection::Key);
    };
    if payload.manifest_digest != digest {
        return Err(Rejection::Digest {
            signed: payload.manifest_digest,
        });
    }
    let same_repository =
        crate::Reference::parse_with_default_tag(&payload.docker_reference, "latest")
            .is_ok_and(|signed| signed.registry() == registry && signed.repository() == repository);
    if !same_repository {
        return Err(Rejection::Repository {
            signed: payload.docker_reference,
        });
    }
    Ok(Verified {
        manifest_digest: payload.manifest_digest,
        key: keys[key_index].fingerprint(),
        key_index,
        docker_reference: payload.docker_reference,
        creator: payload.creator,
        from_cache: false,
    })
}

/// The PEM blocks of `text`, label and body, in order. Text outside blocks is ignored (as
/// Go's `pem.Decode` and OpenSSL do); a block that does not decode is an error.
/// PEM blocks: label and decoded body.
type Blocks = Vec<(String, Zeroizing<Vec<u8>>)>;

fn pem_blocks(text: &[u8]) -> Result<Blocks, Error> {
    let text =
        std::str::from_utf8(text).map_err(|_| Error::Key("the key file is not PEM text".into()))?;
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let label_end = block[11..]
            .find("-----")
            .ok_or_else(|| Error::Key("a PEM block with no end to its BEGIN line".into()))?;
        let label = &block[11..11 + label_end];
        let end_line = format!("-----END {label}-----");
        let end = block
            .find(&end_line)
            .ok_or_else(|| Error::Key(format!("the PEM block `{label}` has no END line")))?;
        let whole = &block[..end + end_line.len()];
        let (_, body) = pem_rfc7468::decode_vec(whole.as_bytes())
            .map_err(|e| Error::Key(format!("the PEM block `{label}` does not decode ({e})")))?;
        blocks.push((label.to_string(), Zeroizing::new(body)));
        rest = &block[end + end_line.len()..];
    }
    if blocks.is_empty() {
        return Err(Error::Key("the key file holds no PEM block".into()));
    }
    Ok(blocks)
}

fn labels(blocks: &Blocks) -> Option<String> {
    (!blocks.is_empty()).then(|| {
        blocks
            .iter()
            .map(|(l, _)| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

fn not_a_private_key(blocks: &Blocks) -> String {
    if blocks.iter().any(|(l, _)| l == "ENCRYPTED PRIVATE KEY") {
        return "an encrypted PKCS#8 key (`ENCRYPTED PRIVATE KEY`), which kiln does not read: \
                decrypt it (`openssl pkey -in KEY -out plain.key`) or use cosign's format \
                (`kiln generate-key-pair`)"
            .into();
    }
    if blocks.iter().any(|(l, _)| l == "PUBLIC KEY") {
        return "this is a public key; signing takes the private key (the `.key` file)".into();
    }
    format!(
        "no private key in the file (found {}); kiln reads `PRIVATE KEY` (PKCS#8), `EC PRIVATE \
         KEY` (SEC1) and cosign's `{COSIGN_PRIVATE_KEY_LABEL}`",
        labels(blocks).unwrap_or_default()
    )
}

fn not_p256(detail: &str) -> Error {
    Error::Key(format!(
        "not an ECDSA P-256 key, the kind cosign and kiln sign with ({detail})"
    ))
}

/// cosign's (go-securesystemslib's) encrypted envelope.
#[derive(Serialize, Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

fn scrypt_key(
    passphrase: &[u8],
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, Error> {
    let params = scrypt::Params::new(log_n, r, p, 32)
        .map_err(|e| Error::Key(format!("the key's scrypt parameters are invalid ({e})")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase, salt, &params, key.as_mut())
        .map_err(|e| Error::Key(format!("scrypt failed ({e})")))?;
    Ok(key)
}

fn encrypt(plaintext: &[u8], passphrase: &[u8]) -> Result<Vec<u8>, Error> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    use rand_core::RngCore;
    let mut salt = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut salt);
    let key = scrypt_key(passphrase, &salt, SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_ref().into());
    let mut nonce = [0u8; 24];
    rand_core::OsRng.fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(&nonce.into(), plaintext)
        .map_err(|_| Error::Key("cannot seal the key".into()))?;
    let envelope = Envelope {
        kdf: Kdf {
            name: "scrypt".into(),
            params: KdfParams {
                n: 1 << SCRYPT_LOG_N,
                r: SCRYPT_R,
                p: SCRYPT_P,
            },
            salt: BASE64.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: BASE64.encode(nonce),
        },
        ciphertext: BASE64.encode(sealed),
    };
    serde_json::to_vec(&envelope).map_err(|e| Error::Key(format!("cannot encode the key: {e}")))
}

fn decrypt(envelope: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let bad = |what: &str| Error::Key(format!("the encrypted key is malformed: {what}"));
    let envelope: Envelope =
        serde_json::from_slice(envelope).map_err(|e| bad(&format!("not cosign's JSON ({e})")))?;
    if envelope.kdf.name != "scrypt" {
        return Err(bad(&format!(
            "unknown key derivation `{}`",
            envelope.kdf.name
        )));
    }
    if envelope.cipher.name != "nacl/secretbox" {
        return Err(bad(&format!("unknown cipher `{}`", envelope.cipher.name)));
    }
    let KdfParams { n, r, p } = envelope.kdf.params;
    if !n.is_power_of_two()
        || !(2..=1 << SCRYPT_MAX_LOG_N).contains(&n)
        || r != SCRYPT_R
        || p != SCRYPT_P
    {
        return Err(bad(&format!(
            "scrypt parameters N={n}, r={r}, p={p} (kiln accepts N up to 2^{SCRYPT_MAX_LOG_N}, r=8, p=1)"
        )));
    }
    let salt = BASE64
        .decode(&envelope.kdf.salt)
        .map_err(|_| bad("the salt is not base64"))?;
    let nonce = BASE64
        .decode(&envelope.cipher.nonce)
        .map_err(|_| bad("the nonce is not base64"))?;
    if nonce.len() != 24 {
        return Err(bad("the nonce is not 24 bytes"));
    }
    let sealed = BASE64
        .decode(&envelope.ciphertext)
        .map_err(|_| bad("the ciphertext is not base64"))?;
    let key = scrypt_key(passphrase, &salt, n.trailing_zeros() as u8, r, p)?;
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt(nonce.as_slice().into(), sealed.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| {
            Error::Key("the passphrase is wrong (the key does not decrypt with it)".into())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_passphrase() -> Result<Zeroizing<String>, Error> {
        panic!("no passphrase should be asked for")
    }

    #[test]
    fn cosign_format_round_trips_and_refuses_a_wrong_passphrase() {
        let key = SigningKey::generate();
        let pem = key.to_cosign_pem(b"correct horse").unwrap();
        assert!(pem.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"));
        assert!(!pem.contains("correct horse"));
        assert_eq!(
            SigningKey::format_of(pem.as_bytes()).unwrap(),
            KeyFormat::Cosign
        );
        let back = SigningKey::from_pem(pem.as_bytes(), || {
            Ok(Zeroizing::new("correct horse".into()))
        })
        .unwrap();
        assert_eq!(back.public_key(), key.public_key());
        let err = SigningKey::from_pem(pem.as_bytes(), || Ok(Zeroizing::new("wrong".into())))
            .unwrap_err();
        assert!(err.to_string().contains("passphrase is wrong"), "{err}");
        assert!(!err.to_string().contains("wrong\""), "{err}");
        // The envelope is the JSON go-securesystemslib reads.
        let (label, body) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
        assert_eq!(label, COSIGN_PRIVATE_KEY_LABEL);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["kdf"]["name"], "scrypt");
        assert_eq!(json["kdf"]["params"]["N"], 32768);
        assert_eq!(json["kdf"]["params"]["r"], 8);
        assert_eq!(json["kdf"]["params"]["p"], 1);
        assert_eq!(
            BASE64
                .decode(json["kdf"]["salt"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        assert_eq!(
            BASE64
                .decode(json["cipher"]["nonce"].as_str().unwrap())
                .unwrap()
                .len(),
            24
        );
    }

    #[test]
    fn a_tampered_cost_is_refused_before_scrypt_runs() {
        let key = SigningKey::generate();
        let pem = key.to_cosign_pem(b"").unwrap();
        let (_, body) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        json["kdf"]["params"]["N"] = serde_json::json!(1u64 << 30);
        let body = serde_json::to_vec(&json).unwrap();
        let pem =
            pem_rfc7468::encode_string(COSIGN_PRIVATE_KEY_LABEL, LineEnding::LF, &body).unwrap();
        let err =
            SigningKey::from_pem(pem.as_bytes(), || Ok(Zeroizing::new(String::new()))).unwrap_err();
        assert!(err.to_string().contains("scrypt parameters"), "{err}");
    }

    #[test]
    fn pkcs8_and_sec1_keys_need_no_passphrase() {
        let key = SigningKey::generate();
        let pkcs8 = key.key.to_pkcs8_pem(LineEnding::LF).unwrap();
        let back = SigningKey::from_pem(pkcs8.as_bytes(), no_passphrase).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        // `openssl ecparam -genkey` writes the parameters first, then the SEC1 key.
        let secret = p256::SecretKey::from(key.key.clone());
        let sec1 = secret.to_sec1_pem(LineEnding::LF).unwrap();
        let text = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
            sec1.as_str()
        );
        let back = SigningKey::from_pem(text.as_bytes(), no_passphrase).unwrap();
        assert_eq!(back.public_key(), key.public_key());
        // Public keys are refused as private keys and the other way round.
        let public = key.public_key().to_pem();
        let err = SigningKey::from_pem(public.as_bytes(), no_passphrase).unwrap_err();
        assert!(err.to_string().contains("this is a public key"), "{err}");
        let err = PublicKey::from_pem(pkcs8.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("this is a private key"), "{err}");
        assert_eq!(
            PublicKey::from_pem(public.as_bytes()).unwrap(),
            key.public_key()
        );
        let err = PublicKey::from_pem(b"hello").unwrap_err();
        assert!(err.to_string().contains("no PEM block"), "{err}");
    }

    #[test]
    fn signatures_verify_with_the_key_only_and_high_s_is_accepted() {
        let key = SigningKey::generate();
        let payload = Payload::new(&format!("sha256:{}", "a".repeat(64)), "r.io/a/b:1").to_bytes();
        let signature = key.sign(&payload);
        assert!(key.public_key().verify(&payload, &signature));
        assert!(!key.public_key().verify(b"other", &signature));
        assert!(
            !SigningKey::generate()
                .public_key()
                .verify(&payload, &signature)
        );
        assert!(!key.public_key().verify(&payload, "not base64!"));
        // Go's crypto/ecdsa does not normalize s; both forms must verify.
        let der = BASE64.decode(&signature).unwrap();
        let parsed = p256::ecdsa::Signature::from_der(&der).unwrap();
        let (r, s) = parsed.split_scalars();
        let flipped = p256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
        let flipped = BASE64.encode(flipped.to_der().as_bytes());
        assert_ne!(flipped, signature);
        assert!(key.public_key().verify(&payload, &flipped));
    }

    #[test]
    fn payloads_parse_as_containers_image_reads_them() {
        let digest = format!("sha256:{}", "b".repeat(64));
        let payload = Payload::new(&digest, "r.io/a/b:1");
        let bytes = payload.to_bytes();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"r.io/a/b:1"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":{{"creator":"kiln {}"}}}}"#,
                env!("CARGO_PKG_VERSION")
            )
        );
        assert_eq!(Payload::parse(&bytes).unwrap(), payload);
        // cosign writes `"optional": null`.
        let cosign = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"r.io/a/b"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        );
        let parsed = Payload::parse(cosign.as_bytes()).unwrap();
        assert_eq!(parsed.docker_reference, "r.io/a/b");
        assert_eq!(parsed.creator, None);
        // An extra critical field is refused, as containers/image refuses it.
        let extra = cosign.replace(r#""type":"#, r#""extra":1,"type":"#);
        assert!(Payload::parse(extra.as_bytes()).is_err());
        let wrong_type = cosign.replace("cosign container image signature", "atomic");
        assert!(Payload::parse(wrong_type.as_bytes()).is_err());
    }

    #[test]
    fn judging_names_the_reason() {
        let key = SigningKey::generate();
        let digest = format!("sha256:{}", "c".repeat(64));
        let other = format!("sha256:{}", "d".repeat(64));
        let stored = |digest: &str, reference: &str, key: &SigningKey| {
            let payload = Payload::new(digest, reference).to_bytes();
            StoredSignature {
                signature: key.sign(&payload),
                payload,
            }
        };
        let keys = [key.public_key()];
        let ok = judge(
            &stored(&digest, "r.io/a/b:1", &key),
            &keys,
            &digest,
            "r.io",
            "a/b",
        );
        assert!(matches!(ok, Ok(Verified { key_index: 0, .. })));
        // cosign's repository-only identity is accepted.
        assert!(
            judge(
                &stored(&digest, "r.io/a/b", &key),
                &keys,
                &digest,
                "r.io",
                "a/b"
            )
            .is_ok()
        );
        assert!(matches!(
            judge(
                &stored(&other, "r.io/a/b:1", &key),
                &keys,
                &digest,
                "r.io",
                "a/b"
            ),
            Err(Rejection::Digest { .. })
        ));
        assert!(matches!(
            judge(
                &stored(&digest, "r.io/a/c:1", &key),
                &keys,
                &digest,
                "r.io",
                "a/b"
            ),
            Err(Rejection::Repository { .. })
        ));
        assert!(matches!(
            judge(
                &stored(&digest, "r.io/a/b:1", &SigningKey::generate()),
                &keys,
                &digest,
                "r.io",
                "a/b"
            ),
            Err(Rejection::Key)
        ));
        assert_eq!(
            signature_tag(&digest).unwrap(),
            format!("sha256-{}.sig", "c".repeat(64))
        );
        assert!(signature_tag("sha256:../x").is_err());
    }
}
