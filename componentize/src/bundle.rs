//! Bundling files into a component: the vfs component, holding an archive of the files, is
//! composed in front of the guest so that the guest's `wasi:filesystem` (and the `wasi:io`
//! streams files are read through) are the vfs's.
//!
//! Three steps, each a pure function over bytes:
//!
//! 1. [`embed_archive`] patches the vfs *core module*: the archive (the format of the
//!    `kiln-vfs-archive` crate) goes into a new active data segment past the module's
//!    initial memory, the memory's initial size grows to hold it, a new immutable `i32`
//!    global holds its address, and the body of the exported function `kiln_vfs_archive`
//!    (`() -> i32`) becomes `global.get` of that global. The export itself is removed.
//! 2. [`vfs_component`] turns the patched module into a component with
//!    [`wit_component::ComponentEncoder`], after renaming the versions of the WASI packages
//!    in its embedded world to the ones the guest imports, so the composition imports
//!    exactly the WASI versions the guest did.
//! 3. [`compose`] instantiates the vfs, plugs its exports into the guest's matching imports
//!    with [`wac_graph`], imports everything else from the host, and re-exports the guest's
//!    exports. A guest import that the vfs does not provide but whose types use one the vfs
//!    does (sockets and HTTP share `wasi:io` streams and pollables) is refused: the host's
//!    version would hand the guest streams of a different resource type.
//!
//! [`find_archive`] reads the archive back out of a built component (for `kiln inspect`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use wac_graph::types::{ItemKind, Package, SubtypeChecker, Types};
use wac_graph::{CompositionGraph, EncodeOptions, NodeId};
use wasm_encoder::reencode::{self, Reencode};
use wasmparser::{Parser, Payload};

use crate::Error;

/// The name of the vfs module's export whose body [`embed_archive`] replaces.
pub const ARCHIVE_EXPORT: &str = "kiln_vfs_archive";

/// The first bytes of an archive (`kiln-vfs-archive`'s `MAGIC`), how [`find_archive`] spots
/// the data segment that holds it.
const ARCHIVE_MAGIC: &[u8; 8] = b"KILNVFS\0";

const PAGE: u64 = 65536;

/// Why files could not be bundled into a component.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The vfs core module is not what [`embed_archive`] expects (a kiln bug, or a vfs
    /// binary built from other sources).
    #[error("the vfs module cannot hold the archive: {0}")]
    VfsModule(String),
    /// The guest imports an interface the vfs cannot stand in front of.
    #[error(
        "the component imports `{import}`, whose types use `{shared}`; bundled files replace \
         `{shared}` with the vfs's own, so `{import}` cannot be passed through from the host"
    )]
    SharesStreams {
        /// The guest's import (for example `wasi:sockets/tcp@0.2.6`).
        import: String,
        /// The vfs-provided interface its types use (for example `wasi:io/streams@0.2.6`).
        shared: String,
    },
    /// The guest imports a vfs-provided interface with a type the vfs's export does not match.
    #[error("the component's import `{import}` does not match the vfs's `{export}`: {reason}")]
    Mismatch {
        /// The guest's import.
        import: String,
        /// The vfs's export.
        export: String,
        /// The type checker's explanation.
        reason: String,
    },
    /// The guest reads files through WASI 0.3's `wasi:filesystem`, which the vfs does not
    /// serve (it serves WASI 0.2's): its reads would go to the host and never see the bundle.
    #[error(
        "the component imports `{import}` (WASI 0.3); bundled files are served through WASI \
         0.2's `wasi:filesystem`, so its reads would not see them"
    )]
    Wasi03Filesystem {
        /// The guest's import, e.g. `wasi:filesystem/types@0.3.2`.
        import: String,
    },
    /// Composition failed (a kiln bug, or a component wac-graph cannot read).
    #[error("composing the vfs with the component failed: {0}")]
    Compose(String),
}

impl From<BundleError> for Error {
    fn from(e: BundleError) -> Self {
        Error::Bundle(e)
    }
}

fn componentize_error(e: impl std::fmt::Display) -> Error {
    Error::Componentize(format!("{e:#}"))
}

fn compose_error(e: impl std::fmt::Display) -> BundleError {
    BundleError::Compose(format!("{e:#}"))
}

/// What [`embed_archive`] learns in a first pass over the module.
#[derive(Default)]
struct Layout {
    imported_functions: u32,
    imported_globals: u32,
    defined_globals: u32,
    archive_function: Option<u32>,
    memory: Option<wasmparser::MemoryType>,
    has_globals: bool,
    has_data: bool,
}

fn scan(module: &[u8]) -> Result<Layout, Error> {
    let mut layout = Layout::default();
    let mut types = Vec::new();
    let mut function_types = Vec::new();
    for payload in Parser::new(0).parse_all(module) {
        match payload.map_err(crate::walk::parse_error)? {
            Payload::TypeSection(reader) => {
                for ty in reader.into_iter_err_on_gc_types() {
                    types.push(ty.map_err(crate::walk::parse_error)?);
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    match import.map_err(crate::walk::parse_error)?.ty {
                        wasmparser::TypeRef::Func(ty) => {
                            layout.imported_functions = layout.imported_functions.saturating_add(1);
                            function_types.push(ty);
                        }
                        wasmparser::TypeRef::Global(_) => {
                            layout.imported_globals = layout.imported_globals.saturating_add(1);
                        }
                        wasmparser::TypeRef::Memory(_) => {
                            return Err(BundleError::VfsModule(
                                "it imports its memory".to_string(),
                            )
                            .into());
                        }
                        _ => {}
                    }
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    function_types.push(ty.map_err(crate::walk::parse_error)?);
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(crate::walk::parse_error)?;
                    if layout.memory.replace(memory).is_some() {
                        return Err(
                            BundleError::VfsModule("it has more than one memory".into()).into()
                        );
                    }
                }
            }
            Payload::GlobalSection(reader) => {
                layout.has_globals = true;
                layout.defined_globals = reader.count();
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(crate::walk::parse_error)?;
                    if export.name == ARCHIVE_EXPORT
                        && export.kind == wasmparser::ExternalKind::Func
                    {
                        layout.archive_function = Some(export.index);
                    }
                }
            }
            Payload::DataSection(_) => layout.has_data = true,
            _ => {}
        }
    }
    let Some(function) = layout.archive_function else {
        return Err(
            BundleError::VfsModule(format!("it does not export `{ARCHIVE_EXPORT}`")).into(),
        );
    };
    // The function must be `() -> i32`, and defined here (its body is replaced).
    let ok = function >= layout.imported_functions
        && function_types
            .get(function as usize)
            .and_then(|ty| types.get(*ty as usize))
            .is_some_and(|ty| ty.params().is_empty() && ty.results() == [wasmparser::ValType::I32]);
    if !ok {
        return Err(BundleError::VfsModule(format!(
            "`{ARCHIVE_EXPORT}` is not a defined function of type `() -> i32`"
        ))
        .into());
    }
    match layout.memory {
        None => Err(BundleError::VfsModule("it has no memory".into()).into()),
        Some(m) if m.memory64 || m.shared => {
            Err(BundleError::VfsModule("its memory is not a 32-bit unshared memory".into()).into())
        }
        _ if !layout.has_globals || !layout.has_data => {
            Err(BundleError::VfsModule("it has no global or no data section".into()).into())
        }
        _ => Ok(layout),
    }
}

/// The reencoder that performs [`embed_archive`]'s edits while copying everything else.
struct Embed<'a> {
    archive: &'a [u8],
    /// New versions for `wasi:` packages in import and export names (`wasi:io` → `0.2.6`).
    versions: &'a BTreeMap<String, String>,
    /// Drop the `component-type` sections (the caller embeds a renamed world instead).
    drop_world: bool,
    /// Where the archive starts in linear memory (0 when there is none).
    address: u32,
    /// The new global's index.
    global: u32,
    /// The index of `kiln_vfs_archive`.
    function: u32,
    /// The index of the next function body the code section yields.
    next_function: u32,
}

impl Reencode for Embed<'_> {
    type Error = std::convert::Infallible;

    fn parse_memory_section(
        &mut self,
        memories: &mut wasm_encoder::MemorySection,
        section: wasmparser::MemorySectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        for memory in section {
            let mut memory = self.memory_type(memory?)?;
            let pages = (self.archive.len() as u64).div_ceil(PAGE);
            memory.minimum = memory.minimum.saturating_add(pages);
            memories.memory(memory);
        }
        Ok(())
    }

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_global_section(self, globals, section)?;
        globals.global(
            wasm_encoder::GlobalType {
                val_type: wasm_encoder::ValType::I32,
                mutable: false,
                shared: false,
            },
            &wasm_encoder::ConstExpr::i32_const(self.address as i32),
        );
        Ok(())
    }

    fn parse_export(
        &mut self,
        exports: &mut wasm_encoder::ExportSection,
        export: wasmparser::Export<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        if export.name == ARCHIVE_EXPORT {
            return Ok(());
        }
        let name = rename(export.name, self.versions);
        let index = self.external_index(export.kind, export.index)?;
        let kind = reencode::utils::export_kind(self, export.kind);
        exports.export(&name, kind, index);
        Ok(())
    }

    fn parse_import(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        import: wasmparser::Import<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let ty = self.entity_type(import.ty)?;
        imports.import(
            &rename(import.module, self.versions),
            &rename(import.name, self.versions),
            ty,
        );
        Ok(())
    }

    fn parse_custom_section(
        &mut self,
        module: &mut wasm_encoder::Module,
        section: wasmparser::CustomSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        if self.drop_world && section.name().starts_with("component-type") {
            return Ok(());
        }
        reencode::utils::parse_custom_section(self, module, section)
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        func: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let index = self.next_function;
        self.next_function = self.next_function.saturating_add(1);
        if index != self.function {
            return reencode::utils::parse_function_body(self, code, func);
        }
        let mut body = wasm_encoder::Function::new([]);
        body.instructions().global_get(self.global).end();
        code.function(&body);
        Ok(())
    }

    fn parse_data_section(
        &mut self,
        data: &mut wasm_encoder::DataSection,
        section: wasmparser::DataSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_data_section(self, data, section)?;
        if !self.archive.is_empty() {
            data.active(
                0,
                &wasm_encoder::ConstExpr::i32_const(self.address as i32),
                self.archive.iter().copied(),
            );
        }
        Ok(())
    }

    fn data_count(&mut self, count: u32) -> Result<u32, reencode::Error<Self::Error>> {
        Ok(count.saturating_add(u32::from(!self.archive.is_empty())))
    }
}

/// Places `archive` in the vfs core module `vfs_core` (see the [module docs](self)): returns
/// the patched module. An empty `archive` leaves the memory as it was and makes
/// `kiln_vfs_archive` return 0 (no bundle).
///
/// # Errors
///
/// [`Error::Invalid`] when `vfs_core` does not parse; [`BundleError::VfsModule`] when it lacks
/// the `kiln_vfs_archive` export, a single 32-bit memory, globals or data, or when the archive
/// does not fit the memory's maximum or the 4 GiB address space.
pub fn embed_archive(vfs_core: &[u8], archive: &[u8]) -> Result<Vec<u8>, Error> {
    embed(vfs_core, archive, &BTreeMap::new(), false)
}

/// Replaces the version of every `wasi:PACKAGE/INTERFACE@VERSION` in `name` whose package
/// has an entry in `versions`; the rest of the name is kept (`[export]` prefixes,
/// `#function` suffixes).
fn rename(name: &str, versions: &BTreeMap<String, String>) -> String {
    if versions.is_empty() || !name.contains("wasi:") {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(start) = rest.find("wasi:") {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let package_end = tail.find('/').unwrap_or(tail.len());
        let package = &tail[..package_end];
        match (tail.find('@'), versions.get(package)) {
            (Some(at), Some(version)) if at > package_end => {
                let end = tail[at + 1..]
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+')
                    })
                    .map_or(tail.len(), |e| at + 1 + e);
                out.push_str(&tail[..=at]);
                out.push_str(version);
                rest = &tail[end..];
            }
            _ => {
                out.push_str("wasi:");
                rest = &tail[5..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn embed(
    vfs_core: &[u8],
    archive: &[u8],
    versions: &BTreeMap<String, String>,
    drop_world: bool,
) -> Result<Vec<u8>, Error> {
    let layout = scan(vfs_core)?;
    // `scan` refuses a module without either; no panic should it ever let one through.
    let (Some(memory), Some(function)) = (layout.memory, layout.archive_function) else {
        return Err(
            BundleError::VfsModule("it has no memory or no archive function".into()).into(),
        );
    };
    let address = if archive.is_empty() {
        0
    } else {
        memory.initial.saturating_mul(PAGE)
    };
    let pages = memory
        .initial
        .saturating_add((archive.len() as u64).div_ceil(PAGE));
    if address.saturating_add(archive.len() as u64) > u32::MAX as u64
        || memory.maximum.is_some_and(|max| pages > max)
    {
        return Err(BundleError::VfsModule(format!(
            "an archive of {} bytes does not fit in its memory",
            archive.len()
        ))
        .into());
    }
    let global = layout
        .imported_globals
        .checked_add(layout.defined_globals)
        .filter(|n| *n < u32::MAX)
        .ok_or_else(|| BundleError::VfsModule("it has too many globals".into()))?;
    let mut embed = Embed {
        archive,
        versions,
        drop_world,
        address: address as u32,
        global,
        function,
        next_function: layout.imported_functions,
    };
    let mut module = wasm_encoder::Module::new();
    embed
        .parse_core_module(&mut module, Parser::new(0), vfs_core)
        .map_err(|e| BundleError::VfsModule(e.to_string()))?;
    Ok(module.finish())
}

/// Bundles `archive` (the `kiln-vfs-archive` format) into the component `guest`:
/// [`vfs_component`] from `vfs_core` at the WASI versions `guest` imports, then [`compose`].
///
/// # Errors
///
/// As [`describe`](crate::describe), [`vfs_component`] and [`compose`].
pub fn bundle(guest: &[u8], vfs_core: &[u8], archive: &[u8]) -> Result<Vec<u8>, Error> {
    let world = crate::describe(guest)?;
    let versions = wasi_versions(world.imports.iter().map(String::as_str));
    let vfs = vfs_component(vfs_core, archive, &versions)?;
    compose(guest, &vfs)
}

/// The `wasi:` package versions a component imports, `wasi:io` → `0.2.6`, from its import
/// names (`wasi:io/streams@0.2.6`). Unversioned imports are left out.
pub fn wasi_versions<'a>(imports: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    for name in imports {
        if let Some((package, version)) = split_interface(name)
            && package.starts_with("wasi:")
            && let Some(version) = version
            // The vfs is a WASI 0.2 component: only the guest's 0.2 versions name its packages
            // (a WASI 0.3 guest imports 0.3 packages too, which the vfs never stands in for).
            && version.starts_with("0.2.")
        {
            versions
                .entry(package.to_string())
                .or_insert_with(|| version.to_string());
        }
    }
    versions
}

/// `wasi:io/streams@0.2.6` → (`wasi:io`, `Some("0.2.6")`); `None` for a plain name.
fn split_interface(name: &str) -> Option<(&str, Option<&str>)> {
    let (path, version) = match name.split_once('@') {
        Some((path, version)) => (path, Some(version)),
        None => (name, None),
    };
    let (package, _interface) = path.split_once('/')?;
    Some((package, version))
}

/// The name an interface is matched by: its path and its semver-compatible track
/// (`wasi:cli/stdout@0.2.6` → `wasi:cli/stdout@0.2`; `@1.2.0` → `@1`), so the vfs's WASI 0.2
/// exports stand in for a guest's 0.2 imports of any patch version, never for its WASI 0.3
/// imports (other types altogether).
fn compat_key(name: &str) -> String {
    let Some((path, version)) = name.split_once('@') else {
        return name.to_string();
    };
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("{path}@0.{minor}"),
        (Some(major), _) => format!("{path}@{major}"),
        _ => name.to_string(),
    }
}

/// Makes the vfs component: [`embed_archive`], then renames the WASI package versions of the
/// vfs's world to `versions` (as [`wasi_versions`] gives them for the guest; packages the
/// guest does not import take the guest's highest 0.2 version, or keep the vfs's own), then
/// componentizes and strips the names wit-component adds.
///
/// # Errors
///
/// As [`embed_archive`], plus [`Error::Componentize`] when wit-component refuses the module.
pub fn vfs_component(
    vfs_core: &[u8],
    archive: &[u8],
    versions: &BTreeMap<String, String>,
) -> Result<Vec<u8>, Error> {
    let (_, mut bindgen) = wit_component::metadata::decode(vfs_core).map_err(componentize_error)?;
    let fallback = versions
        .values()
        .filter_map(|v| semver::Version::parse(v).ok())
        .filter(|v| v.major == 0 && v.minor == 2)
        .max();
    // The new version of each WASI package in the vfs's world.
    let mut renamed = BTreeMap::new();
    let resolve = &mut bindgen.resolve;
    for (_, package) in resolve.packages.iter_mut() {
        if package.name.namespace != "wasi" {
            continue;
        }
        let key = format!("wasi:{}", package.name.name);
        let version = versions
            .get(&key)
            .and_then(|v| semver::Version::parse(v).ok())
            .or_else(|| fallback.clone());
        if let Some(version) = version {
            renamed.insert(key, version.to_string());
            package.name.version = Some(version);
        }
    }
    resolve.package_names = resolve
        .packages
        .iter()
        .map(|(id, package)| (package.name.clone(), id))
        .collect();
    let mut module = embed(vfs_core, archive, &renamed, true)?;
    wit_component::embed_component_metadata(
        &mut module,
        &bindgen.resolve,
        bindgen.world,
        wit_component::StringEncoding::UTF8,
    )
    .map_err(componentize_error)?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .map_err(componentize_error)?;
    // wit-component names every item of the shims it generates (about 20 KiB); the vfs's
    // traps are kiln's to debug, not the user's, so its names are not worth the size.
    crate::strip(&component, &crate::StripOptions { keep_names: false })
}

/// Composes `vfs` (from [`vfs_component`]) in front of `guest`: every guest import the vfs
/// exports (matched by interface name; versions may differ within 0.2) comes from the vfs,
/// every other import and everything the vfs imports comes from the host under its own name,
/// and the guest's exports are the result's exports.
///
/// # Errors
///
/// [`BundleError::SharesStreams`] for a guest import that needs the host's `wasi:io` (sockets,
/// HTTP), [`BundleError::Mismatch`] when a vfs export does not satisfy the import it stands
/// in for, [`BundleError::Compose`] for anything wac-graph refuses.
pub fn compose(guest: &[u8], vfs: &[u8]) -> Result<Vec<u8>, Error> {
    let mut graph = CompositionGraph::new();
    let vfs_package = Package::from_bytes("kiln:vfs", None, vfs.to_vec(), graph.types_mut())
        .map_err(compose_error)?;
    let vfs_package = graph.register_package(vfs_package).map_err(compose_error)?;
    let guest_package = Package::from_bytes("kiln:guest", None, guest.to_vec(), graph.types_mut())
        .map_err(compose_error)?;
    let guest_package = graph
        .register_package(guest_package)
        .map_err(compose_error)?;

    let vfs_world = graph[vfs_package].ty();
    let guest_world = graph[guest_package].ty();
    let vfs_exports: HashMap<String, (String, ItemKind)> = graph.types()[vfs_world]
        .exports
        .iter()
        .map(|(name, kind)| (compat_key(name), (name.clone(), *kind)))
        .collect();
    let guest_imports: Vec<(String, ItemKind)> = graph.types()[guest_world]
        .imports
        .iter()
        .map(|(name, kind)| (name.clone(), *kind))
        .collect();

    // Refuse, before building anything, files read through WASI 0.3 (not served by the vfs),
    // and a host import whose types use a vfs interface.
    if let Some((name, _)) = guest_imports.iter().find(|(name, _)| {
        name.starts_with("wasi:filesystem/") && compat_key(name).ends_with("@0.3")
    }) {
        return Err(BundleError::Wasi03Filesystem {
            import: name.clone(),
        }
        .into());
    }
    for (name, kind) in &guest_imports {
        if vfs_exports.contains_key(&compat_key(name)) {
            continue;
        }
        if let Some(shared) = shared_interface(graph.types(), *kind, &vfs_exports) {
            return Err(BundleError::SharesStreams {
                import: name.clone(),
                shared,
            }
            .into());
        }
    }

    let vfs_instance = graph.instantiate(vfs_package);
    let guest_instance = graph.instantiate(guest_package);
    let mut outer_imports: HashMap<String, NodeId> = HashMap::new();
    // The guest's own host imports first: where the vfs imports the same interface, it uses
    // fewer of its functions (`wasi:clocks/wall-clock` only for the `datetime` type), so the
    // guest's type is the one that satisfies both.
    for (name, kind) in &guest_imports {
        if !vfs_exports.contains_key(&compat_key(name)) {
            import(&mut graph, &mut outer_imports, name, *kind)?;
        }
    }
    let vfs_imports: Vec<(String, ItemKind)> = graph.types()[vfs_world]
        .imports
        .iter()
        .map(|(name, kind)| (name.clone(), *kind))
        .collect();
    for (name, kind) in vfs_imports {
        let node = import(&mut graph, &mut outer_imports, &name, kind)?;
        graph
            .set_instantiation_argument(vfs_instance, &name, node)
            .map_err(compose_error)?;
    }
    let mut cache = Default::default();
    for (name, kind) in guest_imports {
        let node = match vfs_exports.get(&compat_key(&name)) {
            Some((export, export_kind)) => {
                let mut checker = SubtypeChecker::new(&mut cache);
                if let Err(e) = checker.is_subtype(*export_kind, graph.types(), kind, graph.types())
                {
                    return Err(BundleError::Mismatch {
                        import: name,
                        export: export.clone(),
                        reason: format!("{e:#}"),
                    }
                    .into());
                }
                graph
                    .alias_instance_export(vfs_instance, export)
                    .map_err(compose_error)?
            }
            None => import(&mut graph, &mut outer_imports, &name, kind)?,
        };
        graph
            .set_instantiation_argument(guest_instance, &name, node)
            .map_err(compose_error)?;
    }
    let exports: Vec<String> = graph.types()[guest_world].exports.keys().cloned().collect();
    for name in exports {
        let node = graph
            .alias_instance_export(guest_instance, &name)
            .map_err(compose_error)?;
        graph.export(node, &name).map_err(compose_error)?;
    }
    graph
        .encode(EncodeOptions {
            define_components: true,
            validate: true,
            processor: None,
        })
        .map_err(|e| compose_error(e).into())
}

/// The outer import `name`, created on first use.
fn import(
    graph: &mut CompositionGraph,
    imports: &mut HashMap<String, NodeId>,
    name: &str,
    kind: ItemKind,
) -> Result<NodeId, BundleError> {
    if let Some(node) = imports.get(name) {
        return Ok(*node);
    }
    let node = graph.import(name, kind).map_err(compose_error)?;
    imports.insert(name.to_string(), node);
    Ok(node)
}

/// The first vfs-provided interface that `kind`'s types use, directly or through other
/// interfaces, as the guest names it.
fn shared_interface(
    types: &Types,
    kind: ItemKind,
    vfs_exports: &HashMap<String, (String, ItemKind)>,
) -> Option<String> {
    let ItemKind::Instance(interface) = kind else {
        return None;
    };
    let mut seen = BTreeSet::new();
    let mut stack = vec![interface];
    while let Some(id) = stack.pop() {
        for used in types[id].uses.values() {
            let used_id = used.interface;
            if let Some(name) = &types[used_id].id
                && vfs_exports.contains_key(&compat_key(name))
            {
                return Some(name.clone());
            }
            if seen.insert(used_id.to_string()) {
                stack.push(used_id);
            }
        }
    }
    None
}

/// The archive inside a component built with bundled files: the bytes of the first data
/// segment of any core module that start with the archive magic. `None` when there is none.
///
/// # Errors
///
/// [`Error::Invalid`] when `component` does not parse.
pub fn find_archive(component: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    for payload in Parser::new(0).parse_all(component) {
        if let Payload::DataSection(reader) = payload.map_err(crate::walk::parse_error)? {
            for data in reader {
                let data = data.map_err(crate::walk::parse_error)?;
                if data.data.starts_with(ARCHIVE_MAGIC) {
                    return Ok(Some(data.data.to_vec()));
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the vfs module: the export, one memory, a global and data.
    const VFS: &str = r#"
        (module
          (memory (export "memory") 2)
          (global $sp (mut i32) (i32.const 1024))
          (func (export "kiln_vfs_archive") (result i32) i32.const 0)
          (func (export "probe") (result i32) call 0)
          (data (i32.const 16) "hello"))
    "#;

    fn run_probe(module: &[u8]) -> (i32, u64) {
        // Evaluate by hand: the patched body is `global.get N`; read N's init value.
        let mut globals = Vec::new();
        let mut pages = 0;
        let mut body_global = None;
        for payload in Parser::new(0).parse_all(module) {
            match payload.unwrap() {
                Payload::GlobalSection(r) => {
                    for g in r {
                        let g = g.unwrap();
                        let mut ops = g.init_expr.get_operators_reader();
                        match ops.read().unwrap() {
                            wasmparser::Operator::I32Const { value } => globals.push(value),
                            other => panic!("{other:?}"),
                        }
                    }
                }
                Payload::MemorySection(r) => pages = r.into_iter().next().unwrap().unwrap().initial,
                Payload::CodeSectionEntry(body) if body_global.is_none() => {
                    let mut ops = body.get_operators_reader().unwrap();
                    match ops.read().unwrap() {
                        wasmparser::Operator::GlobalGet { global_index } => {
                            body_global = Some(global_index)
                        }
                        other => panic!("first body is {other:?}"),
                    }
                }
                Payload::ExportSection(r) => {
                    for e in r {
                        assert_ne!(e.unwrap().name, ARCHIVE_EXPORT);
                    }
                }
                _ => {}
            }
        }
        (globals[body_global.unwrap() as usize], pages)
    }

    #[test]
    fn embeds_the_archive_past_the_initial_memory() {
        let vfs = wat::parse_str(VFS).unwrap();
        let mut archive = ARCHIVE_MAGIC.to_vec();
        archive.resize(70_000, 7);
        let patched = embed_archive(&vfs, &archive).unwrap();
        crate::validate(&patched).unwrap();
        let (address, pages) = run_probe(&patched);
        assert_eq!(address, 2 * 65536);
        assert_eq!(pages, 4, "two pages added for 70,000 bytes");
        assert_eq!(find_archive(&patched).unwrap().unwrap(), archive);

        let empty = embed_archive(&vfs, &[]).unwrap();
        crate::validate(&empty).unwrap();
        assert_eq!(run_probe(&empty), (0, 2));
        assert_eq!(find_archive(&empty).unwrap(), None);
    }

    #[test]
    fn refuses_modules_without_the_hook() {
        let plain = wat::parse_str(
            "(module (memory 1) (global i32 (i32.const 0)) (data (i32.const 0) \"x\"))",
        )
        .unwrap();
        let err = embed_archive(&plain, b"KILNVFS\0").unwrap_err();
        assert!(
            err.to_string()
                .contains("does not export `kiln_vfs_archive`"),
            "{err}"
        );
        let capped = wat::parse_str(VFS.replace(
            "(memory (export \"memory\") 2)",
            "(memory (export \"memory\") 2 3)",
        ))
        .unwrap();
        let err = embed_archive(&capped, &vec![0; 200_000]).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }

    #[test]
    fn renames_wasi_versions_in_names() {
        let versions = BTreeMap::from([("wasi:io".to_string(), "0.2.6".to_string())]);
        assert_eq!(
            rename("[export]wasi:io/streams@0.2.12", &versions),
            "[export]wasi:io/streams@0.2.6"
        );
        assert_eq!(
            rename("wasi:io/poll@0.2.12#[method]pollable.block", &versions),
            "wasi:io/poll@0.2.6#[method]pollable.block"
        );
        assert_eq!(
            rename("wasi:cli/stdin@0.2.12", &versions),
            "wasi:cli/stdin@0.2.12"
        );
        assert_eq!(
            rename("[resource-drop]error", &versions),
            "[resource-drop]error"
        );
        assert_eq!(rename("wasi:io", &versions), "wasi:io");
    }

    #[test]
    fn reads_wasi_versions() {
        let versions = wasi_versions([
            "wasi:io/streams@0.2.6",
            "wasi:io/error@0.2.6",
            "wasi:cli/stdout@0.2.3",
            "local:x/y",
            "wasi:clocks/wall-clock",
        ]);
        assert_eq!(versions["wasi:io"], "0.2.6");
        assert_eq!(versions["wasi:cli"], "0.2.3");
        assert_eq!(versions.len(), 2);
    }
}
