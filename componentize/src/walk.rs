//! Rewriting the core modules inside a component while keeping every other section as it was.
//!
//! A component's binary is a header followed by sections (component model `Binary.md`); core
//! modules appear as *core module sections* (id 1) holding a complete module binary, and
//! nested components as *component sections* (id 4). [`map_core_modules`] hands each core
//! module — at any depth — to a function and re-assembles the component around the results;
//! all other sections are copied byte for byte (only their length prefixes are re-encoded).

use std::mem;

use wasm_encoder::{ComponentSectionId, Encode};
use wasmparser::{Encoding, Parser, Payload};

use crate::Error;

/// Where a core module sits: indices of the nested components leading to it, then the index
/// of the module among its component's core modules. A plain core module is `[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModulePath(pub Vec<usize>);

impl std::fmt::Display for ModulePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "core module {}", parts.join("/"))
    }
}

pub(crate) fn parse_error(e: wasmparser::BinaryReaderError) -> Error {
    Error::Invalid {
        offset: e.offset(),
        message: e.message().to_string(),
    }
}

/// The bytes of a section wasmparser found at `range`, or an error rather than a panic should
/// the range not lie in `input`.
fn section(input: &[u8], range: std::ops::Range<usize>) -> Result<&[u8], Error> {
    let start = range.start;
    input.get(range).ok_or_else(|| Error::Invalid {
        offset: start,
        message: "a section extends past the end of the input".into(),
    })
}

/// A rewrite of one core module: given where it sits and its bytes, returns its new bytes.
pub(crate) type ModuleRewrite<'a> = dyn FnMut(&ModulePath, &[u8]) -> Result<Vec<u8>, Error> + 'a;

/// Calls `f` on every core module in `input` (a component, or a single core module) and
/// returns the binary with each module replaced by what `f` returned. Custom sections of the
/// component itself (at any nesting level) for which `drop_custom` returns true are left out.
pub(crate) fn map_core_modules(
    input: &[u8],
    drop_custom: &dyn Fn(&wasmparser::CustomSectionReader) -> bool,
    f: &mut ModuleRewrite<'_>,
) -> Result<Vec<u8>, Error> {
    if !Parser::is_component(input) {
        return f(&ModulePath(vec![0]), input);
    }
    // One frame per component being rebuilt: (its output so far, modules seen, components seen).
    let mut stack: Vec<(Vec<u8>, usize, usize)> = Vec::new();
    let mut output = Vec::new();
    let (mut modules, mut components) = (0usize, 0usize);
    let mut path: Vec<usize> = Vec::new();
    let mut in_replaced_module = false;

    for payload in Parser::new(0).parse_all(input) {
        let payload = payload.map_err(parse_error)?;
        if in_replaced_module {
            // The module's own payloads: already handled as a whole.
            if let Payload::End(_) = payload {
                in_replaced_module = false;
            }
            continue;
        }
        match payload {
            Payload::CustomSection(custom) if drop_custom(&custom) => {}
            Payload::Version { encoding, .. } => {
                output.extend_from_slice(match encoding {
                    Encoding::Component => &wasm_encoder::Component::HEADER,
                    Encoding::Module => &wasm_encoder::Module::HEADER,
                });
            }
            Payload::ModuleSection {
                unchecked_range, ..
            } => {
                let mut module_path = path.clone();
                module_path.push(modules);
                modules += 1;
                let module = input
                    .get(unchecked_range.clone())
                    .ok_or_else(|| Error::Invalid {
                        offset: unchecked_range.start,
                        message: "core module section extends past the end of the input".into(),
                    })?;
                let replaced = f(&ModulePath(module_path), module)?;
                output.push(ComponentSectionId::CoreModule as u8);
                replaced.encode(&mut output);
                in_replaced_module = true;
            }
            Payload::ComponentSection { .. } => {
                path.push(components);
                stack.push((mem::take(&mut output), modules, components + 1));
                modules = 0;
                components = 0;
            }
            Payload::End(_) => {
                let Some((mut parent, parent_modules, parent_components)) = stack.pop() else {
                    break;
                };
                path.pop();
                parent.push(ComponentSectionId::Component as u8);
                output.encode(&mut parent);
                output = parent;
                modules = parent_modules;
                components = parent_components;
            }
            other => {
                if let Some((id, range)) = other.as_section() {
                    output.push(id);
                    section(input, range)?.encode(&mut output);
                }
            }
        }
    }
    Ok(output)
}

/// Copies the sections of the core module `input`, leaving out custom sections for which
/// `drop` returns true.
pub(crate) fn filter_custom_sections(
    input: &[u8],
    drop: &dyn Fn(&str) -> bool,
) -> Result<Vec<u8>, Error> {
    let mut output = Vec::with_capacity(input.len());
    for payload in Parser::new(0).parse_all(input) {
        let payload = payload.map_err(parse_error)?;
        match &payload {
            Payload::Version { encoding, .. } => output.extend_from_slice(match encoding {
                Encoding::Component => &wasm_encoder::Component::HEADER,
                Encoding::Module => &wasm_encoder::Module::HEADER,
            }),
            Payload::CustomSection(custom) if drop(custom.name()) => {}
            // Nested modules/components are not expected here: callers use this on core
            // modules only (map_core_modules splits components first).
            other => {
                if let Some((id, range)) = other.as_section() {
                    output.push(id);
                    section(input, range)?.encode(&mut output);
                }
            }
        }
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NESTED: &str = r#"
        (component
          (core module $a (func (export "f")))
          (component $inner
            (core module $b (func (export "g")))
            (core module $c (func (export "h"))))
          (core module $d))
    "#;

    #[test]
    fn identity_rewrite_is_byte_identical_and_visits_every_module() {
        let bytes = wat::parse_str(NESTED).unwrap();
        let mut seen = Vec::new();
        let out = map_core_modules(&bytes, &|_| false, &mut |path, module| {
            seen.push(path.0.clone());
            Ok(module.to_vec())
        })
        .unwrap();
        assert_eq!(out, bytes);
        assert_eq!(seen, [vec![0], vec![0, 0], vec![0, 1], vec![1]]);
    }

    #[test]
    fn replaced_modules_land_in_place() {
        let bytes = wat::parse_str(NESTED).unwrap();
        let empty = wat::parse_str("(module)").unwrap();
        let out = map_core_modules(&bytes, &|_| false, &mut |_, _| Ok(empty.clone())).unwrap();
        crate::validate_component(&out).unwrap();
        assert!(out.len() < bytes.len());
        let mut count = 0;
        map_core_modules(&out, &|_| false, &mut |_, module| {
            assert_eq!(module, empty.as_slice());
            count += 1;
            Ok(module.to_vec())
        })
        .unwrap();
        assert_eq!(count, 4);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let bytes = wat::parse_str(NESTED).unwrap();
        let err = map_core_modules(&bytes[..bytes.len() - 5], &|_| false, &mut |_, m| {
            Ok(m.to_vec())
        })
        .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
    }
}
