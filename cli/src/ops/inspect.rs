//! `kiln inspect`: what a component or core module is, imports, exports, holds and says
//! about itself.

use std::path::Path;

use anyhow::Context;
use kiln_componentize::{Inspection, WasmKind};
use serde_json::json;

use crate::shell::{MessageFormat, Shell, human_size};

/// Prints a description of the binary at `path` (or its WIT with `wit`).
///
/// # Errors
///
/// A missing file, or a file that is not valid WebAssembly.
pub fn inspect(shell: &Shell, path: &Path, wit: bool, format: MessageFormat) -> anyhow::Result<()> {
    let bytes = fs_err::read(path)?;
    let shown = path.display();
    if wit {
        let text = kiln_componentize::wit(&bytes)
            .with_context(|| format!("cannot print the WIT of `{shown}`"))?;
        match format {
            MessageFormat::Human => shell.result(text.trim_end()),
            MessageFormat::Json => {
                shell.json(&json!({ "reason": "wit", "path": path, "wit": text }))
            }
        }
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
    match format {
        MessageFormat::Human => {
            print_human(shell, &shown.to_string(), &info);
            if let Some(files) = &bundled {
                shell.result("bundled files:");
                for file in files {
                    match file.size {
                        Some(size) => shell.result(format_args!(
                            "  {:<40} {:>10}",
                            file.path,
                            human_size(size)
                        )),
                        None => shell.result(format_args!("  {}/", file.path)),
                    }
                }
            }
        }
        MessageFormat::Json => {
            let mut value = to_json(path, &info);
            value["bundled_files"] = json!(bundled.map(|files| files
                .iter()
                .map(|f| json!({ "path": f.path, "size": f.size, "kind": if f.size.is_some() { "file" } else { "directory" } }))
                .collect::<Vec<_>>()));
            shell.json(&value);
        }
    }
    Ok(())
}

/// A bundled file or directory, as `kiln inspect` lists it.
struct BundledFile {
    /// The guest's path, `/assets/css/site.css`.
    path: String,
    /// The size of a file; `None` for a directory.
    size: Option<u64>,
}

/// Every file and directory in `archive`, depth first in name order. `Archive::parse` proves
/// the index is a tree with bounded paths and `walk` is iterative, so a hostile archive costs
/// at most one entry per node.
fn bundled_files(archive: &[u8]) -> anyhow::Result<Vec<BundledFile>> {
    use kiln_vfs_archive::{Archive, NodeKind};
    let archive = Archive::parse(archive)?;
    Ok(archive
        .walk()
        .map(|(path, node)| BundledFile {
            path,
            size: (archive.kind(node) == NodeKind::File)
                .then(|| archive.contents(node).len() as u64),
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

fn location(module: &Option<kiln_componentize::ModulePath>) -> String {
    module
        .as_ref()
        .map_or_else(|| "component".to_string(), ToString::to_string)
}

fn print_human(shell: &Shell, shown: &str, info: &Inspection) {
    shell.result(format_args!(
        "{shown}: {}, {}",
        kind_name(info.kind),
        human_size(info.size as u64)
    ));
    if let Some(world) = &info.world {
        let versions = world.wasi_versions();
        if !versions.is_empty() {
            let shown: Vec<String> = versions.iter().map(|v| format!("WASI {v}")).collect();
            shell.result(format_args!("targets: {}", shown.join(", ")));
        }
        shell.result("world:");
        for import in &world.imports {
            shell.result(format_args!("  import {import}"));
        }
        for export in &world.exports {
            shell.result(format_args!("  export {export}"));
        }
    }
    shell.result("core modules:");
    for module in &info.modules {
        shell.result(format_args!(
            "  {:<24} {:>10}",
            module.path.to_string(),
            human_size(module.size as u64)
        ));
    }
    if !info.custom_sections.is_empty() {
        shell.result("custom sections:");
        for custom in &info.custom_sections {
            shell.result(format_args!(
                "  {:<24} {:<24} {:>10}",
                custom.name,
                location(&custom.module),
                human_size(custom.size as u64)
            ));
        }
    }
    let m = &info.metadata;
    let fields = [
        ("name", &m.name),
        ("version", &m.version),
        ("description", &m.description),
        ("license", &m.license),
        ("source", &m.source),
    ];
    if fields.iter().any(|(_, v)| v.is_some()) || !m.producers.is_empty() {
        shell.result("metadata:");
        for (key, value) in fields {
            if let Some(value) = value {
                shell.result(format_args!("  {key}: {value}"));
            }
        }
        for (field, name, version) in &m.producers {
            shell.result(format_args!("  {field}: {name} {version}"));
        }
    }
}

fn to_json(path: &Path, info: &Inspection) -> serde_json::Value {
    let m = &info.metadata;
    json!({
        "reason": "inspect",
        "path": path,
        "kind": kind_name(info.kind),
        "size": info.size,
        "wasi": info.world.as_ref().map(|w| w.wasi_versions()),
        "imports": info.world.as_ref().map(|w| w.imports.clone()),
        "exports": info.world.as_ref().map(|w| w.exports.clone()),
        "modules": info.modules.iter().map(|m| json!({ "path": m.path.0, "size": m.size })).collect::<Vec<_>>(),
        "custom_sections": info.custom_sections.iter().map(|c| json!({
            "name": c.name,
            "size": c.size,
            "module": c.module.as_ref().map(|p| p.0.clone()),
        })).collect::<Vec<_>>(),
        "metadata": {
            "name": m.name,
            "version": m.version,
            "description": m.description,
            "license": m.license,
            "source": m.source,
            "producers": m.producers.iter().map(|(f, n, v)| json!({ "field": f, "name": n, "version": v })).collect::<Vec<_>>(),
        },
    })
}
