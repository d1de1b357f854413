//! The software bill of materials a release build writes beside its component:
//! `target/kiln/release/<name>.cdx.json`, CycloneDX 1.5 JSON
//! (<https://cyclonedx.org/docs/1.5/json/>).
//!
//! CycloneDX rather than SPDX 2.3: its components carry package URLs, hashes and licenses
//! directly, files are components like packages (C sources and bundled files need no second
//! vocabulary), and it is the format `cosign attest --type cyclonedx`, Syft and Grype read.
//!
//! What is listed is what was compiled or composed in:
//! - Rust: the packages cargo's resolve reaches from the built package over normal
//!   dependency edges for the wasm target (`cargo metadata --filter-platform`), which is what
//!   `cargo tree -e normal --target <target>` shows — not every Cargo.lock line — with
//!   Cargo.lock's checksum as the SHA-256 of registry packages;
//! - Go: the modules in the Go build info embedded in the core module (`mod`/`dep` lines);
//! - C and C++: every source file compiled, with its SHA-256;
//! - bundled files, by guest path, with their SHA-256;
//! - `[dependencies]` components composed in, with their SHA-256;
//! - kiln's own parts: the WASI preview1 adapter and the vfs component, when present.
//!
//! The document is reproducible: no timestamp unless `SOURCE_DATE_EPOCH` is set, and a
//! serial number derived from the component's digest.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::manifest::{Language, Project};

/// The SBOM's file name for component `name`.
pub fn file_name(name: &str) -> String {
    format!("{name}.cdx.json")
}

/// The media type of a CycloneDX JSON document (the OCI artifact type of the referrer).
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// What the build knows about a component, for its SBOM.
pub struct Inputs<'a> {
    /// The project built.
    pub project: &'a Project,
    /// The component's name and version.
    pub name: &'a str,
    /// Its version, if any.
    pub version: Option<&'a str>,
    /// The final component.
    pub component: &'a [u8],
    /// Bundled files (host path, guest path).
    pub bundled: Vec<(&'a Path, String)>,
    /// Composed `[dependencies]`.
    pub composed: &'a [crate::ops::compose::Resolved],
    /// The WASI preview1 adapter kiln embedded, if the driver's output was a core module.
    pub adapter: Option<kiln_componentize::Adapter>,
    /// `SOURCE_DATE_EPOCH`, if set.
    pub source_date_epoch: Option<&'a str>,
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn hashes(hex: &str) -> Value {
    json!([{ "alg": "SHA-256", "content": hex }])
}

/// The CycloneDX document for `inputs`.
///
/// # Errors
///
/// `cargo metadata` failing for a Rust project, unreadable sources or bundled files.
pub fn generate(inputs: &Inputs<'_>) -> anyhow::Result<Value> {
    let digest = sha256(inputs.component);
    let mut components: Vec<Value> = Vec::new();
    match inputs.project.language {
        Language::Rust => components.extend(cargo_packages(inputs.project)?),
        Language::Go | Language::Tinygo => components.extend(go_modules(inputs.component)),
        Language::C => {
            for source in
                crate::toolchain::c::sources(&inputs.project.root, &inputs.project.manifest.build)?
            {
                let bytes = fs_err::read(inputs.project.root.join(&source))?;
                components.push(json!({
                    "type": "file",
                    "bom-ref": format!("file:{}", source.display()),
                    "name": source.to_string_lossy(),
                    "hashes": hashes(&sha256(&bytes)),
                }));
            }
        }
        Language::Custom => {}
    }
    for (host, guest) in &inputs.bundled {
        let bytes = fs_err::read(host)
            .with_context(|| format!("cannot read bundled file `{}`", host.display()))?;
        components.push(json!({
            "type": "file",
            "bom-ref": format!("bundle:{guest}"),
            "name": guest,
            "description": "bundled file",
            "hashes": hashes(&sha256(&bytes)),
        }));
    }
    for dependency in inputs.composed {
        let hex = dependency
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&dependency.digest);
        let mut component = json!({
            "type": "library",
            "bom-ref": format!("component:{}", dependency.name),
            "name": dependency.name,
            "description": format!("component composed in from {}", dependency.source),
            "hashes": hashes(hex),
        });
        if let Some(version) = &dependency.version {
            component["version"] = json!(version);
        }
        components.push(component);
    }
    components.extend(kiln_parts(inputs.component, inputs.adapter));

    let mut metadata = json!({
        "tools": { "components": [{
            "type": "application",
            "name": "kiln",
            "version": env!("CARGO_PKG_VERSION"),
        }]},
        "component": {
            "type": "application",
            "bom-ref": "component",
            "name": inputs.name,
            "hashes": hashes(&digest),
        },
    });
    if let Some(version) = inputs.version {
        metadata["component"]["version"] = json!(version);
    }
    if let Some(epoch) = inputs.source_date_epoch
        && let Ok(seconds) = epoch.parse::<i64>()
        && let Some(time) = chrono::DateTime::from_timestamp(seconds, 0)
    {
        metadata["timestamp"] = json!(time.format("%Y-%m-%dT%H:%M:%SZ").to_string());
    }
    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial_number(&digest),
        "version": 1,
        "metadata": metadata,
        "components": components,
    }))
}

/// An RFC 4122 URN derived from the component's digest (version 8, "custom"), so the same
/// component always gets the same document.
fn serial_number(hex_digest: &str) -> String {
    let mut bytes = hex::decode(&hex_digest[..32]).unwrap_or_else(|_| vec![0; 16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The packages cargo builds into the project's package for the wasm target.
fn cargo_packages(project: &Project) -> anyhow::Result<Vec<Value>> {
    let target = project
        .manifest
        .build
        .target
        .as_ref()
        .map_or(crate::manifest::RUST_TARGET, |t| t.get_ref().as_str());
    let cargo_toml = project.cargo_toml();
    let metadata = cargo_metadata::MetadataCommand::new()
        .cargo_path(crate::env_vars::cargo())
        .manifest_path(&cargo_toml)
        .other_options(vec!["--filter-platform".to_string(), target.to_string()])
        .exec()
        .with_context(|| format!("cannot list the packages of `{}`", cargo_toml.display()))?;
    let Some(resolve) = &metadata.resolve else {
        return Ok(Vec::new());
    };
    let canonical = crate::ops::compose::canonical(&cargo_toml);
    let root = metadata
        .packages
        .iter()
        .find(|p| crate::ops::compose::canonical(p.manifest_path.as_std_path()) == canonical)
        .map(|p| p.id.clone())
        .or_else(|| resolve.root.clone())
        .context("cargo metadata names no root package")?;
    let nodes: BTreeMap<_, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let mut seen = BTreeSet::new();
    let mut queue = vec![&root];
    while let Some(id) = queue.pop() {
        let Some(node) = nodes.get(id) else { continue };
        for dep in &node.deps {
            let normal = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == cargo_metadata::DependencyKind::Normal);
            if normal && seen.insert(dep.pkg.clone()) {
                queue.push(&dep.pkg);
            }
        }
    }
    let checksums = lock_checksums(&metadata.workspace_root.as_std_path().join("Cargo.lock"));
    let mut out = Vec::new();
    for package in metadata.packages.iter().filter(|p| seen.contains(&p.id)) {
        let version = package.version.to_string();
        let purl = format!("pkg:cargo/{}@{version}", package.name);
        let mut component = json!({
            "type": "library",
            "bom-ref": purl,
            "name": package.name.to_string(),
            "version": version,
            "purl": purl,
        });
        if let Some(license) = &package.license {
            component["licenses"] = json!([{ "expression": license }]);
        }
        if let Some(sum) = checksums.get(&(package.name.to_string(), version.clone())) {
            component["hashes"] = hashes(sum);
        }
        out.push(component);
    }
    Ok(out)
}

/// `(name, version)` → the `checksum` of Cargo.lock's registry packages (SHA-256 of the
/// `.crate` file).
fn lock_checksums(lock: &Path) -> BTreeMap<(String, String), String> {
    let Ok(text) = std::fs::read_to_string(lock) else {
        return BTreeMap::new();
    };
    let Ok(table) = text.parse::<toml::Table>() else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for package in table
        .get("package")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
    {
        let field = |key: &str| {
            package
                .get(key)
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        if let (Some(name), Some(version), Some(sum)) =
            (field("name"), field("version"), field("checksum"))
        {
            out.insert((name, version), sum);
        }
    }
    out
}

/// Go's build info (runtime/debug.BuildInfo as the linker embeds it, between two 16-byte
/// sentinels) found in `component`: its `mod` and `dep` lines as components.
fn go_modules(component: &[u8]) -> Vec<Value> {
    const START: &[u8] = b"0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6";
    const END: &[u8] = b"\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2";
    let Some(start) = component.windows(START.len()).position(|w| w == START) else {
        return Vec::new();
    };
    let body = &component[start + START.len()..];
    let Some(end) = body.windows(END.len()).position(|w| w == END) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&body[..end]);
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        let (kind, path, version) = match fields.as_slice() {
            [kind @ ("mod" | "dep"), path, version, ..] => (*kind, *path, *version),
            _ => continue,
        };
        let purl = format!("pkg:golang/{path}@{version}");
        let mut component = json!({
            "type": if kind == "mod" { "application" } else { "library" },
            "bom-ref": purl,
            "name": path,
            "version": version,
            "purl": purl,
        });
        // `h1:` sums are Go's own hash of the module tree, kept as a property.
        if let Some(sum) = fields.get(3).filter(|s| s.starts_with("h1:")) {
            component["properties"] = json!([{ "name": "go:sum", "value": sum }]);
        }
        out.push(component);
    }
    out
}

/// kiln's own parts inside `component`: the WASI preview1 adapter it embedded, with the
/// SHA-256 of the adapter as shipped, and the vfs component (bundles).
fn kiln_parts(component: &[u8], adapter: Option<kiln_componentize::Adapter>) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(adapter) = adapter {
        let kind = match adapter {
            kiln_componentize::Adapter::Command => "command",
            kiln_componentize::Adapter::Reactor => "reactor",
        };
        let bytes = adapter.bytes();
        out.push(json!({
            "type": "library",
            "bom-ref": "kiln:wasi-preview1-adapter",
            "name": "wasi_snapshot_preview1",
            "version": "48.0.8",
            "description": format!("the WASI preview1 adapter ({kind}), from wasi-preview1-component-adapter-provider"),
            "purl": "pkg:cargo/wasi-preview1-component-adapter-provider@48.0.8",
            "hashes": hashes(&sha256(bytes)),
        }));
    }
    if kiln_componentize::find_archive(component)
        .ok()
        .flatten()
        .is_some()
    {
        out.push(json!({
            "type": "library",
            "bom-ref": "kiln:vfs",
            "name": "kiln-vfs",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "kiln's virtual filesystem component, serving the bundled files",
            "hashes": hashes(&sha256(crate::ops::bundle::VFS_MODULE)),
        }));
    }
    out
}
