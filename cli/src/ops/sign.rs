//! Signing and verification: `kiln generate-key-pair`, `kiln publish --sign KEY`, and
//! `kiln pull|run|serve --verify KEY` (or a verification policy in kiln's configuration).
//!
//! The formats are cosign's and containers/image's (see `kiln_registry_client::signature`),
//! so skopeo and cosign verify what kiln signs, and kiln verifies what they sign.

use std::path::{Path, PathBuf};

use anyhow::Context;
use kiln_registry_client::signature::Zeroizing;
use kiln_registry_client::{PublicKey, Pulled, Reference, RegistryClient, SigningKey, Verified};

use crate::env_vars;
use crate::errors::hinted;
use crate::ops::registry::{self, RegistryArgs, ShellProgress};
use crate::shell::{Shell, human_size};

/// `--verify KEY` for the commands that pull (`pull`, `run`, `serve`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VerifyArgs {
    /// Refuse the component unless it carries a signature by this public key (a `.pub`
    /// PEM, as `kiln generate-key-pair`, `cosign generate-key-pair` or `openssl pkey
    /// -pubout` write) over the digest pulled; repeatable (any one key suffices). Without
    /// it, kiln's verification policy (`policy.toml` in its configuration directory) decides.
    #[arg(long = "verify", value_name = "KEY")]
    pub keys: Vec<PathBuf>,
}

/// The name of the verification policy in kiln's configuration directory.
pub const POLICY_FILE: &str = "policy.toml";

/// `policy.toml`: which keys must have signed what is pulled from where.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    #[serde(default)]
    verify: Vec<PolicyRule>,
}

/// One `[[verify]]` rule.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRule {
    /// `registry[/repository…]`: the rule covers references under it.
    prefix: String,
    /// Public keys, relative to the policy file; any one suffices.
    keys: Vec<PathBuf>,
}

/// The keys a pull of `reference` must verify with: `--verify`'s, else those of the longest
/// matching `[[verify]]` prefix of kiln's policy, else none. Each comes with its path, for
/// messages.
///
/// # Errors
///
/// An unreadable key or policy, a policy rule without keys.
pub fn keys_for(
    reference: &Reference,
    args: &VerifyArgs,
) -> anyhow::Result<Vec<(PathBuf, PublicKey)>> {
    if !args.keys.is_empty() {
        return args.keys.iter().map(|p| read_public_key(p)).collect();
    }
    let Some(path) = env_vars::config_dir().map(|d| d.join(POLICY_FILE)) else {
        return Ok(Vec::new());
    };
    let text = match fs_err::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let policy: Policy = toml::from_str(&text)
        .with_context(|| format!("cannot read the verification policy `{}`", path.display()))?;
    let repository = format!("{}/{}", reference.registry(), reference.repository());
    let rule = policy
        .verify
        .iter()
        .filter(|rule| covers(&rule.prefix, &repository))
        .max_by_key(|rule| rule.prefix.trim_end_matches('/').len());
    let Some(rule) = rule else {
        return Ok(Vec::new());
    };
    if rule.keys.is_empty() {
        anyhow::bail!(
            "the rule for `{}` in `{}` names no keys",
            rule.prefix,
            path.display()
        );
    }
    let base = path.parent().unwrap_or(Path::new("."));
    rule.keys
        .iter()
        .map(|key| read_public_key(&base.join(key)))
        .collect()
}

/// Whether `prefix` covers `repository` (`registry/path`) at a path boundary: `r.io/acme`
/// covers `r.io/acme/app` but not `r.io/acme-evil/app`.
fn covers(prefix: &str, repository: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    !prefix.is_empty()
        && repository
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Reads a public key.
///
/// # Errors
///
/// The file cannot be read or holds no P-256 public key.
pub fn read_public_key(path: &Path) -> anyhow::Result<(PathBuf, PublicKey)> {
    let pem = fs_err::read(path).context("cannot read the verification key")?;
    let key = PublicKey::from_pem(&pem)
        .with_context(|| format!("cannot use `{}` as a verification key", path.display()))?;
    Ok((path.to_path_buf(), key))
}

/// The passphrase of a cosign-format key: `KILN_KEY_PASSWORD` when set (even empty, as
/// cosign treats `COSIGN_PASSWORD`), else a prompt on a terminal (twice when `confirm`).
///
/// # Errors
///
/// No variable and no terminal; the two entries differ.
pub fn passphrase(prompt: &str, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    if let Some(value) = env_vars::key_password() {
        return Ok(Zeroizing::new(value));
    }
    if !registry::stdin_is_terminal() {
        return Err(hinted(
            "the key's passphrase is needed, and there is no terminal to ask it on",
            format!("set {}", env_vars::KILN_KEY_PASSWORD),
        ));
    }
    let first =
        Zeroizing::new(rpassword::prompt_password(prompt).context("cannot read the passphrase")?);
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("Enter it again: ").context("cannot read the passphrase")?,
        );
        if *again != *first {
            anyhow::bail!("the two passphrases differ");
        }
    }
    Ok(first)
}

/// Reads a private key: cosign's encrypted format (asking for its passphrase), or an
/// unencrypted PKCS#8 or SEC1 PEM.
///
/// # Errors
///
/// The file cannot be read; it is not a P-256 private key; the passphrase is wrong.
pub fn read_signing_key(path: &Path) -> anyhow::Result<SigningKey> {
    let pem = Zeroizing::new(fs_err::read(path).context("cannot read the signing key")?);
    let prompt = format!("Passphrase of `{}`: ", path.display());
    SigningKey::from_pem(&pem, || {
        passphrase(&prompt, false).map_err(|e| kiln_registry_client::Error::Key(format!("{e:#}")))
    })
    .with_context(|| format!("cannot use `{}` as a signing key", path.display()))
}

/// Signs what was just pushed to `reference` (manifest `digest`) and stores the signature
/// beside it; reports it with a `Signed` status.
///
/// # Errors
///
/// The registry's.
pub async fn sign_pushed(
    shell: &Shell,
    client: &RegistryClient,
    reference: &Reference,
    digest: &str,
    key: &SigningKey,
    key_path: &Path,
    progress: &ShellProgress<'_>,
) -> anyhow::Result<kiln_registry_client::SignaturePushed> {
    let signed = client
        .sign(reference, digest, key, progress)
        .await
        .map_err(registry::explain)
        .with_context(|| format!("cannot store the signature of {reference}"))?;
    let note = if signed.already_there {
        ", already there"
    } else {
        ""
    };
    shell.status(
        "Signed",
        format_args!(
            "{reference} with `{}` ({}{note})",
            key_path.display(),
            short_key(&key.public_key())
        ),
    );
    shell.verbose_status("Signature", &signed.reference);
    Ok(signed)
}

/// Pulls `reference`, verified against `--verify`'s keys or the policy's when there are any
/// (then with a `Verified` status), as [`crate::ops::pull::fetch`] otherwise.
///
/// # Errors
///
/// The refusals (unsigned, another key, another digest, another repository) and every
/// error of a pull.
pub fn fetch(
    shell: &Shell,
    reference: &Reference,
    args: &RegistryArgs,
    verify: &VerifyArgs,
) -> anyhow::Result<(Pulled, Option<Verified>)> {
    let keys = keys_for(reference, verify)?;
    if keys.is_empty() {
        return crate::ops::pull::fetch(shell, reference, args).map(|p| (p, None));
    }
    let public: Vec<PublicKey> = keys.iter().map(|(_, k)| k.clone()).collect();
    let credential = registry::resolve_credential(reference.registry(), args)?;
    let tokio = registry::tokio()?;
    let (pulled, verified) = tokio.block_on(async {
        let client = registry::client(reference, credential, args.insecure)?;
        let progress = ShellProgress {
            shell,
            verb: "Pulling",
        };
        let pulled = client.pull_verified(reference, &public, &progress).await;
        registry::report_connection(shell, &client, reference.registry());
        pulled.map_err(|e| refusal(e, reference, &keys))
    })?;
    let how = if pulled.downloaded == 0 {
        "from the cache".to_string()
    } else {
        format!("{} downloaded", human_size(pulled.downloaded))
    };
    shell.status(
        "Pulled",
        format_args!("{reference} ({}, {how})", human_size(pulled.size)),
    );
    let (path, _) = &keys[verified.key_index];
    let cached = if verified.from_cache {
        ", checked again from the cache"
    } else {
        ""
    };
    shell.status(
        "Verified",
        format_args!(
            "{} signed by `{}` ({}{cached})",
            pulled.digest,
            path.display(),
            short_key(&keys[verified.key_index].1)
        ),
    );
    shell.verbose_status("Signed for", &verified.docker_reference);
    Ok((pulled, Some(verified)))
}

/// A failed verified pull for the user: a refusal names the reference and the key files, and
/// says what to do; other errors are [`registry::explain`]ed.
fn refusal(
    error: kiln_registry_client::Error,
    reference: &Reference,
    keys: &[(PathBuf, PublicKey)],
) -> anyhow::Error {
    use kiln_registry_client::Error as E;
    let names = keys
        .iter()
        .map(|(p, _)| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ");
    let hint = match &error {
        E::Unsigned { .. } => format!(
            "sign it when publishing (`kiln publish --sign KEY`), or verify with the key it was \
             signed with; kiln trusts {names}"
        ),
        E::SignedByAnotherKey { .. } => {
            format!("kiln trusts {names}; pass the signer's public key with --verify")
        }
        E::SignatureOverAnotherDigest { .. } => {
            format!("pull the digest that was signed, or sign the new one; kiln trusts {names}")
        }
        E::SignedForAnotherRepository { .. } => {
            "pull it from the repository it was signed for".to_string()
        }
        _ => {
            return registry::explain(error).context(format!("cannot pull {reference}"));
        }
    };
    hinted(error.to_string(), hint)
}

/// `sha256:0123456789ab…` of a key, for status lines.
fn short_key(key: &PublicKey) -> String {
    format!("key {}…", registry::short(&key.fingerprint()))
}

/// Resolved `kiln generate-key-pair` settings.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// `--output-key-prefix`: writes `<prefix>.key` and `<prefix>.pub`.
    pub prefix: PathBuf,
    /// `--force`: replace existing files.
    pub force: bool,
}

/// `kiln generate-key-pair`: a new P-256 key pair, the private key in cosign's encrypted
/// format (mode 0600), the public key as PEM; prints the public key's path.
///
/// # Errors
///
/// Existing files without `--force`; no passphrase; write errors.
pub fn generate_key_pair(shell: &Shell, opts: &GenerateOptions) -> anyhow::Result<()> {
    let with = |ext: &str| {
        let mut name = opts.prefix.clone().into_os_string();
        name.push(ext);
        PathBuf::from(name)
    };
    let (private, public) = (with(".key"), with(".pub"));
    for path in [&private, &public] {
        if path.exists() && !opts.force {
            return Err(hinted(
                format!("`{}` already exists", path.display()),
                "pass --force to replace it, or --output-key-prefix to write elsewhere",
            ));
        }
    }
    let passphrase = passphrase("Passphrase for the new private key: ", true)?;
    let key = SigningKey::generate();
    let pem = key.to_cosign_pem(passphrase.as_bytes())?;
    // Created owner-only (0600) before a byte is written.
    crate::fsutil::write_atomic_mode(&private, pem.as_bytes(), 0o600)?;
    crate::fsutil::write_atomic(&public, key.public_key().to_pem().as_bytes())?;
    shell.status(
        "Generated",
        format_args!(
            "`{}` (private, encrypted) and `{}` (public, {})",
            private.display(),
            public.display(),
            short_key(&key.public_key())
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefixes_cover_at_path_boundaries() {
        use super::covers;
        assert!(covers("r.io/acme", "r.io/acme/app"));
        assert!(covers("r.io/acme/", "r.io/acme/app"));
        assert!(covers("r.io", "r.io/acme/app"));
        assert!(covers("r.io/acme/app", "r.io/acme/app"));
        assert!(!covers("r.io/acme", "r.io/acme-evil/app"));
        assert!(!covers("r.io/acme/app/x", "r.io/acme/app"));
        assert!(!covers("", "r.io/acme/app"));
        assert!(!covers("/", "r.io/acme/app"));
    }
}
