//! Stripping debug information from components and core modules.
//!
//! Removes DWARF (`.debug_*` custom sections), `sourceMappingURL` and `external_debug_info`
//! from every core module and from the component itself, and the `name` sections unless
//! names are kept. Nothing a component needs to run is touched: types, imports, exports,
//! canonical functions, `producers` and any other custom section stay as they were.

use crate::Error;
use crate::walk::{filter_custom_sections, map_core_modules};

/// What to keep while stripping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StripOptions {
    /// Keep `name` (and `component-name`) sections, so backtraces keep function names.
    pub keep_names: bool,
}

/// Whether a custom section named `name` is debug information to strip.
fn is_debug_section(name: &str, options: &StripOptions) -> bool {
    name.starts_with(".debug_")
        || name == "sourceMappingURL"
        || name == "external_debug_info"
        || (!options.keep_names && (name == "name" || name == "component-name"))
}

/// Strips debug information from `input` (a component or a core module).
///
/// # Errors
///
/// [`Error::NotWasm`] or [`Error::Invalid`] when the input is not valid WebAssembly.
pub fn strip(input: &[u8], options: &StripOptions) -> Result<Vec<u8>, Error> {
    crate::validate(input)?;
    let drop = |name: &str| is_debug_section(name, options);
    map_core_modules(input, &|custom| drop(custom.name()), &mut |_, module| {
        filter_custom_sections(module, &drop)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_DEBUG: &str = r#"
        (component
          (core module $m
            (@custom ".debug_info" "dwarf bytes")
            (@custom "sourceMappingURL" "x.map")
            (@custom "keep-me" "data")
            (func $f (export "f")))
          (@custom ".debug_line" "lines")
          (@custom "producers-like" "kept"))
    "#;

    fn customs(bytes: &[u8]) -> Vec<String> {
        wasmparser::Parser::new(0)
            .parse_all(bytes)
            .filter_map(|p| match p.unwrap() {
                wasmparser::Payload::CustomSection(c) => Some(c.name().to_string()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn removes_debug_sections_everywhere_and_nothing_else() {
        let input = wat::parse_str(WITH_DEBUG).unwrap();
        assert!(customs(&input).contains(&".debug_info".to_string()));
        let out = strip(&input, &StripOptions::default()).unwrap();
        crate::validate_component(&out).unwrap();
        assert_eq!(customs(&out), ["keep-me", "producers-like"]);
    }

    #[test]
    fn names_are_kept_only_when_asked() {
        let input = wat::parse_str(r#"(module (func $named (export "f")))"#).unwrap();
        assert!(customs(&input).contains(&"name".to_string()));
        assert!(
            customs(&strip(&input, &StripOptions { keep_names: true }).unwrap())
                .contains(&"name".to_string())
        );
        assert!(customs(&strip(&input, &StripOptions::default()).unwrap()).is_empty());
    }

    #[test]
    fn corrupted_input_is_an_error() {
        let input = wat::parse_str(WITH_DEBUG).unwrap();
        assert!(strip(&input[..input.len() - 3], &StripOptions::default()).is_err());
        assert!(matches!(
            strip(b"", &StripOptions::default()),
            Err(Error::NotWasm(_))
        ));
    }
}
