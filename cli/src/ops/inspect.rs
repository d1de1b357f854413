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
    let composed_from = kiln_componentize::composition(&bytes)
        .with_context(|| format!("cannot inspect `{shown}`"))?
        .map(|from| from.into_iter().map(Into::into).collect());
    let mut described = describe(path, &info, bundled);
    described.composed_from = composed_from;
    shell.emit(described);
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
