//! `kiln build --release`'s wasm-opt pass on every core module of a valid input. Kept apart
//! from `component` because binaryen is C++: a crash it finds is binaryen's (version_116),
//! and is reported there rather than hidden in kiln.
#![no_main]

use kiln_componentize as kc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(kind) = kc::validate(data) else {
        return;
    };
    let options = kc::OptimizeOptions {
        level: kc::OptLevel::Size,
        debug_info: false,
    };
    if let Ok(out) = kc::optimize(data, &options) {
        assert_eq!(kc::validate(&out.bytes).ok(), Some(kind));
    }
});
