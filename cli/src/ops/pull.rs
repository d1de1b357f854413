//! `kiln pull`, and the pull behind `kiln run REFERENCE`.

use anyhow::Context;
use kiln_registry_client::{Pulled, Reference};

use crate::errors::hinted;
use crate::ops::registry::{self, RegistryArgs, ShellProgress};
use crate::settings::PullSettings;
use crate::shell::{Shell, human_size};

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
/// An existing output without `--force`, pull errors.
pub fn pull(shell: &Shell, settings: &PullSettings) -> anyhow::Result<()> {
    let reference = &settings.reference;
    let output = settings.output.clone();
    let (pulled, _) =
        crate::ops::sign::fetch(shell, reference, &settings.registry, &settings.verify)?;
    // The bytes that were verified, not a second read of the cache file.
    let bytes = &pulled.bytes;
    if output.exists() && !settings.force {
        let same = fs_err::read(&output).is_ok_and(|existing| existing == bytes[..]);
        if !same {
            return Err(hinted(
                format!(
                    "`{}` already exists",
                    crate::fsutil::display_relative(&output)
                ),
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
        shown: crate::fsutil::display_relative(&output),
        path: output,
        annotations: pulled.annotations.clone(),
        imports: component.map(|c| c.imports.clone()),
        exports: component.map(|c| c.exports.clone()),
    });
    Ok(())
}
