//! OCI references: parsing, default tags, re-tagging, and a round trip through `Display`.
#![no_main]

use kiln_registry_client::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Reference::validate_tag(text);
    let _ = kiln_registry_client::is_loopback(text);
    if let Ok(reference) = Reference::parse_with_default_tag(text, "latest") {
        let _ = reference.with_tag(text);
        let _ = (reference.name(), reference.registry(), reference.tag());
    }
    if let Ok(reference) = text.parse::<Reference>() {
        // What kiln prints, it reads back as the same reference.
        let again: Reference = reference
            .to_string()
            .parse()
            .expect("a printed reference parses");
        assert_eq!(again.to_string(), reference.to_string());
    }
});
