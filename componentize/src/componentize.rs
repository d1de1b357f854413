//! Core module → component: [`wit_component::ComponentEncoder`] with the WASI preview1 adapter
//! from `wasi-preview1-component-adapter-provider` (the same Wasmtime release kiln runs on, so
//! the adapter never imports a newer WASI 0.2 than the host provides).
//!
//! - A module exporting `_start` is a program: the **command** adapter turns it into a
//!   `wasi:cli/command` component that exports `wasi:cli/run`.
//! - A module exporting `_initialize` (and no `_start`) is a library: the **reactor** adapter,
//!   with the world the module's exports implement embedded first
//!   ([`wit_component::embed_component_metadata`]), when one is given.
//!
//! The result is validated before it is returned.

use std::path::Path;

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
    WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};
use wasmparser::{Parser, Payload};

use crate::Error;

/// Which preview1 adapter a core module gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adapter {
    /// For programs (`_start`): the component exports `wasi:cli/run`.
    Command,
    /// For libraries (`_initialize` or neither): the component exports the module's world.
    Reactor,
}

/// A WIT world for a library component: a file or directory of WIT and, when the package
/// holds several worlds, which one.
#[derive(Debug, Clone)]
pub struct WorldSource<'a> {
    /// A `.wit` file, or a directory of them (a WIT package, with `deps/`).
    pub path: &'a Path,
    /// The world's name; the package's only world when `None`.
    pub world: Option<&'a str>,
}

/// Reads a WIT file or package directory (with its `deps/`) and selects the world.
///
/// # Errors
///
/// [`Error::Wit`] when the WIT does not parse or names no such world (or several, when
/// `world.world` is `None`).
pub fn load_world(
    world: &WorldSource<'_>,
) -> Result<(wit_parser::Resolve, wit_parser::WorldId), Error> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_path(world.path)
        .map_err(|e| Error::Wit(format!("{e:#}")))?;
    let world_id = resolve
        .select_world(&[package], world.world)
        .map_err(|e| Error::Wit(format!("{e:#}")))?;
    Ok((resolve, world_id))
}

impl Adapter {
    /// The adapter's bytes as kiln embeds them (wasi-preview1-component-adapter-provider
    /// 48.0.8).
    pub fn bytes(self) -> &'static [u8] {
        match self {
            Adapter::Command => WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
            Adapter::Reactor => WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        }
    }
}

/// What [`componentize`] made.
#[derive(Debug, Clone)]
pub struct Componentized {
    /// The component bytes.
    pub bytes: Vec<u8>,
    /// The adapter used.
    pub adapter: Adapter,
}

/// Picks the adapter from the module's exports: [`Adapter::Command`] when it exports
/// `_start`, else [`Adapter::Reactor`].
///
/// # Errors
///
/// [`Error::Invalid`] when `core` cannot be parsed.
pub fn adapter_for(core: &[u8]) -> Result<Adapter, Error> {
    for payload in Parser::new(0).parse_all(core) {
        let invalid = |e: wasmparser::BinaryReaderError| Error::Invalid {
            offset: e.offset(),
            message: e.message().to_string(),
        };
        if let Payload::ExportSection(exports) = payload.map_err(invalid)? {
            for export in exports {
                let export = export.map_err(invalid)?;
                if export.name == "_start" {
                    return Ok(Adapter::Command);
                }
            }
        }
    }
    Ok(Adapter::Reactor)
}

/// Turns a WASI preview1 core module into a component.
///
/// `world` embeds a WIT world first (for library components whose exports implement it);
/// a module that already carries component type information (for example from
/// `wit-bindgen`) needs none.
///
/// # Errors
///
/// [`Error::NotWasm`] or [`Error::Invalid`] for bytes that are not a valid core module
/// ([`Error::AlreadyAComponent`] for a component), [`Error::Wit`] when the world cannot be
/// read, and [`Error::Componentize`] when `wit-component` cannot build the component (for
/// example an import that is neither WASI preview1 nor in the world).
pub fn componentize(core: &[u8], world: Option<WorldSource<'_>>) -> Result<Componentized, Error> {
    match crate::validate(core)? {
        crate::WasmKind::CoreModule => {}
        crate::WasmKind::Component => return Err(Error::AlreadyAComponent),
        crate::WasmKind::NotWasm => {
            return Err(Error::NotWasm(core.get(..16).unwrap_or(core).to_vec()));
        }
    }
    let adapter = adapter_for(core)?;
    // A guest that reserved an arena for the adapter gets a `cabi_realloc` over it.
    let mut module = crate::arena::with_arena_realloc(core)?.into_owned();
    if let Some(world) = world {
        let (resolve, world_id) = load_world(&world)?;
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world_id,
            wit_component::StringEncoding::UTF8,
        )
        .map_err(|e| Error::Wit(format!("{e:#}")))?;
    }
    let adapter_bytes = adapter.bytes();
    let bytes = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|e| e.adapter(WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, adapter_bytes))
        .and_then(|mut e| e.encode())
        .map_err(|e| Error::Componentize(format!("{e:#}")))?;
    crate::validate_component(&bytes)?;
    Ok(Componentized { bytes, adapter })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMAND: &str = r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "hello\n")
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 16))
          (i32.store (i32.const 4) (i32.const 6))
          (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

    const REACTOR: &str = r#"(module
        (memory (export "memory") 1)
        (func (export "_initialize"))
        (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add))"#;

    #[test]
    fn a_start_module_becomes_a_command() {
        let core = wat::parse_str(COMMAND).unwrap();
        let out = componentize(&core, None).unwrap();
        assert_eq!(out.adapter, Adapter::Command);
        let world = crate::describe(&out.bytes).unwrap();
        assert!(
            world
                .exports
                .iter()
                .any(|e| e.starts_with("wasi:cli/run@0.2.")),
            "{world:?}"
        );
        assert!(
            world
                .imports
                .iter()
                .any(|i| i.starts_with("wasi:cli/stdout@0.2.")),
            "{world:?}"
        );
    }

    #[test]
    fn an_initialize_module_with_a_world_becomes_a_library() {
        let dir = tempfile::tempdir().unwrap();
        let wit = dir.path().join("world.wit");
        std::fs::write(
            &wit,
            "package test:math;\nworld math { export add: func(a: s32, b: s32) -> s32; }\n",
        )
        .unwrap();
        let core = wat::parse_str(REACTOR).unwrap();
        let out = componentize(
            &core,
            Some(WorldSource {
                path: &wit,
                world: None,
            }),
        )
        .unwrap();
        assert_eq!(out.adapter, Adapter::Reactor);
        let world = crate::describe(&out.bytes).unwrap();
        assert_eq!(world.exports, ["add"]);
    }

    #[test]
    fn bad_inputs_are_refused_with_the_reason() {
        assert!(matches!(
            componentize(b"not wasm", None),
            Err(Error::NotWasm { .. })
        ));
        let component = wat::parse_str("(component)").unwrap();
        assert!(matches!(
            componentize(&component, None),
            Err(Error::AlreadyAComponent)
        ));
        // An import that is neither WASI preview1 nor part of a world.
        let stray = wat::parse_str(
            r#"(module (import "env" "mystery" (func)) (memory (export "memory") 1) (func (export "_start")))"#,
        )
        .unwrap();
        let err = componentize(&stray, None).unwrap_err();
        assert!(matches!(err, Error::Componentize(_)), "{err}");
        assert!(err.to_string().contains("mystery"), "{err}");
        // A world that does not parse.
        let dir = tempfile::tempdir().unwrap();
        let wit = dir.path().join("bad.wit");
        std::fs::write(&wit, "package test:x;\nworld w { export f: func(; }\n").unwrap();
        let core = wat::parse_str(REACTOR).unwrap();
        let err = componentize(
            &core,
            Some(WorldSource {
                path: &wit,
                world: None,
            }),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Wit(_)), "{err}");
    }
}
