//! # kiln-componentize
//!
//! Pure passes over WebAssembly bytes that kiln's build pipeline strings together:
//! bytes in, bytes (or a description) out. Nothing here touches the file system,
//! spawns processes or prints.
//!
//! - [`detect`]: tell a core module from a component (or from something that is not
//!   WebAssembly at all) by the 8-byte preamble, without parsing further.
//! - [`validate`]: full validation with [`wasmparser`], all stable features enabled,
//!   returning which kind the binary is.
//! - [`describe`]: the world a component targets (its imports and exports), decoded with
//!   [`wit_component::decode`].
//! - [`componentize`]: a WASI preview1 core module into a component (command or reactor
//!   adapter, an optional WIT world embedded).
//! - [`optimize`]: binaryen's wasm-opt on every core module inside a component.
//! - [`strip`]: remove debug information, never what the component needs.
//! - [`bundle()`]: bundle files into a component, composing the vfs in front of the guest.
//! - [`add_metadata`]: name, version, description, license, source, `processed-by`.
//! - [`inspect`] and [`wit`]: describe a binary for people.
//!
//! Each pass takes bytes and returns bytes (or a description); binaryen's file-based API is
//! the one place a pass touches disk, through a private temporary directory.
//!
//! The binary formats are the WebAssembly core specification
//! (<https://webassembly.github.io/spec/core/binary/>) and the component model's binary
//! format (<https://github.com/WebAssembly/component-model/blob/main/design/mvp/Binary.md>).

#![deny(missing_docs)]

use std::fmt;

mod arena;
mod bundle;
mod componentize;
mod compose;
mod inspect;
mod metadata;
mod optimize;
mod strip;
mod walk;
mod witpkg;

pub use arena::{ADAPTER_ARENA_MAGIC, ADAPTER_ARENA_SIZE, add_arena_realloc};
pub use bundle::{
    ARCHIVE_EXPORT, BundleError, bundle, compose, embed_archive, find_archive, vfs_component,
    wasi_versions,
};
pub use componentize::{
    Adapter, Componentized, WorldSource, adapter_for, componentize, load_world,
};
pub use compose::{
    COMPOSITION_SECTION, ComposeError, Composed, ComposedFrom, Plug, composition, plug,
    record_composition,
};
pub use inspect::{CustomSectionInfo, Inspection, MetadataInfo, ModuleInfo, inspect, wit};
pub use metadata::{Metadata, add_metadata, check_license};
pub use optimize::{ModuleOutcome, OptLevel, OptimizeOptions, Optimized, optimize};
pub use strip::{StripOptions, strip};
pub use walk::ModulePath;
pub use witpkg::{EncodedWitPackage, WitPackageText, decode_wit_package, encode_wit_package};

/// What a byte buffer holds, judged by its preamble.
///
/// Both core modules and components start with the magic bytes `\0asm`; the next four
/// bytes (version and layer) tell them apart: `01 00 00 00` for a core module,
/// `0d 00 01 00` (layer 1) for a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmKind {
    /// A core WebAssembly module (for example a `wasm32-wasip1` program).
    CoreModule,
    /// A component (for example a `wasm32-wasip2` program).
    Component,
    /// Not a WebAssembly binary. WebAssembly text (`.wat`) counts as "not a binary".
    NotWasm,
}

impl fmt::Display for WasmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WasmKind::CoreModule => "a core module",
            WasmKind::Component => "a component",
            WasmKind::NotWasm => "not a WebAssembly binary",
        })
    }
}

/// Classifies `bytes` by their preamble only; cheap, and never fails.
///
/// A buffer that starts with the magic bytes but has a version this crate does not know is
/// [`WasmKind::NotWasm`]; [`validate`] gives the precise reason.
pub fn detect(bytes: &[u8]) -> WasmKind {
    if wasmparser::Parser::is_component(bytes) {
        WasmKind::Component
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        WasmKind::CoreModule
    } else {
        WasmKind::NotWasm
    }
}

/// Errors from the passes in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input does not start with the WebAssembly preamble.
    #[error("not a WebAssembly binary ({})", describe_preamble(.0))]
    NotWasm(Vec<u8>),
    /// The input is WebAssembly but does not validate.
    #[error("invalid WebAssembly at byte offset {offset:#x}: {}", one_line(.message))]
    Invalid {
        /// Byte offset into the input where validation failed.
        offset: usize,
        /// wasmparser's description of the problem.
        message: String,
    },
    /// A component was expected and something else was given.
    #[error("expected a component, found {found}")]
    NotAComponent {
        /// What was found instead.
        found: WasmKind,
    },
    /// The component's type information could not be decoded into a WIT world.
    #[error("failed to decode the component's world: {}", one_line(.0))]
    Decode(String),
    /// Metadata could not be read or written.
    #[error("metadata: {}", one_line(.0))]
    Metadata(String),
    /// A core module was expected for componentizing, and a component was given.
    #[error("already a component; only core modules are componentized")]
    AlreadyAComponent,
    /// A WIT world could not be read or selected.
    #[error("WIT: {0}")]
    Wit(String),
    /// `wit-component` could not turn the module into a component.
    #[error("failed to make a component: {}", one_line(.0))]
    Componentize(String),
    /// Bundled files could not be composed into the component.
    #[error(transparent)]
    Bundle(BundleError),
    /// Dependencies could not be composed into the component.
    #[error(transparent)]
    Compose(ComposeError),
}

/// `text` on one line: wasmparser and wit-component write some messages over several lines
/// (a pretty-printed byte array, a name and then why it is refused), and an error kiln
/// prints is one line per cause. Line breaks inside brackets become spaces, the others `: `.
fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            let inside = out.ends_with(['[', '(', '{', ',']) || line.starts_with([']', ')', '}']);
            out.push_str(if inside { " " } else { ": " });
        }
        out.push_str(line);
    }
    out
}

/// A short, human description of the first bytes of a non-wasm input.
fn describe_preamble(head: &[u8]) -> String {
    if head.is_empty() {
        return "the file is empty".to_string();
    }
    if head.starts_with(b"\0asm") {
        return format!(
            "unknown WebAssembly version {:02x?}",
            &head[4..head.len().min(8)]
        );
    }
    let text = head
        .iter()
        .take(16)
        .all(|b| b.is_ascii() && !b.is_ascii_control() || b.is_ascii_whitespace());
    if text && head.trim_ascii_start().starts_with(b"(") {
        return "it looks like WebAssembly text; kiln expects the binary format".to_string();
    }
    if head.starts_with(b"\x7fELF")
        || head.starts_with(b"MZ")
        || head.starts_with(&[0xcf, 0xfa, 0xed, 0xfe])
    {
        return "it looks like a native executable".to_string();
    }
    format!("it starts with {:02x?}", &head[..head.len().min(8)])
}

/// Validates `bytes` as a core module or a component with every stable WebAssembly feature
/// enabled, and returns which of the two it is.
///
/// # Errors
///
/// [`Error::NotWasm`] when the preamble is wrong, [`Error::Invalid`] with the byte offset
/// when the binary is malformed or fails validation.
pub fn validate(bytes: &[u8]) -> Result<WasmKind, Error> {
    let kind = detect(bytes);
    if kind == WasmKind::NotWasm {
        return Err(Error::NotWasm(bytes[..bytes.len().min(16)].to_vec()));
    }
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator.validate_all(bytes).map_err(|e| Error::Invalid {
        offset: e.offset(),
        message: e.message().to_string(),
    })?;
    Ok(kind)
}

/// Validates `bytes` and requires the result to be a component.
///
/// # Errors
///
/// As [`validate`], plus [`Error::NotAComponent`] for a valid core module.
pub fn validate_component(bytes: &[u8]) -> Result<(), Error> {
    match validate(bytes)? {
        WasmKind::Component => Ok(()),
        found => Err(Error::NotAComponent { found }),
    }
}

/// The world a component targets: the names of what it imports and exports.
///
/// Interface names are fully qualified as in WIT (`wasi:cli/run@0.2.0`); functions exported
/// directly from the world are their plain names (`greet`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorldSummary {
    /// Names imported by the component, in the order the component declares them.
    pub imports: Vec<String>,
    /// Names exported by the component, in the order the component declares them.
    pub exports: Vec<String>,
}

impl WorldSummary {
    /// The exported `wasi:cli/run` interface name (any 0.2.x or 0.3.x version), if there is
    /// one. Its presence makes the component a command (`wasi:cli/command`).
    pub fn command_export(&self) -> Option<&str> {
        self.exports
            .iter()
            .map(String::as_str)
            .find(|e| is_interface(e, "wasi:cli/run", &["@0.2.", "@0.3."]))
    }

    /// The WASI releases the component targets, by the versions of the `wasi:` interfaces it
    /// imports and exports: `"0.2"` for `wasi:*@0.2.x`, `"0.3"` for `@0.3.x` (a WASI 0.3
    /// component built with Rust's std imports both). Sorted, without repeats; empty when it
    /// uses no versioned WASI interface.
    pub fn wasi_versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = self
            .imports
            .iter()
            .chain(&self.exports)
            .filter(|name| name.starts_with("wasi:"))
            .filter_map(|name| {
                let version = name.rsplit_once('@')?.1;
                let mut parts = version.split('.');
                let major = parts.next()?;
                let minor = parts.next()?;
                Some(if major == "0" {
                    format!("0.{minor}")
                } else {
                    major.to_string()
                })
            })
            .collect();
        versions.sort();
        versions.dedup();
        versions
    }

    /// The exported HTTP handler, if there is one: `wasi:http/incoming-handler@0.2.x` (the
    /// `wasi:http/proxy` world) or `wasi:http/handler@0.3.x` (WASI 0.3's `wasi:http/service`).
    pub fn http_handler_export(&self) -> Option<&str> {
        self.exports.iter().map(String::as_str).find(|e| {
            is_interface(e, "wasi:http/incoming-handler", &["@0.2."])
                || is_interface(e, "wasi:http/handler", &["@0.3."])
        })
    }
}

/// Whether `name` is `interface`, unversioned or at a version starting with one of
/// `versions` (`@0.2.`).
fn is_interface(name: &str, interface: &str, versions: &[&str]) -> bool {
    match name.strip_prefix(interface) {
        Some("") => true,
        Some(version) => versions.iter().any(|v| version.starts_with(v)),
        None => false,
    }
}

/// Decodes the world of the component in `bytes`.
///
/// A WIT package encoded as a component (what `wasm-tools component wit --wasm` writes)
/// describes its first world.
///
/// # Errors
///
/// [`Error::NotAComponent`] for core modules and non-wasm input, [`Error::Invalid`] for a
/// component that does not validate, [`Error::Decode`] when the component's types cannot be
/// turned into a WIT world, including a WIT package that defines no world.
pub fn describe(bytes: &[u8]) -> Result<WorldSummary, Error> {
    describe_world(bytes)?.ok_or_else(|| {
        Error::Decode("it encodes a WIT package that defines no world, not a component".into())
    })
}

/// As [`describe`], but `None` for a WIT package that defines no world (it has nothing to
/// import or export), so that [`inspect`] can still describe it.
pub(crate) fn describe_world(bytes: &[u8]) -> Result<Option<WorldSummary>, Error> {
    let kind = detect(bytes);
    if kind != WasmKind::Component {
        return Err(Error::NotAComponent { found: kind });
    }
    // Validate first: wit-component's decoder trusts its input, and on a damaged binary it
    // can take seconds before it fails.
    validate(bytes)?;
    let decoded = wit_component::decode(bytes).map_err(|e| Error::Decode(format!("{e:#}")))?;
    let resolve = decoded.resolve();
    let Some(world) = package_world(&decoded).and_then(|id| resolve.worlds.get(id)) else {
        return Ok(None);
    };
    let names = |items: &wit_parser::IndexMap<wit_parser::WorldKey, wit_parser::WorldItem>| {
        items
            .iter()
            .filter(|(_, item)| !matches!(item, wit_parser::WorldItem::Type { .. }))
            .map(|(key, _)| resolve.name_world_key(key))
            .collect::<Vec<_>>()
    };
    Ok(Some(WorldSummary {
        imports: names(&world.imports),
        exports: names(&world.exports),
    }))
}

/// The world a decoded binary targets: a component's own, or a WIT package's first world
/// (`None` when the package defines none).
fn package_world(decoded: &wit_component::DecodedWasm) -> Option<wit_parser::WorldId> {
    match decoded {
        wit_component::DecodedWasm::Component(_, world) => Some(*world),
        wit_component::DecodedWasm::WitPackage(resolve, package) => resolve
            .packages
            .get(*package)
            .and_then(|p| p.worlds.values().next().copied()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMAND: &str = r#"
        (component
          (core module $m (func (export "run") (result i32) i32.const 0))
          (core instance $i (instantiate $m))
          (func $run (result (result)) (canon lift (core func $i "run")))
          (instance $inst (export "run" (func $run)))
          (export "wasi:cli/run@0.2.3" (instance $inst)))
    "#;

    #[test]
    fn detects_kinds() {
        assert_eq!(
            detect(&wat::parse_str("(module)").unwrap()),
            WasmKind::CoreModule
        );
        assert_eq!(
            detect(&wat::parse_str(COMMAND).unwrap()),
            WasmKind::Component
        );
        assert_eq!(detect(b"(module)"), WasmKind::NotWasm);
        assert_eq!(detect(b""), WasmKind::NotWasm);
    }

    #[test]
    fn validate_reports_offsets_and_kinds() {
        let module = wat::parse_str("(module)").unwrap();
        assert_eq!(validate(&module).unwrap(), WasmKind::CoreModule);
        assert!(matches!(
            validate_component(&module),
            Err(Error::NotAComponent {
                found: WasmKind::CoreModule
            })
        ));
        let mut truncated = wat::parse_str(COMMAND).unwrap();
        truncated.truncate(truncated.len() - 3);
        let err = validate(&truncated).unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
    }

    #[test]
    fn not_wasm_messages_name_what_was_found() {
        assert_eq!(
            validate(b"").unwrap_err().to_string(),
            "not a WebAssembly binary (the file is empty)"
        );
        assert_eq!(
            validate(b"  (module)").unwrap_err().to_string(),
            "not a WebAssembly binary (it looks like WebAssembly text; kiln expects the binary format)"
        );
        assert_eq!(
            validate(b"\x7fELF\x02\x01\x01\0").unwrap_err().to_string(),
            "not a WebAssembly binary (it looks like a native executable)"
        );
    }

    #[test]
    fn describes_a_command_world() {
        let world = describe(&wat::parse_str(COMMAND).unwrap()).unwrap();
        assert_eq!(world.exports, ["wasi:cli/run@0.2.3"]);
        assert!(world.imports.is_empty());
        assert_eq!(world.command_export(), Some("wasi:cli/run@0.2.3"));
        assert_eq!(world.wasi_versions(), ["0.2"]);
        let mixed = WorldSummary {
            imports: vec![
                "wasi:cli/stdout@0.2.6".into(),
                "wasi:cli/stdout@0.3.2".into(),
                "acme:math/ops@1.2.0".into(),
                "wasi:random/random".into(),
            ],
            exports: vec!["wasi:cli/run@0.3.2".into()],
        };
        assert_eq!(mixed.wasi_versions(), ["0.2", "0.3"]);
        assert_eq!(world.http_handler_export(), None);
    }

    /// A WIT package encoded as a component, as `wasm-tools component wit --wasm` writes it.
    fn wit_package(source: &str) -> Vec<u8> {
        let mut resolve = wit_parser::Resolve::default();
        let package = resolve.push_str("p.wit", source).unwrap();
        wit_component::encode(&resolve, package).unwrap()
    }

    #[test]
    fn a_wit_package_without_a_world_is_refused_not_a_panic() {
        let bytes = wit_package("package a:b;\ninterface i {}\n");
        validate_component(&bytes).unwrap();
        assert_eq!(
            describe(&bytes).unwrap_err().to_string(),
            "failed to decode the component's world: it encodes a WIT package that defines no world, not a component"
        );
        let info = inspect(&bytes).unwrap();
        assert!(info.world.is_none());
        assert!(wit(&bytes).unwrap().contains("package a:b"));
        // `kiln build` with bundled files describes the guest first.
        assert!(matches!(bundle(&bytes, &[], &[]), Err(Error::Decode(_))));
        // Stripping and optimizing walk it like any component.
        strip(&bytes, &StripOptions::default()).unwrap();
        let options = OptimizeOptions {
            level: OptLevel::Size,
            debug_info: false,
        };
        optimize(&bytes, &options).unwrap();
        // A package with a world describes its first world.
        let with_world = wit_package("package a:b;\nworld w { export run: func(); }\n");
        assert_eq!(describe(&with_world).unwrap().exports, ["run"]);
    }

    #[test]
    fn messages_are_one_line() {
        assert_eq!(
            one_line("bad magic number - expected=[\n    0x0,\n    0x61,\n] actual=[\n    0x2,\n]"),
            "bad magic number - expected=[ 0x0, 0x61, ] actual=[ 0x2, ]"
        );
        assert_eq!(
            one_line("export name `x` is not a valid extern name\n`x` is not in kebab case"),
            "export name `x` is not a valid extern name: `x` is not in kebab case"
        );
        // A module whose export name is not kebab case, inside a component.
        let err = validate(b"\0asm\x0d\0\x01\0\x0b\x05\x01\x00\x01\x7f\x00").unwrap_err();
        assert!(!err.to_string().contains('\n'), "{err}");
    }

    #[test]
    fn interface_versions() {
        let p2 = &["@0.2."];
        assert!(is_interface("wasi:cli/run@0.2.0", "wasi:cli/run", p2));
        assert!(is_interface("wasi:cli/run", "wasi:cli/run", p2));
        assert!(!is_interface("wasi:cli/run@0.3.0", "wasi:cli/run", p2));
        assert!(is_interface(
            "wasi:cli/run@0.3.0",
            "wasi:cli/run",
            &["@0.2.", "@0.3."]
        ));
        assert!(!is_interface("wasi:cli/runner@0.2.0", "wasi:cli/run", p2));
    }
}
