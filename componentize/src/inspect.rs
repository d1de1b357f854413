//! Describing a component or core module: kind, world, core modules, custom sections,
//! metadata — what `kiln inspect` prints.

use std::cell::RefCell;

use crate::walk::{ModulePath, map_core_modules};
use crate::{Error, WasmKind, WorldSummary};

/// A description of a WebAssembly binary.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Component or core module.
    pub kind: WasmKind,
    /// Total size in bytes.
    pub size: usize,
    /// The world, for components (`None` for core modules and for a WIT package that defines
    /// no world).
    pub world: Option<WorldSummary>,
    /// Every core module (a plain module is its own single entry).
    pub modules: Vec<ModuleInfo>,
    /// Every custom section, at the component level and inside modules.
    pub custom_sections: Vec<CustomSectionInfo>,
    /// The top-level metadata.
    pub metadata: MetadataInfo,
}

/// One core module.
#[derive(Debug, Clone)]
pub struct ModuleInfo {
    /// Where it sits.
    pub path: ModulePath,
    /// Its size in bytes.
    pub size: usize,
}

/// One custom section.
#[derive(Debug, Clone)]
pub struct CustomSectionInfo {
    /// The section name, e.g. `.debug_info` or `producers`.
    pub name: String,
    /// Its payload size in bytes.
    pub size: usize,
    /// The module holding it; `None` for the component itself.
    pub module: Option<ModulePath>,
}

/// The metadata `wasm-metadata` reads from the top level.
#[derive(Debug, Clone, Default)]
pub struct MetadataInfo {
    /// `name`/`component-name`.
    pub name: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `licenses`.
    pub license: Option<String>,
    /// `source`.
    pub source: Option<String>,
    /// `producers`: (field, name, version), e.g. `("processed-by", "kiln", "0.1.0")`.
    pub producers: Vec<(String, String, String)>,
}

/// Describes `bytes`.
///
/// # Errors
///
/// [`Error::NotWasm`] or [`Error::Invalid`] for anything but valid WebAssembly.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, Error> {
    let kind = crate::validate(bytes)?;
    let world = match kind {
        WasmKind::Component => crate::describe_world(bytes)?,
        _ => None,
    };
    let customs = RefCell::new(Vec::new());
    let mut modules = Vec::new();
    let record_component_custom = |custom: &wasmparser::CustomSectionReader| {
        customs.borrow_mut().push(CustomSectionInfo {
            name: custom.name().into(),
            size: custom.data().len(),
            module: None,
        });
        false
    };
    map_core_modules(bytes, &record_component_custom, &mut |path, module| {
        modules.push(ModuleInfo {
            path: path.clone(),
            size: module.len(),
        });
        for payload in wasmparser::Parser::new(0).parse_all(module) {
            if let wasmparser::Payload::CustomSection(custom) =
                payload.map_err(crate::walk::parse_error)?
            {
                customs.borrow_mut().push(CustomSectionInfo {
                    name: custom.name().into(),
                    size: custom.data().len(),
                    module: Some(path.clone()),
                });
            }
        }
        Ok(module.to_vec())
    })?;
    Ok(Inspection {
        kind,
        size: bytes.len(),
        world,
        modules,
        custom_sections: customs.into_inner(),
        metadata: read_metadata(bytes)?,
    })
}

fn read_metadata(bytes: &[u8]) -> Result<MetadataInfo, Error> {
    let payload = wasm_metadata::Payload::from_binary(bytes)
        .map_err(|e| Error::Metadata(format!("{e:#}")))?;
    let metadata = payload.metadata();
    let mut producers = Vec::new();
    if let Some(p) = &metadata.producers {
        for (field, values) in p.iter() {
            for (name, version) in values.iter() {
                producers.push((field.clone(), name.clone(), version.clone()));
            }
        }
    }
    Ok(MetadataInfo {
        name: metadata.name.clone(),
        version: metadata.version.as_ref().map(ToString::to_string),
        description: metadata.description.as_ref().map(ToString::to_string),
        license: metadata.licenses.as_ref().map(ToString::to_string),
        source: metadata.source.as_ref().map(ToString::to_string),
        producers,
    })
}

/// The WIT text of a component's world (and the packages it uses), as `wasm-tools component
/// wit` prints it.
///
/// # Errors
///
/// [`Error::NotAComponent`] for core modules, [`Error::Decode`] when the types cannot be
/// printed.
pub fn wit(bytes: &[u8]) -> Result<String, Error> {
    let kind = crate::validate(bytes)?;
    if kind != WasmKind::Component {
        return Err(Error::NotAComponent { found: kind });
    }
    let decoded = wit_component::decode(bytes).map_err(|e| Error::Decode(format!("{e:#}")))?;
    let resolve = decoded.resolve();
    let main = decoded.package();
    let nested: Vec<_> = resolve
        .packages
        .iter()
        .map(|(id, _)| id)
        .filter(|id| *id != main)
        .collect();
    let mut printer = wit_component::WitPrinter::default();
    printer
        .print(resolve, main, &nested)
        .map_err(|e| Error::Decode(format!("{e:#}")))?;
    Ok(printer.output.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspects_a_component() {
        let bytes = wat::parse_str(
            r#"(component
                (core module $m (@custom "note" "hi") (func (export "run") (result i32) i32.const 0))
                (core instance $i (instantiate $m))
                (func $run (result (result)) (canon lift (core func $i "run")))
                (instance $inst (export "run" (func $run)))
                (export "wasi:cli/run@0.2.0" (instance $inst))
                (@custom "top" "x"))"#,
        )
        .unwrap();
        let info = inspect(&bytes).unwrap();
        assert_eq!(info.kind, WasmKind::Component);
        assert_eq!(info.world.unwrap().exports, ["wasi:cli/run@0.2.0"]);
        assert_eq!(info.modules.len(), 1);
        let names: Vec<_> = info
            .custom_sections
            .iter()
            .map(|c| (c.name.as_str(), c.module.is_some()))
            .collect();
        assert!(
            names.contains(&("note", true)) && names.contains(&("top", false)),
            "{names:?}"
        );
        let text = wit(&bytes).unwrap();
        assert!(text.contains("export wasi:cli/run@0.2.0;"), "{text}");
    }

    #[test]
    fn inspects_a_core_module_and_refuses_garbage() {
        let info = inspect(&wat::parse_str("(module)").unwrap()).unwrap();
        assert_eq!(info.kind, WasmKind::CoreModule);
        assert!(info.world.is_none());
        assert!(matches!(
            wit(&wat::parse_str("(module)").unwrap()),
            Err(Error::NotAComponent { .. })
        ));
        assert!(inspect(b"\0asm\x01\0\0\0\x01").is_err());
    }
}
