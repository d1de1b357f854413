//! WIT packages as registries carry them: a package encoded as a component binary (its
//! interfaces and worlds as component types), the content of the wasm-pkg OCI layout that
//! `wkg publish` writes (<https://github.com/bytecodealliance/wasm-pkg-tools>).

use std::path::Path;

use crate::Error;

/// A WIT package encoded for a registry.
#[derive(Debug, Clone)]
pub struct EncodedWitPackage {
    /// `namespace:name`.
    pub name: String,
    /// Its version, if the package declares one (`package a:b@1.2.3;`).
    pub version: Option<String>,
    /// The encoding (a component binary).
    pub bytes: Vec<u8>,
}

/// Encodes the WIT package at `path` (a `.wit` file, or a directory with `deps/`).
///
/// # Errors
///
/// [`Error::Wit`] when the WIT does not parse or cannot be encoded.
pub fn encode_wit_package(path: &Path) -> Result<EncodedWitPackage, Error> {
    let mut resolve = wit_parser::Resolve::default();
    let (package, _) = resolve
        .push_path(path)
        .map_err(|e| Error::Wit(format!("{e:#}")))?;
    let bytes =
        wit_component::encode(&resolve, package).map_err(|e| Error::Wit(format!("{e:#}")))?;
    let name = &resolve.packages[package].name;
    Ok(EncodedWitPackage {
        name: format!("{}:{}", name.namespace, name.name),
        version: name.version.as_ref().map(ToString::to_string),
        bytes,
    })
}

/// One package of a decoded WIT package, as WIT text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitPackageText {
    /// `namespace:name`.
    pub name: String,
    /// Its version, if any.
    pub version: Option<String>,
    /// The package as WIT source.
    pub text: String,
}

/// Decodes an encoded WIT package into WIT text: the package itself first, then every package
/// it uses (their definitions travel inside the encoding).
///
/// # Errors
///
/// [`Error::Decode`] when `bytes` is not an encoded WIT package (a component with code, say).
pub fn decode_wit_package(bytes: &[u8]) -> Result<Vec<WitPackageText>, Error> {
    let decoded = wit_component::decode(bytes).map_err(|e| Error::Decode(format!("{e:#}")))?;
    let wit_component::DecodedWasm::WitPackage(resolve, root) = decoded else {
        return Err(Error::Decode(
            "it is a component, not a WIT package".to_string(),
        ));
    };
    let mut order = vec![root];
    order.extend(
        resolve
            .packages
            .iter()
            .map(|(id, _)| id)
            .filter(|id| *id != root),
    );
    let mut out = Vec::with_capacity(order.len());
    for id in order {
        let mut printer = wit_component::WitPrinter::default();
        printer
            .print(&resolve, id, &[])
            .map_err(|e| Error::Decode(format!("{e:#}")))?;
        let name = &resolve.packages[id].name;
        out.push(WitPackageText {
            name: format!("{}:{}", name.namespace, name.name),
            version: name.version.as_ref().map(ToString::to_string),
            text: printer.output.to_string(),
        });
    }
    Ok(out)
}
