//! Composition: the exports of dependency components plugged into a component's imports with
//! [`wac_graph`], the way `wac plug` does, with errors that name the interface and both sides.
//!
//! Each dependency is instantiated once when it provides something; an import of the socket
//! (the component being built) that a dependency exports under the same name (or a
//! semver-compatible one, `a:b/c@1.2.0` for `a:b/c@1.1.0`) is that dependency's export. What no
//! dependency provides, and every import of the dependencies themselves, is imported from the
//! host under its own name (one outer import per name, shared). The socket's exports are the
//! result's exports.

use std::collections::HashMap;

use wac_graph::types::{ItemKind, Package, SubtypeChecker};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};

use crate::Error;

/// A component that satisfies imports of another.
#[derive(Debug, Clone)]
pub struct Plug<'a> {
    /// The dependency's name (the key in `[dependencies]`), used in messages.
    pub name: &'a str,
    /// The dependency's component.
    pub bytes: &'a [u8],
}

/// What [`plug`] made.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The composed component.
    pub bytes: Vec<u8>,
    /// `(import, dependency)`: each socket import and the dependency that provides it.
    pub plugged: Vec<(String, String)>,
    /// The socket's imports no dependency provides: they stay host imports.
    pub host_imports: Vec<String>,
}

/// Why composition failed.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// A dependency exports the interface under the import's name with other types.
    #[error(
        "`{dependency}` exports `{export}`, but its types do not match the component's import \
         `{import}`: {reason}"
    )]
    Mismatch {
        /// The socket's import.
        import: String,
        /// The dependency that exports it.
        dependency: String,
        /// The dependency's export name.
        export: String,
        /// The type checker's explanation.
        reason: String,
    },
    /// Two dependencies export the same interface the socket imports.
    #[error(
        "the component's import `{import}` is exported by both `{first}` and `{second}`: keep \
         one of them in [dependencies]"
    )]
    TwoProviders {
        /// The socket's import.
        import: String,
        /// The first dependency exporting it.
        first: String,
        /// The second one.
        second: String,
    },
    /// A dependency provides none of the socket's imports.
    #[error("`{dependency}` exports nothing the component imports (it exports {exports})")]
    Unused {
        /// The dependency.
        dependency: String,
        /// Its exports, listed.
        exports: String,
    },
    /// wac-graph refused the composition or a component.
    #[error("composition failed: {0}")]
    Graph(String),
}

fn graph_error(e: impl std::fmt::Display) -> Error {
    Error::Compose(ComposeError::Graph(format!("{e:#}")))
}

/// `name` without its patch version and pre-release (`a:b/c@1.2.3` → `a:b/c@1`, `@0.2.3` →
/// `@0.2`): names equal under this key are semver-compatible.
fn compat_key(name: &str) -> String {
    let Some((base, version)) = name.split_once('@') else {
        return name.to_string();
    };
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next().unwrap_or("");
    if major != "0" {
        return format!("{base}@{major}");
    }
    let minor = parts.next().unwrap_or("");
    format!("{base}@0.{minor}")
}

/// Plugs the exports of `plugs` into the matching imports of `socket`.
///
/// # Errors
///
/// [`ComposeError::Mismatch`] for an export whose types do not satisfy the import it matches
/// by name, [`ComposeError::TwoProviders`] when two dependencies export one import,
/// [`ComposeError::Unused`] for a dependency that provides nothing, [`ComposeError::Graph`]
/// for a component wac-graph cannot read.
pub fn plug(socket: &[u8], plugs: &[Plug<'_>]) -> Result<Composed, Error> {
    let mut graph = CompositionGraph::new();
    let socket_package =
        Package::from_bytes("kiln:socket", None, socket.to_vec(), graph.types_mut())
            .map_err(graph_error)?;
    let socket_package = graph
        .register_package(socket_package)
        .map_err(graph_error)?;
    let mut plug_packages = Vec::with_capacity(plugs.len());
    for (index, plug) in plugs.iter().enumerate() {
        let package = Package::from_bytes(
            &format!("kiln:dependency{index}"),
            None,
            plug.bytes.to_vec(),
            graph.types_mut(),
        )
        .map_err(|e| {
            Error::Compose(ComposeError::Graph(format!(
                "cannot read dependency `{}`: {e:#}",
                plug.name
            )))
        })?;
        plug_packages.push(graph.register_package(package).map_err(graph_error)?);
    }

    let socket_world = graph[socket_package].ty();
    let socket_imports: Vec<(String, ItemKind)> = graph.types()[socket_world]
        .imports
        .iter()
        .map(|(name, kind)| (name.clone(), *kind))
        .collect();

    // For each socket import, the one dependency that exports it (checked types).
    let mut providers: HashMap<String, (usize, String)> = HashMap::new();
    let mut cache = Default::default();
    for (index, package) in plug_packages.iter().enumerate() {
        let world = graph[*package].ty();
        let exports: Vec<(String, ItemKind)> = graph.types()[world]
            .exports
            .iter()
            .map(|(name, kind)| (name.clone(), *kind))
            .collect();
        let mut used = false;
        for (import, import_kind) in &socket_imports {
            let Some((export, export_kind)) =
                exports.iter().find(|(name, _)| name == import).or_else(|| {
                    exports.iter().find(|(name, _)| {
                        name.contains(':') && compat_key(name) == compat_key(import)
                    })
                })
            else {
                continue;
            };
            let mut checker = SubtypeChecker::new(&mut cache);
            if let Err(e) =
                checker.is_subtype(*export_kind, graph.types(), *import_kind, graph.types())
            {
                return Err(Error::Compose(ComposeError::Mismatch {
                    import: import.clone(),
                    dependency: plugs[index].name.to_string(),
                    export: export.clone(),
                    reason: crate::one_line(&format!("{e:#}")),
                }));
            }
            if let Some((first, _)) = providers.get(import) {
                return Err(Error::Compose(ComposeError::TwoProviders {
                    import: import.clone(),
                    first: plugs[*first].name.to_string(),
                    second: plugs[index].name.to_string(),
                }));
            }
            providers.insert(import.clone(), (index, export.clone()));
            used = true;
        }
        if !used {
            let names: Vec<String> = exports.iter().map(|(n, _)| format!("`{n}`")).collect();
            return Err(Error::Compose(ComposeError::Unused {
                dependency: plugs[index].name.to_string(),
                exports: if names.is_empty() {
                    "nothing".to_string()
                } else {
                    names.join(", ")
                },
            }));
        }
    }

    let mut outer: HashMap<String, NodeId> = HashMap::new();
    let mut import = |graph: &mut CompositionGraph, name: &str, kind: ItemKind| {
        if let Some(node) = outer.get(name) {
            return Ok(*node);
        }
        let node = graph.import(name, kind).map_err(graph_error)?;
        outer.insert(name.to_string(), node);
        Ok::<NodeId, Error>(node)
    };
    // The socket's host imports first, so a shared interface gets the socket's type.
    for (name, kind) in &socket_imports {
        if !providers.contains_key(name) {
            import(&mut graph, name, *kind)?;
        }
    }
    let mut instances = Vec::with_capacity(plug_packages.len());
    for package in &plug_packages {
        let instance = graph.instantiate(*package);
        let world = graph[*package].ty();
        let imports: Vec<(String, ItemKind)> = graph.types()[world]
            .imports
            .iter()
            .map(|(name, kind)| (name.clone(), *kind))
            .collect();
        for (name, kind) in imports {
            let node = import(&mut graph, &name, kind)?;
            graph
                .set_instantiation_argument(instance, &name, node)
                .map_err(graph_error)?;
        }
        instances.push(instance);
    }
    let socket_instance = graph.instantiate(socket_package);
    let mut plugged = Vec::new();
    let mut host_imports = Vec::new();
    for (name, kind) in socket_imports {
        let node = match providers.get(&name) {
            Some((index, export)) => {
                plugged.push((name.clone(), plugs[*index].name.to_string()));
                graph
                    .alias_instance_export(instances[*index], export)
                    .map_err(graph_error)?
            }
            None => {
                host_imports.push(name.clone());
                import(&mut graph, &name, kind)?
            }
        };
        graph
            .set_instantiation_argument(socket_instance, &name, node)
            .map_err(graph_error)?;
    }
    let exports: Vec<String> = graph.types()[socket_world]
        .exports
        .keys()
        .cloned()
        .collect();
    for name in exports {
        let node = graph
            .alias_instance_export(socket_instance, &name)
            .map_err(graph_error)?;
        graph.export(node, &name).map_err(graph_error)?;
    }
    let bytes = graph
        .encode(EncodeOptions {
            define_components: true,
            validate: true,
            processor: None,
        })
        .map_err(graph_error)?;
    Ok(Composed {
        bytes,
        plugged,
        host_imports,
    })
}

/// The name of the custom section in which kiln records what a component was composed from
/// (JSON: an array of [`ComposedFrom`]), at the top level of the composed component.
pub const COMPOSITION_SECTION: &str = "kiln-composed-from";

/// One component a composed component was made from, as recorded in
/// [`COMPOSITION_SECTION`] and shown by `kiln inspect`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ComposedFrom {
    /// The dependency's name (its key in Kiln.toml's `[dependencies]`).
    pub name: String,
    /// Where it came from: `path:<relative path>` or `oci:<reference>`.
    pub source: String,
    /// Its version, from its own metadata, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `sha256:<hex>` of the dependency's component bytes as composed.
    pub digest: String,
    /// For a dependency pulled from a registry, the OCI manifest digest it was pulled at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    /// The imports of the importing component it provides.
    pub provides: Vec<String>,
}

/// Appends the record of `from` to `component` as the custom section
/// [`COMPOSITION_SECTION`] (replacing one already there).
///
/// # Errors
///
/// [`Error::Invalid`] for input that is not a valid component.
pub fn record_composition(component: &[u8], from: &[ComposedFrom]) -> Result<Vec<u8>, Error> {
    let mut out = without_composition(component)?;
    let data = serde_json::to_vec(from).expect("a composition record serializes");
    let section = wasm_encoder::CustomSection {
        name: COMPOSITION_SECTION.into(),
        data: data.into(),
    };
    use wasm_encoder::{Encode, Section};
    out.push(section.id());
    section.encode(&mut out);
    Ok(out)
}

/// `component` without a top-level [`COMPOSITION_SECTION`].
fn without_composition(component: &[u8]) -> Result<Vec<u8>, Error> {
    let mut keep = Vec::with_capacity(component.len());
    keep.extend_from_slice(component.get(..8).ok_or_else(|| Error::Invalid {
        offset: 0,
        message: "the input is shorter than a WebAssembly header".to_string(),
    })?);
    for (range, is_record) in top_level_sections(component)? {
        if !is_record {
            keep.extend_from_slice(&component[range]);
        }
    }
    Ok(keep)
}

/// The byte ranges of the top-level sections of `component` (section id and size included),
/// each with whether it is the composition record.
fn top_level_sections(component: &[u8]) -> Result<Vec<(std::ops::Range<usize>, bool)>, Error> {
    use wasmparser::{Parser, Payload};
    let invalid = |e: wasmparser::BinaryReaderError| Error::Invalid {
        offset: e.offset(),
        message: e.message().to_string(),
    };
    let mut sections = Vec::new();
    let mut start = 8usize;
    // Nested modules and components are walked too: only depth 0 is the component's own.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        let payload = payload.map_err(invalid)?;
        match &payload {
            Payload::Version { .. } => continue,
            Payload::End(_) if depth == 0 => break,
            Payload::End(_) => {
                depth -= 1;
                continue;
            }
            _ => {}
        }
        let nested = matches!(
            payload,
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. }
        );
        if depth == 0
            && let Some((_, range)) = payload.as_section()
        {
            let is_record =
                matches!(&payload, Payload::CustomSection(c) if c.name() == COMPOSITION_SECTION);
            sections.push((start..range.end, is_record));
            start = range.end;
        }
        if nested {
            depth += 1;
        }
    }
    Ok(sections)
}

/// What `component` records it was composed from, if it was composed by kiln.
///
/// # Errors
///
/// [`Error::Invalid`] for input that is not WebAssembly, [`Error::Metadata`] for a record
/// that is not the JSON kiln writes.
pub fn composition(component: &[u8]) -> Result<Option<Vec<ComposedFrom>>, Error> {
    use wasmparser::{Parser, Payload};
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(component) {
        let payload = payload.map_err(|e| Error::Invalid {
            offset: e.offset(),
            message: e.message().to_string(),
        })?;
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::CustomSection(c) if depth == 0 && c.name() == COMPOSITION_SECTION => {
                return serde_json::from_slice(c.data()).map(Some).map_err(|e| {
                    Error::Metadata(format!("the `{COMPOSITION_SECTION}` section: {e}"))
                });
            }
            _ => {}
        }
    }
    Ok(None)
}
