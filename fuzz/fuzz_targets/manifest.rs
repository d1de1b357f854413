//! Kiln.toml: `Manifest::parse` on arbitrary text. The CLI's manifest module (and the error
//! helpers it uses) are compiled in as they are, so this fuzzes the real parser without
//! making the binary crate a library.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../../cli/src/errors.rs"]
mod errors;
#[allow(dead_code, unused_imports)]
#[path = "../../cli/src/manifest.rs"]
mod manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = manifest::Manifest::parse(text, Path::new("Kiln.toml")) {
        // Every refusal names the file.
        let message = e.to_string();
        assert!(message.starts_with("Kiln.toml"), "{message}");
    }
});
