//! `kiln publish`: build the release component when stale, package it as a Wasm OCI
//! artifact, push it.

use std::collections::BTreeMap;

use anyhow::Context;
use kiln_registry_client::{Artifact, annotations};

use crate::ops::build::build_project;
use crate::ops::registry::{self, ShellProgress};
use crate::settings::{PublishSettings, PublishSource};
use crate::shell::{Shell, human_size};

/// Publishes; prints `REFERENCE@sha256:…` on stdout.
///
/// # Errors
///
/// Build errors, an unreadable signing key, registry errors.
pub fn publish(shell: &Shell, settings: &PublishSettings) -> anyhow::Result<()> {
    let reference = &settings.reference;
    let sign = &settings.sign;
    let created = settings.created;
    // The annotations derived from the component's metadata come first; Kiln.toml's and the
    // command line's (in the settings) override them.
    let mut notes = BTreeMap::new();
    let mut sbom_path: Option<std::path::PathBuf> = None;
    let (component_path, wit_bytes) = match &settings.source {
        PublishSource::File { path } => (path.clone(), None),
        PublishSource::Wit {
            path,
            name,
            version,
            bytes,
        } => {
            notes.insert(annotations::TITLE.to_string(), name.clone());
            if let Some(version) = version {
                notes.insert(annotations::VERSION.to_string(), version.clone());
            }
            (path.clone(), Some(bytes.clone()))
        }
        PublishSource::Project { build } => {
            let built = build_project(shell, build)?;
            let metadata = &built.metadata;
            let mut note = |key: &str, value: Option<&String>| {
                if let Some(value) = value {
                    notes.insert(key.to_string(), value.clone());
                }
            };
            note(annotations::TITLE, metadata.name.as_ref());
            note(annotations::VERSION, metadata.version.as_ref());
            note(annotations::DESCRIPTION, metadata.description.as_ref());
            note(annotations::LICENSES, metadata.license.as_ref());
            note(annotations::SOURCE, metadata.source.as_ref());
            let sbom = built
                .path
                .with_file_name(crate::ops::sbom::file_name(&built.name));
            sbom_path = sbom.is_file().then_some(sbom);
            for (key, value) in crate::ops::provenance::annotations(&build.project.root) {
                // `[package] repository` names the source when it is set.
                notes.entry(key).or_insert(value);
            }
            (built.path, None)
        }
    };
    notes.extend(settings.annotations.clone());

    // The key is read (and its passphrase checked) before anything is pushed.
    let signing_key = match &sign {
        Some(path) => Some((crate::ops::sign::read_signing_key(path)?, path.clone())),
        None => None,
    };
    let sbom = sbom_path.as_ref().map(fs_err::read).transpose()?;
    let component = match wit_bytes {
        Some(bytes) => bytes,
        None => fs_err::read(&component_path)?,
    };
    let size = component.len() as u64;
    let artifact = Artifact::package(component, notes, created)
        .with_context(|| format!("cannot publish `{}`", component_path.display()))?;
    let pinned = format!("{reference}@{}", artifact.manifest_digest);

    if settings.dry_run {
        shell.status(
            "Packaged",
            format_args!(
                "{} ({}), not pushed (--dry-run)",
                reference,
                human_size(size)
            ),
        );
        shell.emit(crate::messages::Publish {
            dry_run: true,
            reference: pinned,
            digest: artifact.manifest_digest.clone(),
            layer_digest: artifact.layer_digest.clone(),
            size,
            uploaded: 0,
            annotations: artifact.annotations.clone(),
        });
        return Ok(());
    }

    let credential = registry::resolve_credential(reference.registry(), &settings.registry)?;
    let tokio = registry::tokio()?;
    let pushed = tokio
        .block_on(async {
            let client = registry::client(reference, credential, settings.registry.insecure)?;
            let progress = ShellProgress {
                shell,
                verb: "Pushing",
            };
            let pushed = client.push(reference, &artifact, &progress).await;
            registry::report_connection(shell, &client, reference.registry());
            let pushed = pushed.map_err(registry::explain)?;
            if let Some((key, path)) = &signing_key {
                crate::ops::sign::sign_pushed(
                    shell,
                    &client,
                    reference,
                    &pushed.digest,
                    key,
                    path,
                    &progress,
                )
                .await?;
            }
            if let Some(sbom) = &sbom {
                let attached = client
                    .attach(
                        reference,
                        &pushed.digest,
                        artifact.manifest.len() as u64,
                        crate::ops::sbom::MEDIA_TYPE,
                        bytes::Bytes::from(sbom.clone()),
                        &progress,
                    )
                    .await
                    .map_err(registry::explain)
                    .context("cannot attach the SBOM")?;
                shell.status(
                    "Attached",
                    format_args!("SBOM (CycloneDX) as a referrer, {}", attached.index),
                );
                shell.verbose_status("Digest", &attached.digest);
            }
            Ok::<_, anyhow::Error>(pushed)
        })
        .with_context(|| format!("cannot publish to {reference}"))?;
    shell.status(
        "Published",
        format_args!(
            "{reference} ({}, {} uploaded)",
            human_size(size),
            human_size(pushed.uploaded)
        ),
    );
    shell.emit(crate::messages::Publish {
        dry_run: false,
        reference: pushed.reference.clone(),
        digest: pushed.digest.clone(),
        layer_digest: artifact.layer_digest.clone(),
        size,
        uploaded: pushed.uploaded,
        annotations: artifact.annotations.clone(),
    });
    Ok(())
}
