//! OCI manifest and Wasm config JSON as a registry sends them: the types kiln deserializes
//! them into, and the descriptor digests kiln checks before they name a cache path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_client::manifest::OciImageManifest;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = serde_json::from_slice::<OciImageManifest>(data) {
        for descriptor in std::iter::once(&manifest.config).chain(&manifest.layers) {
            let pinned = format!("localhost/x/y@{}", descriptor.digest);
            let _ = pinned.parse::<kiln_registry_client::Reference>();
        }
        let _ = serde_json::to_vec(&manifest);
    }
    let _ = oci_wasm::WasmConfig::try_from(data);
});
