//! `kiln publish`: build the release component when stale, package it as a Wasm OCI
//! artifact, push it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use kiln_registry_client::{Artifact, Reference, annotations};

use crate::env_vars;
use crate::errors::hinted;
use crate::manifest::Project;
use crate::ops::build::{Profile, build_project};
use crate::ops::registry::{self, RegistryArgs, ShellProgress};
use crate::shell::{Shell, human_size};

/// Resolved `kiln publish` settings.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The reference on the command line.
    pub reference: Option<String>,
    /// `--tag`.
    pub tag: Option<String>,
    /// `--annotation KEY=VALUE`s.
    pub annotations: Vec<(String, String)>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--sign KEY` (relative to the current directory).
    pub sign: Option<PathBuf>,
    /// `--wasm FILE`: publish a component file, not the project.
    pub wasm: Option<PathBuf>,
    /// Credentials and `--insecure`.
    pub registry: RegistryArgs,
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// The current directory.
    pub cwd: PathBuf,
}

/// Publishes; prints `REFERENCE@sha256:…` on stdout.
///
/// # Errors
///
/// A malformed reference or tag (before anything else happens), no reference anywhere, no
/// tag and no package version, build errors, registry errors.
pub fn publish(shell: &Shell, opts: &PublishOptions) -> anyhow::Result<()> {
    // Refuse bad input before touching files or the network.
    if let Some(reference) = &opts.reference {
        Reference::parse_with_default_tag(reference, "latest")?;
    }
    if let Some(tag) = &opts.tag {
        Reference::validate_tag(tag)?;
    }
    let mut notes = BTreeMap::new();
    let mut sign = opts.sign.as_ref().map(|key| opts.cwd.join(key));
    let (component_path, written, version) = match &opts.wasm {
        Some(wasm) => {
            let written = opts.reference.clone().ok_or_else(|| {
                hinted(
                    "no reference to publish to",
                    "give one: `kiln publish REGISTRY/REPOSITORY:TAG --wasm FILE`",
                )
            })?;
            (opts.cwd.join(wasm), written, None)
        }
        None => {
            let project = Project::find(&opts.cwd, opts.manifest_path.as_deref())?;
            let written = match &opts.reference {
                Some(reference) => reference.clone(),
                None => project
                    .manifest
                    .publish
                    .reference
                    .as_ref()
                    .map(|r| r.get_ref().clone())
                    .ok_or_else(|| {
                        hinted(
                            "no reference to publish to",
                            "give one (`kiln publish REGISTRY/REPOSITORY[:TAG]`) or set `[publish] reference` in Kiln.toml",
                        )
                    })?,
            };
            let built = build_project(shell, &project, Profile::Release, false, &[])?;
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
            notes.extend(project.manifest.publish.annotations.clone());
            if sign.is_none() {
                sign = project
                    .manifest
                    .publish
                    .sign
                    .as_ref()
                    .map(|key| project.root.join(key));
            }
            (built.path, written, metadata.version.clone())
        }
    };
    notes.extend(opts.annotations.iter().cloned());
    let tag = match (&opts.tag, &version) {
        (Some(tag), _) => tag.clone(),
        (None, Some(version)) => version.clone(),
        (None, None) => String::from("latest"),
    };
    let mut reference = Reference::parse_with_default_tag(&written, &tag)?;
    if let Some(tag) = &opts.tag {
        reference = reference.with_tag(tag)?;
    }
    if reference.tag().is_none() {
        anyhow::bail!("`{reference}` pins a digest; publish to a tag");
    }
    let created = kiln_registry_client::created_from_source_date_epoch(
        env_vars::non_empty(env_vars::SOURCE_DATE_EPOCH).as_deref(),
    )
    .map_err(anyhow::Error::msg)?;

    // The key is read (and its passphrase checked) before anything is pushed.
    let signing_key = match &sign {
        Some(path) => Some((crate::ops::sign::read_signing_key(path)?, path.clone())),
        None => None,
    };
    let component = fs_err::read(&component_path)?;
    let size = component.len() as u64;
    let artifact = Artifact::package(component, notes, created)
        .with_context(|| format!("cannot publish `{}`", component_path.display()))?;
    let pinned = format!("{reference}@{}", artifact.manifest_digest);

    if opts.dry_run {
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

    let credential = registry::resolve_credential(reference.registry(), &opts.registry)?;
    let tokio = registry::tokio()?;
    let pushed = tokio
        .block_on(async {
            let client = registry::client(&reference, credential, opts.registry.insecure)?;
            let progress = ShellProgress {
                shell,
                verb: "Pushing",
            };
            let pushed = client.push(&reference, &artifact, &progress).await;
            registry::report_connection(shell, &client, reference.registry());
            let pushed = pushed.map_err(registry::explain)?;
            if let Some((key, path)) = &signing_key {
                crate::ops::sign::sign_pushed(
                    shell,
                    &client,
                    &reference,
                    &pushed.digest,
                    key,
                    path,
                    &progress,
                )
                .await?;
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
