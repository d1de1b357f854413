//! `kiln pull`, and the pull behind `kiln run REFERENCE`.

use std::path::PathBuf;

use anyhow::Context;
use kiln_registry_client::{Pulled, Reference};

use crate::errors::hinted;
use crate::ops::registry::{self, RegistryArgs, ShellProgress};
use crate::shell::{Shell, human_size};

/// Resolved `kiln pull` settings.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The reference as given.
    pub reference: String,
    /// `-o FILE`.
    pub output: Option<PathBuf>,
    /// `--force`.
    pub force: bool,
    /// Credentials and `--insecure`.
    pub registry: RegistryArgs,
    /// `--verify KEY`s.
    pub verify: crate::ops::sign::VerifyArgs,
}

/// Pulls `reference` into the cache (verified) and returns where the component is.
///
/// # Errors
///
/// Credential and registry errors, with the reference as context.
pub fn fetch(shell: &Shell, reference: &Reference, args: &RegistryArgs) -> anyhow::Result<Pulled> {
    let credential = registry::resolve_credential(reference.registry(), args)?;
    let tokio = registry::tokio()?;
    let pulled = tokio
        .block_on(async {
            let client = registry::client(reference, credential, args.insecure)?;
            let progress = ShellProgress {
                shell,
                verb: "Pulling",
            };
            let pulled = client.pull(reference, &progress).await;
            registry::report_connection(shell, &client, reference.registry());
            pulled.map_err(registry::explain)
        })
        .with_context(|| format!("cannot pull {reference}"))?;
    let how = if pulled.downloaded == 0 {
        "from the cache".to_string()
    } else {
        format!("{} downloaded", human_size(pulled.downloaded))
    };
    shell.status(
        "Pulled",
        format_args!("{reference} ({}, {how})", human_size(pulled.size)),
    );
    shell.verbose_status("Digest", &pulled.digest);
    Ok(pulled)
}

/// `kiln pull`: fetch, then copy the component to the output file; prints its path.
///
/// # Errors
///
/// A malformed reference (before any network or file access), an existing output without
/// `--force`, pull errors.
pub fn pull(shell: &Shell, opts: &PullOptions) -> anyhow::Result<()> {
    let reference: Reference = opts.reference.parse()?;
    let output = opts
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.wasm", reference.name())));
    let (pulled, _) = crate::ops::sign::fetch(shell, &reference, &opts.registry, &opts.verify)?;
    // The bytes that were verified, not a second read of the cache file.
    let bytes = &pulled.bytes;
    if output.exists() && !opts.force {
        let same = fs_err::read(&output).is_ok_and(|existing| existing == bytes[..]);
        if !same {
            return Err(hinted(
                format!("`{}` already exists", output.display()),
                "pass --force to replace it, or -o to write elsewhere",
            ));
        }
    } else {
        crate::fsutil::write_atomic(&output, bytes)?;
    }
    let component = pulled.config.component.as_ref();
    shell.emit(crate::messages::Pull {
        reference: reference.to_string(),
        digest: pulled.digest.clone(),
        layer_digest: pulled.layer_digest.clone(),
        size: pulled.size,
        downloaded: pulled.downloaded,
        path: output,
        annotations: pulled.annotations.clone(),
        imports: component.map(|c| c.imports.clone()),
        exports: component.map(|c| c.exports.clone()),
    });
    Ok(())
}
