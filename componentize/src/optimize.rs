//! Optimizing components: binaryen's wasm-opt on every core module inside.
//!
//! `wasm-opt` reads core modules only (binaryen#6728), so [`optimize`] splits a component
//! into its core modules (nested components included), optimizes each with the `wasm-opt`
//! crate (binaryen `version_116` built in; no binary on `PATH`), and re-assembles the
//! component with every other section unchanged. Imports and exports of each module are kept,
//! so the component's canonical-ABI wiring still type-checks; the result is validated.
//!
//! A module that wasm-opt fails on, or makes larger, is kept as it was and reported.

use std::path::Path;

use crate::Error;
#[cfg(test)]
use crate::WasmKind;
use crate::walk::{ModulePath, map_core_modules};

/// An optimization level, as wasm-opt's `-O0`…`-O4`, `-Os`, `-Oz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptLevel {
    /// `-O0` … `-O4`: optimize for speed at that level (0 runs no passes).
    Speed(u8),
    /// `-Os`: optimize for size.
    Size,
    /// `-Oz`: optimize aggressively for size.
    SizeAggressive,
}

/// How to optimize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptimizeOptions {
    /// The level.
    pub level: OptLevel,
    /// Keep debug information (DWARF and names) through optimization, as `wasm-opt -g`.
    pub debug_info: bool,
}

/// What happened to one core module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleOutcome {
    /// Where the module sits in the component.
    pub path: ModulePath,
    /// Its size before, in bytes.
    pub before: usize,
    /// Its size after, in bytes (equal to `before` when kept).
    pub after: usize,
    /// Why the original was kept, when it was: wasm-opt's error, or "wasm-opt made it
    /// larger" (a warning to show, not an error).
    pub kept: Option<String>,
}

/// The result of [`optimize`]: the new binary and what happened to each module.
#[derive(Debug, Clone)]
pub struct Optimized {
    /// The optimized component (or core module).
    pub bytes: Vec<u8>,
    /// One entry per core module, in binary order.
    pub modules: Vec<ModuleOutcome>,
}

/// WebAssembly features enabled for binaryen beyond the ones a module's `target_features`
/// section declares (which binaryen also reads): the set every wasip2 runtime supports and
/// current toolchains emit. A module that uses a feature outside it fails to parse in
/// binaryen and is kept unoptimized.
const FEATURES: &[wasm_opt::Feature] = &[
    wasm_opt::Feature::SignExt,
    wasm_opt::Feature::MutableGlobals,
    wasm_opt::Feature::TruncSat,
    wasm_opt::Feature::BulkMemory,
    wasm_opt::Feature::Multivalue,
    wasm_opt::Feature::ReferenceTypes,
    wasm_opt::Feature::Simd,
];

/// Optimizes every core module in `input` (a component or a core module).
///
/// # Errors
///
/// [`Error::NotWasm`] or [`Error::Invalid`] for input that is not valid WebAssembly, and
/// [`Error::Invalid`] if the re-assembled result does not validate (which would be a bug in
/// kiln or binaryen; the input is then left alone by the caller).
pub fn optimize(input: &[u8], options: &OptimizeOptions) -> Result<Optimized, Error> {
    let kind = crate::validate(input)?;
    let mut modules = Vec::new();
    let bytes = map_core_modules(input, &|_| false, &mut |path, module| {
        let outcome = optimize_module(module, options);
        let (bytes, kept) = match outcome {
            Ok(optimized) if optimized.len() <= module.len() => (optimized, None),
            Ok(_) => (
                module.to_vec(),
                Some("larger after optimization".to_string()),
            ),
            Err(why) => (module.to_vec(), Some(why)),
        };
        modules.push(ModuleOutcome {
            path: path.clone(),
            before: module.len(),
            after: bytes.len(),
            kept,
        });
        Ok(bytes)
    })?;
    let result = crate::validate(&bytes);
    if !matches!(result, Ok(k) if k == kind) {
        return Err(Error::Invalid {
            offset: 0,
            message: format!(
                "the optimized binary does not validate ({result:?}); this is a bug in kiln"
            ),
        });
    }
    Ok(Optimized { bytes, modules })
}

/// Runs wasm-opt on one core module. binaryen's API works on files, so the module goes
/// through a private temporary directory that is removed afterwards.
fn optimize_module(module: &[u8], options: &OptimizeOptions) -> Result<Vec<u8>, String> {
    let dir =
        tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let (input, output) = (dir.path().join("in.wasm"), dir.path().join("out.wasm"));
    std::fs::write(&input, module).map_err(|e| format!("cannot write {}: {e}", input.display()))?;
    run_wasm_opt(&input, &output, options)?;
    let optimized =
        std::fs::read(&output).map_err(|e| format!("cannot read {}: {e}", output.display()))?;
    let mut validator = wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all());
    validator
        .validate_all(&optimized)
        .map_err(|e| format!("wasm-opt produced an invalid module: {e}"))?;
    Ok(optimized)
}

fn run_wasm_opt(input: &Path, output: &Path, options: &OptimizeOptions) -> Result<(), String> {
    let mut opts = match options.level {
        OptLevel::Speed(0) => wasm_opt::OptimizationOptions::new_opt_level_0(),
        OptLevel::Speed(1) => wasm_opt::OptimizationOptions::new_opt_level_1(),
        OptLevel::Speed(2) => wasm_opt::OptimizationOptions::new_opt_level_2(),
        OptLevel::Speed(3) => wasm_opt::OptimizationOptions::new_opt_level_3(),
        OptLevel::Speed(_) => wasm_opt::OptimizationOptions::new_opt_level_4(),
        OptLevel::Size => wasm_opt::OptimizationOptions::new_optimize_for_size(),
        OptLevel::SizeAggressive => {
            wasm_opt::OptimizationOptions::new_optimize_for_size_aggressively()
        }
    };
    opts.debug_info(options.debug_info);
    for feature in FEATURES {
        opts.enable_feature(*feature);
    }
    opts.run(input, output)
        .map_err(|e| format!("wasm-opt failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component whose module has dead code and a constant-foldable export.
    const COMPONENT: &str = r#"
        (component
          (core module $m
            (func $dead (result i32) i32.const 1 i32.const 2 i32.add)
            (func $unused_too (param i32) (result i32) local.get 0 local.get 0 i32.mul)
            (func (export "run") (result i32)
              i32.const 40 i32.const 2 i32.add drop
              i32.const 0))
          (core instance $i (instantiate $m))
          (func $run (result (result)) (canon lift (core func $i "run")))
          (instance $inst (export "run" (func $run)))
          (export "wasi:cli/run@0.2.0" (instance $inst)))
    "#;

    fn size() -> OptimizeOptions {
        OptimizeOptions {
            level: OptLevel::Size,
            debug_info: false,
        }
    }

    #[test]
    fn optimizes_modules_inside_a_component_and_keeps_its_world() {
        let input = wat::parse_str(COMPONENT).unwrap();
        let out = optimize(&input, &size()).unwrap();
        assert!(
            out.bytes.len() < input.len(),
            "{} -> {}",
            input.len(),
            out.bytes.len()
        );
        assert_eq!(out.modules.len(), 1);
        assert!(out.modules[0].after < out.modules[0].before);
        assert_eq!(out.modules[0].kept, None);
        assert_eq!(
            crate::describe(&out.bytes).unwrap(),
            crate::describe(&input).unwrap()
        );
    }

    #[test]
    fn plain_core_modules_work_too() {
        let input = wat::parse_str(r#"(module (func $dead) (func (export "f") (result i32) i32.const 1 i32.const 1 i32.add))"#).unwrap();
        let out = optimize(&input, &size()).unwrap();
        assert_eq!(crate::detect(&out.bytes), WasmKind::CoreModule);
        assert!(out.bytes.len() < input.len());
    }

    #[test]
    fn a_module_that_would_grow_is_kept() {
        // -O0 with names requested adds a name section to a module without one.
        let input = wat::parse_str(r#"(module (func (export "f")))"#).unwrap();
        let out = optimize(
            &input,
            &OptimizeOptions {
                level: OptLevel::Speed(0),
                debug_info: true,
            },
        )
        .unwrap();
        assert!(out.bytes.len() <= input.len());
        if out.modules[0].kept.is_some() {
            assert_eq!(out.bytes, input);
        }
    }

    #[test]
    fn corrupted_input_is_an_error() {
        let mut input = wat::parse_str(COMPONENT).unwrap();
        let len = input.len();
        input.truncate(len - 4);
        assert!(matches!(
            optimize(&input, &size()),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            optimize(b"not wasm", &size()),
            Err(Error::NotWasm(_))
        ));
    }
}
