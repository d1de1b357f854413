//! Components and core modules through what `kiln inspect`, `kiln run`'s checks and
//! `kiln build` do to them: detect, validate, describe, inspect, WIT, strip, metadata and
//! the bundled archive. Anything may be refused; nothing may panic.
#![no_main]

use kiln_componentize as kc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kc::detect(data);
    let Ok(kind) = kc::validate(data) else {
        // The passes validate first; run them on invalid input anyway, as a caller might.
        let _ = kc::strip(data, &kc::StripOptions::default());
        let _ = kc::inspect(data);
        let _ = kc::find_archive(data);
        return;
    };
    let _ = kc::describe(data);
    let _ = kc::inspect(data);
    let _ = kc::wit(data);
    if let Ok(stripped) = kc::strip(data, &kc::StripOptions { keep_names: false }) {
        assert_eq!(
            kc::validate(&stripped).ok(),
            Some(kind),
            "strip broke validity"
        );
    }
    if let Ok(Some(archive)) = kc::find_archive(data) {
        let _ = kiln_vfs_archive::Archive::parse(&archive).map(|a| a.walk().count());
    }
    let metadata = kc::Metadata {
        name: Some("fuzz".into()),
        ..kc::Metadata::default()
    };
    if let Ok(with) = kc::add_metadata(data, &metadata) {
        let _ = kc::inspect(&with);
    }
});
