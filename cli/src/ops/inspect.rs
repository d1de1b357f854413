//! `kiln inspect`: what a component or core module is, imports, exports, holds and says
//! about itself.

use std::path::Path;

use anyhow::Context;
use kiln_componentize::{Inspection, WasmKind};

use crate::messages::{
    BundledFile, Inspect, InspectCustomSection, InspectMetadata, InspectModule, Producer, Wit,
};
use crate::shell::Shell;

/// Reports a description of the binary at `path` (or its WIT with `wit`).
///
/// # Errors
///
/// A missing file, or a file that is not valid WebAssembly.
pub fn inspect(shell: &Shell, path: &Path, wit: bool) -> anyhow::Result<()> {
    let bytes = fs_err::read(path)?;
    let shown = path.display();
    if wit {
        let text = kiln_componentize::wit(&bytes)
            .with_context(|| format!("cannot print the WIT of `{shown}`"))?;
        shell.emit(Wit {
            path: path.to_path_buf(),
            wit: text,
        });
        return Ok(());
    }
    let info =
        kiln_componentize::inspect(&bytes).with_context(|| format!("cannot inspect `{shown}`"))?;
    let archive = kiln_componentize::find_archive(&bytes)
        .with_context(|| format!("cannot inspect `{shown}`"))?;
    let bundled = archive
        .as_deref()
        .map(bundled_files)
        .transpose()
        .with_context(|| format!("cannot read the bundled files of `{shown}`"))?;
    // The record is a custom section anyone can write: a malformed one is reported, not fatal.
    let composed_from = match kiln_componentize::composition(&bytes) {
        Ok(from) => from.map(|from| from.into_iter().map(Into::into).collect()),
        Err(e) => {
            shell.warn(format_args!(
                "`{shown}`: ignoring its composition record: {e}"
            ));
            None
        }
    };
    let mut described = describe(path, &info, bundled);
    described.composed_from = composed_from;
    shell.emit(described);
    Ok(())
}

/// Shows an SBOM: `target` is an SBOM file, a component with its `.cdx.json` beside it, or a
/// registry reference whose manifest has an SBOM referrer.
///
/// # Errors
///
/// No SBOM there (with how to get one), a file that is not JSON, registry errors.
pub fn sbom(shell: &Shell, target: &Path) -> anyhow::Result<()> {
    let (source, referrer, bytes) = if target.is_file() {
        let is_json = fs_err::read(target)?.trim_ascii_start().starts_with(b"{");
        let file = if is_json {
            target.to_path_buf()
        } else {
            let stem = target
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            target.with_file_name(crate::ops::sbom::file_name(&stem))
        };
        if !file.is_file() {
            return Err(crate::errors::hinted(
                format!(
                    "`{}` has no SBOM beside it (`{}`)",
                    target.display(),
                    file.display()
                ),
                "release builds write one: `kiln build --release`",
            ));
        }
        (file.display().to_string(), None, fs_err::read(&file)?)
    } else if let Some(text) = target
        .to_str()
        .filter(|t| crate::settings::looks_like_reference(t))
    {
        let reference: kiln_registry_client::Reference = text.parse()?;
        let args = crate::ops::registry::RegistryArgs::default();
        let pulled = crate::ops::pull::fetch(shell, &reference, &args)?;
        let credential = crate::ops::registry::resolve_credential(reference.registry(), &args)?;
        let tokio = crate::ops::registry::tokio()?;
        let found = tokio
            .block_on(async {
                let client = crate::ops::registry::client(&reference, credential, false)?;
                client
                    .fetch_referrer(
                        &reference,
                        &pulled.digest,
                        crate::ops::sbom::MEDIA_TYPE,
                        &kiln_registry_client::NoProgress,
                    )
                    .await
                    .map_err(crate::ops::registry::explain)
            })
            .with_context(|| format!("cannot read the SBOM of {reference}"))?;
        let Some(found) = found else {
            anyhow::bail!("{reference} ({}) has no SBOM attached", pulled.digest);
        };
        (reference.to_string(), Some(found.digest), found.content)
    } else {
        anyhow::bail!("`{}` does not exist", target.display());
    };
    let document: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("the SBOM from {source} is not JSON"))?;
    if document["bomFormat"] != "CycloneDX" {
        anyhow::bail!("the document from {source} is not a CycloneDX SBOM");
    }
    shell.emit(crate::messages::Sbom {
        source,
        referrer,
        document,
    });
    Ok(())
}

/// Every file and directory in `archive`, depth first in name order. `Archive::parse` proves
/// the index is a tree with bounded paths and `walk` is iterative, so a hostile archive costs
/// at most one entry per node.
fn bundled_files(archive: &[u8]) -> anyhow::Result<Vec<BundledFile>> {
    use kiln_vfs_archive::{Archive, NodeKind};
    let archive = Archive::parse(archive)?;
    Ok(archive
        .walk()
        .map(|(path, node)| {
            let file = archive.kind(node) == NodeKind::File;
            BundledFile {
                path,
                size: file.then(|| archive.contents(node).len() as u64),
                kind: if file { "file" } else { "directory" }.to_string(),
            }
        })
        .collect())
}

fn kind_name(kind: WasmKind) -> &'static str {
    match kind {
        WasmKind::Component => "component",
        WasmKind::CoreModule => "core module",
        WasmKind::NotWasm => "not wasm",
    }
}

fn describe(path: &Path, info: &Inspection, bundled_files: Option<Vec<BundledFile>>) -> Inspect {
    let m = &info.metadata;
    Inspect {
        path: path.to_path_buf(),
        kind: kind_name(info.kind).to_string(),
        size: info.size as u64,
        wasi: info.world.as_ref().map(|w| w.wasi_versions()),
        imports: info.world.as_ref().map(|w| w.imports.clone()),
        exports: info.world.as_ref().map(|w| w.exports.clone()),
        modules: info
            .modules
            .iter()
            .map(|m| InspectModule {
                path: m.path.0.clone(),
                shown: m.path.to_string(),
                size: m.size as u64,
            })
            .collect(),
        custom_sections: info
            .custom_sections
            .iter()
            .map(|c| InspectCustomSection {
                name: c.name.clone(),
                size: c.size as u64,
                module: c.module.as_ref().map(|p| p.0.clone()),
                shown: c
                    .module
                    .as_ref()
                    .map_or_else(|| "component".to_string(), ToString::to_string),
            })
            .collect(),
        metadata: InspectMetadata {
            name: m.name.clone(),
            version: m.version.clone(),
            description: m.description.clone(),
            license: m.license.clone(),
            source: m.source.clone(),
            producers: m
                .producers
                .iter()
                .map(|(field, name, version)| Producer {
                    field: field.clone(),
                    name: name.clone(),
                    version: version.clone(),
                })
                .collect(),
        },
        bundled_files,
        composed_from: None,
    }
}
